import { Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { SchedulerRegistry } from '@nestjs/schedule';
import { InjectDataSource } from '@nestjs/typeorm';
import type { DataSource } from 'typeorm';
import { Clock } from '../common/clock.js';
import { scheduleCleanup } from '../common/schedule.js';
import type { Config } from '../config/config.js';
import { OutboxMessage } from './outbox-message.entity.js';

const PURGE_EVERY_MS = 60 * 60 * 1000;

/**
 * Keeps the outbox from growing forever: sent and dead rows older than MAIL_OUTBOX_RETENTION are
 * deleted hourly (their payloads were already erased). Pending rows are never touched.
 */
@Injectable()
export class OutboxRetention implements OnModuleInit {
  private readonly logger = new Logger(OutboxRetention.name);
  private readonly retentionMs: number;

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly clock: Clock,
    config: ConfigService<Config, true>,
    private readonly scheduler: SchedulerRegistry,
  ) {
    this.retentionMs = config.getOrThrow('mail', { infer: true }).outboxRetentionMs;
  }

  purgeFinished(): Promise<number> {
    return this.deleteFinished();
  }

  private async deleteFinished(): Promise<number> {
    const cutoff = new Date(this.clock.now().getTime() - this.retentionMs);
    const result = await this.dataSource
      .getRepository(OutboxMessage)
      .createQueryBuilder()
      .delete()
      .where('status IN (:...finished)', { finished: ['sent', 'dead'] })
      .andWhere('created_at < :cutoff', { cutoff })
      .execute();
    return result.affected ?? 0;
  }

  onModuleInit(): void {
    scheduleCleanup(
      this.scheduler,
      {
        name: 'outbox-retention',
        everyMs: PURGE_EVERY_MS,
        what: 'finished outbox rows',
        run: () => this.purgeFinished(),
      },
      this.logger,
    );
  }
}
