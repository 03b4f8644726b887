import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { DataSource, EntityManager } from 'typeorm';
import { Clock } from '../common/clock.js';
import { isMailTemplate, type MailTemplate } from './mail-templates.js';
import { OutboxMessage } from './outbox-message.entity.js';
import { PayloadCipher, sealPayload } from './payload-cipher.js';

export type { MailTemplate } from './mail-templates.js';

export interface EnqueueOptions {
  /** The caller's transaction: the message commits (or rolls back) with the change it belongs to. */
  manager?: EntityManager;
}

export interface OutboxStats {
  pending: number;
  dead: number;
}

/**
 * The request side of the transactional outbox (DESIGN §6): one INSERT, no SMTP. The OutboxWorker
 * delivers the row later; `data` (e.g. `{ token }`) is encrypted at rest and erased once sent.
 */
@Injectable()
export class MailService {
  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly cipher: PayloadCipher,
    private readonly clock: Clock,
  ) {}

  async enqueue(
    template: MailTemplate,
    to: string,
    data: Record<string, string>,
    options: EnqueueOptions = {},
  ): Promise<void> {
    // Both are programming errors, so they fail the caller loudly rather than queue a message that
    // can never be sent. A syntactically odd address is the worker's call (it marks the row dead).
    if (!isMailTemplate(template)) {
      throw new Error(`Unknown mail template "${String(template)}"`);
    }
    if (to.length === 0 || to.length > 255) {
      throw new Error('A mail recipient must be 1-255 characters');
    }
    const now = this.clock.now();
    await (options.manager ?? this.dataSource.manager).getRepository(OutboxMessage).insert({
      template,
      recipient: to,
      payload: sealPayload(this.cipher, template, to, data),
      status: 'pending',
      attempts: 0,
      nextAttemptAt: now,
      createdAt: now,
    });
  }

  /** For /health/ready details and metrics: what is waiting, and what gave up. */
  async outboxStats(): Promise<OutboxStats> {
    const rows = await this.dataSource
      .getRepository(OutboxMessage)
      .createQueryBuilder('m')
      .select('m.status', 'status')
      .addSelect('COUNT(*)', 'n')
      .where('m.status IN (:...statuses)', { statuses: ['pending', 'dead'] })
      .groupBy('m.status')
      .getRawMany<{ status: string; n: string | number }>();
    const count = (status: string) => Number(rows.find((r) => r.status === status)?.n ?? 0);
    return { pending: count('pending'), dead: count('dead') };
  }
}
