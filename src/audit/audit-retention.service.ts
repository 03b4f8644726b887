import { Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { SchedulerRegistry } from '@nestjs/schedule';
import { Clock } from '../common/clock.js';
import { scheduleCleanup } from '../common/schedule.js';
import type { Config } from '../config/config.js';
import { AuditRepository } from './audit.repository.js';
import { AuditService } from './audit.service.js';

const DAY_MS = 24 * 3600 * 1000;
/** Rows deleted per statement: short transactions, so the purge never holds long locks on a hot table. */
const BATCH = 1000;

/**
 * Enforces AUDIT_RETENTION_DAYS: a timer (AUDIT_PURGE_INTERVAL) deletes events older than the
 * retention window and records `audit.purged` with the count. The only code that deletes audit rows;
 * no HTTP route updates or deletes them. Safe to run on every instance: batches select by the
 * (occurred_at) index and delete by primary key.
 */
@Injectable()
export class AuditRetentionService implements OnModuleInit {
  private readonly logger = new Logger(AuditRetentionService.name);

  constructor(
    private readonly events: AuditRepository,
    private readonly audit: AuditService,
    private readonly config: ConfigService<Config, true>,
    private readonly clock: Clock,
    private readonly scheduler: SchedulerRegistry,
  ) {}

  /** Deletes every event older than the retention window; returns how many went. */
  purgeExpired(): Promise<number> {
    return this.purge();
  }

  onModuleInit(): void {
    scheduleCleanup(
      this.scheduler,
      {
        name: 'audit-retention',
        everyMs: this.config.getOrThrow('audit', { infer: true }).purgeIntervalMs,
        what: 'expired audit events',
        run: () => this.purgeExpired(),
      },
      this.logger,
    );
  }

  private async purge(): Promise<number> {
    const { retentionDays } = this.config.getOrThrow('audit', { infer: true });
    const before = new Date(this.clock.now().getTime() - retentionDays * DAY_MS);
    let deleted = 0;
    for (;;) {
      const batch = await this.events.deleteOldest(before, BATCH);
      deleted += batch;
      if (batch < BATCH) {
        break;
      }
    }
    if (deleted > 0) {
      await this.audit.record('audit.purged', {
        metadata: { deleted, retentionDays, before: before.toISOString() },
      });
      this.logger.log(`Purged ${deleted} audit events older than ${retentionDays} days`);
    }
    return deleted;
  }
}
