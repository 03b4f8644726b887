import { Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { SchedulerRegistry } from '@nestjs/schedule';
import { Clock } from '../common/clock.js';
import { scheduleCleanup } from '../common/schedule.js';
import type { Config } from '../config/config.js';
import { MailService } from './mail.service.js';
import { OutboxRepository } from './outbox.repository.js';

const PURGE_EVERY_MS = 60 * 60 * 1000;

/**
 * Keeps the outbox from growing forever: sent and dead rows older than MAIL_OUTBOX_RETENTION are
 * deleted hourly (their payloads were already erased). Pending rows are never touched. Mail budget
 * windows too old to limit anything go on the same beat.
 */
@Injectable()
export class OutboxRetention implements OnModuleInit {
  private readonly logger = new Logger(OutboxRetention.name);
  private readonly retentionMs: number;

  constructor(
    private readonly outbox: OutboxRepository,
    private readonly mail: MailService,
    private readonly clock: Clock,
    config: ConfigService<Config, true>,
    private readonly scheduler: SchedulerRegistry,
  ) {
    this.retentionMs = config.getOrThrow('mail', { infer: true }).outboxRetentionMs;
  }

  purgeFinished(): Promise<number> {
    return this.outbox.deleteFinished(new Date(this.clock.now().getTime() - this.retentionMs));
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
    scheduleCleanup(
      this.scheduler,
      {
        name: 'mail-budget-retention',
        everyMs: PURGE_EVERY_MS,
        what: 'spent mail budget windows',
        run: () => this.mail.purgeBudget(),
      },
      this.logger,
    );
  }
}
