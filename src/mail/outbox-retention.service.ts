import { Injectable, Logger, type OnModuleDestroy, type OnModuleInit } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { InjectDataSource } from '@nestjs/typeorm';
import type { DataSource } from 'typeorm';
import { Clock } from '../common/clock.js';
import { PeriodicJob } from '../common/periodic-job.js';
import type { Config } from '../config/config.js';
import { OutboxMessage } from './outbox-message.entity.js';

const PURGE_EVERY_MS = 60 * 60 * 1000;

/**
 * Keeps the outbox from growing forever: sent and dead rows older than MAIL_OUTBOX_RETENTION are
 * deleted hourly (their payloads were already erased). Pending rows are never touched.
 */
@Injectable()
export class OutboxRetention implements OnModuleInit, OnModuleDestroy {
  private readonly logger = new Logger(OutboxRetention.name);
  private readonly retentionMs: number;
  private readonly job = new PeriodicJob('finished outbox rows', () => this.deleteFinished(), this.logger);

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly clock: Clock,
    config: ConfigService<Config, true>,
  ) {
    this.retentionMs = config.getOrThrow('mail', { infer: true }).outboxRetentionMs;
  }

  purgeFinished(): Promise<number> {
    return this.job.run();
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
    this.job.start(PURGE_EVERY_MS);
  }

  onModuleDestroy(): void {
    this.job.stop();
  }
}
