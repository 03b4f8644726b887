import { Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { SchedulerRegistry } from '@nestjs/schedule';
import { Clock } from '../common/clock.js';
import { scheduleCleanup } from '../common/schedule.js';
import type { Config } from '../config/config.js';
import { SessionsRepository } from './sessions.repository.js';

/** A day of grace, so a just-ended session still shows in support questions and replays stay 401. */
const GRACE_MS = 24 * 60 * 60 * 1000;

/**
 * Deletes sessions that expired or were revoked more than a day ago, with their refresh-token history
 * (FK cascade), every TOKEN_PURGE_INTERVAL. The audit trail keeps what happened to them.
 */
@Injectable()
export class SessionsRetention implements OnModuleInit {
  private readonly logger = new Logger(SessionsRetention.name);
  private readonly intervalMs: number;

  constructor(
    private readonly sessions: SessionsRepository,
    private readonly clock: Clock,
    config: ConfigService<Config, true>,
    private readonly scheduler: SchedulerRegistry,
  ) {
    this.intervalMs = config.getOrThrow('tokens', { infer: true }).purgeIntervalMs;
  }

  purgeEnded(): Promise<number> {
    return this.deleteEnded();
  }

  private deleteEnded(): Promise<number> {
    return this.sessions.purgeEndedBefore(new Date(this.clock.now().getTime() - GRACE_MS));
  }

  onModuleInit(): void {
    scheduleCleanup(
      this.scheduler,
      {
        name: 'sessions-retention',
        everyMs: this.intervalMs,
        what: 'ended sessions',
        run: () => this.purgeEnded(),
      },
      this.logger,
    );
  }
}
