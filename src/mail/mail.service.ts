import { Injectable } from '@nestjs/common';
import { Clock } from '../common/clock.js';
import { isMailTemplate, type MailTemplate } from './mail-template.js';
import { OutboxRepository, type OutboxStats } from './outbox.repository.js';
import { PayloadCipher, sealPayload } from './payload-cipher.js';

export type { MailTemplate } from './mail-template.js';
export type { OutboxStats } from './outbox.repository.js';

/**
 * The request side of the transactional outbox (DESIGN §6): one INSERT, no SMTP. The OutboxWorker
 * delivers the row later; `data` (e.g. `{ token }`) is encrypted at rest and erased once sent.
 */
@Injectable()
export class MailService {
  constructor(
    private readonly outbox: OutboxRepository,
    private readonly cipher: PayloadCipher,
    private readonly clock: Clock,
  ) {}

  async enqueue(template: MailTemplate, to: string, data: Record<string, string>): Promise<void> {
    // Both are programming errors, so they fail the caller loudly rather than queue a message that
    // can never be sent. A syntactically odd address is the worker's call (it marks the row dead).
    if (!isMailTemplate(template)) {
      throw new Error(`Unknown mail template "${String(template)}"`);
    }
    if (to.length === 0 || to.length > 255) {
      throw new Error('A mail recipient must be 1-255 characters');
    }
    // Joins the caller's unit of work: the message commits, or rolls back, with its change.
    await this.outbox.enqueue({
      template,
      recipient: to,
      payload: sealPayload(this.cipher, template, to, data),
      dueAt: this.clock.now(),
    });
  }

  /** For /health/ready details and metrics: what is waiting, and what gave up. */
  outboxStats(): Promise<OutboxStats> {
    return this.outbox.stats();
  }
}
