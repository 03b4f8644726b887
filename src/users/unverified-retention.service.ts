import { Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { SchedulerRegistry } from '@nestjs/schedule';
import { AuditService } from '../audit/audit.service.js';
import { Clock } from '../common/clock.js';
import { scheduleCleanup } from '../common/schedule.js';
import type { Config } from '../config/config.js';
import { Transactional, UnitOfWork } from '../database/unit-of-work.js';
import { UsersRepository } from './users.repository.js';

/** Accounts deleted per run at most, so one purge never holds a long transaction. */
const BATCH = 500;

/**
 * Deletes accounts still unverified UNVERIFIED_ACCOUNT_TTL after sign-up, every TOKEN_PURGE_INTERVAL
 * (DESIGN §5 "Bounded by design"): a sign-up nobody confirmed leaves no rows behind and squats no
 * address or username for good. Tokens, sessions and todos go by FK cascade; each deletion is audited.
 */
@Injectable()
export class UnverifiedAccountsRetention implements OnModuleInit {
  private readonly logger = new Logger(UnverifiedAccountsRetention.name);
  private readonly ttlMs: number;
  private readonly intervalMs: number;

  constructor(
    private readonly users: UsersRepository,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    private readonly uow: UnitOfWork,
    config: ConfigService<Config, true>,
    private readonly scheduler: SchedulerRegistry,
  ) {
    const tokens = config.getOrThrow('tokens', { infer: true });
    this.ttlMs = tokens.unverifiedAccountTtlMs;
    this.intervalMs = tokens.purgeIntervalMs;
  }

  @Transactional()
  async purgeExpired(): Promise<number> {
    const ids = await this.users.findUnverifiedCreatedBefore(
      new Date(this.clock.now().getTime() - this.ttlMs),
      BATCH,
    );
    await this.users.deleteUnverified(ids);
    for (const userId of ids) {
      await this.audit.record('user.purged_unverified', { userId, metadata: { reason: 'never_verified' } });
    }
    return ids.length;
  }

  onModuleInit(): void {
    scheduleCleanup(
      this.scheduler,
      {
        name: 'unverified-accounts-retention',
        everyMs: this.intervalMs,
        what: 'never verified accounts',
        run: () => this.purgeExpired(),
      },
      this.logger,
    );
  }
}
