import { Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { SchedulerRegistry } from '@nestjs/schedule';
import { Clock } from '../common/clock.js';
import { scheduleCleanup } from '../common/schedule.js';
import type { Config } from '../config/config.js';
import { retryOnDeadlock } from '../database/deadlock.js';
import { Transactional, UnitOfWork } from '../database/unit-of-work.js';
import { ANY_CLIENT, type LoginFailure } from './login-failure.entity.js';
import { LoginFailuresRepository, loginKeyOf } from './login-failures.repository.js';

/** Which counter a lock came from: this client's, or the account-wide one. */
export type LockScope = 'client' | 'account';

export interface FailureRecorded {
  /** The lock in force after this failure, or null. */
  lockedUntil: Date | null;
  /** The scopes this very failure locked (so only one request audits each lock). */
  lockedNow: LockScope[];
  /** Consecutive failures of this address from this client, this one included. */
  failures: number;
}

/** What an operator sees of an address's counters. */
export interface LockoutState {
  lockedUntil: Date | null;
  /** Consecutive failures across every client since the last success. */
  failures: number;
}

/** Idle counters are forgotten after a day: a lock never lasts that long (AUTH_LOCKOUT_DURATION ≤ 1h). */
const IDLE_MS = 24 * 60 * 60 * 1000;

/**
 * Brute-force lockout that cannot be turned into a weapon (DESIGN §5, "Lockout is not a weapon";
 * NIST SP 800-63B §5.2.2). Failed sign-ins are counted per address under a hash of it — so an address
 * without an account behaves exactly like one with an account — both per client (an IPv4 address or
 * an IPv6 /64) and account-wide, in the database, so every instance agrees with or without Redis:
 *
 * - a client that fails AUTH_LOCKOUT_THRESHOLD times in a row is refused for AUTH_LOCKOUT_DURATION,
 *   on that address only; the owner signs in from any other client meanwhile;
 * - AUTH_LOCKOUT_ACCOUNT_THRESHOLD (at most NIST's 100) consecutive failures from all clients together
 *   lock the address everywhere for the same period;
 * - each further failure at or past a threshold locks again for one fixed period: the period never
 *   grows, and only a correct password (or a reset, or an operator) starts the count over;
 * - only wrong passwords count: a correct one, parallel or not, and a refusal for load never do.
 */
@Injectable()
export class LoginLockout implements OnModuleInit {
  private readonly logger = new Logger(LoginLockout.name);
  private readonly auth: Config['auth'];
  private readonly purgeIntervalMs: number;

  constructor(
    private readonly uow: UnitOfWork,
    private readonly failures: LoginFailuresRepository,
    private readonly clock: Clock,
    private readonly scheduler: SchedulerRegistry,
    config: ConfigService<Config, true>,
  ) {
    this.auth = config.getOrThrow('auth', { infer: true });
    this.purgeIntervalMs = config.getOrThrow('tokens', { infer: true }).purgeIntervalMs;
  }

  /** When the lock on this address for this client (its own or the account-wide one) ends, or null. */
  async lockedUntil(email: string, client: string, now: Date): Promise<Date | null> {
    const rows = await this.failures.find(loginKeyOf(email), [client, ANY_CLIENT]);
    return latestLock(rows, now);
  }

  /** Counts one wrong password naming `email` from `client`, and locks what crossed its threshold. */
  async recordFailure(email: string, client: string, now: Date): Promise<FailureRecorded> {
    const key = loginKeyOf(email);
    // On MySQL, concurrent failures and a success (its DELETE) on one address can deadlock on the
    // counter rows; InnoDB rolls the victim back whole, so the count is simply taken again (a 500
    // here would be a failure nobody counted).
    return retryOnDeadlock(async () => {
      await this.failures.ensure(key, [ANY_CLIENT, client], now);
      return this.countFailure(key, client, now);
    });
  }

  /** A correct password (or second factor) from `client`: its counter and the account-wide one start over. */
  async recordSuccess(email: string, client: string): Promise<void> {
    await retryOnDeadlock(() => this.failures.delete(loginKeyOf(email), [client, ANY_CLIENT]));
  }

  /** Ends every lock and count on the address (a password reset, an operator's unlock). */
  unlock(email: string): Promise<number> {
    return this.failures.delete(loginKeyOf(email));
  }

  /** Per address: the latest lock in force on any client, and the account-wide count. */
  async statesOf(emails: readonly string[], now: Date): Promise<Map<string, LockoutState>> {
    const keys = new Map(emails.map((email) => [loginKeyOf(email), email]));
    const rows = await this.failures.findAll([...keys.keys()]);
    const states = new Map<string, LockoutState>(
      emails.map((email) => [email, { lockedUntil: null, failures: 0 }]),
    );
    for (const row of rows) {
      const state = states.get(keys.get(row.emailHash) ?? '');
      if (!state) {
        continue;
      }
      state.lockedUntil = latestLock(
        [row, ...(state.lockedUntil ? [{ lockedUntil: state.lockedUntil }] : [])],
        now,
      );
      if (row.client === ANY_CLIENT) {
        state.failures = row.failures;
      }
    }
    return states;
  }

  /** Deletes counters idle for a day whose lock (if any) has ended: bounded by design. */
  purgeIdle(): Promise<number> {
    return this.failures.purgeIdle(new Date(this.clock.now().getTime() - IDLE_MS));
  }

  @Transactional()
  private async countFailure(key: string, client: string, now: Date): Promise<FailureRecorded> {
    const rows = await this.failures.lockForUpdate(key, [ANY_CLIENT, client]);
    const alreadyLocked = latestLock(rows, now);
    const lockedNow: LockScope[] = [];
    let failures = 0;
    for (const row of rows) {
      const scope: LockScope = row.client === ANY_CLIENT ? 'account' : 'client';
      const threshold = scope === 'account' ? this.auth.lockoutAccountThreshold : this.auth.lockoutThreshold;
      // A guess that passed the gate while a parallel one locked is counted, but locks nothing anew.
      if (!alreadyLocked) {
        row.failures += 1;
        if (row.failures >= threshold) {
          row.lockedUntil = new Date(now.getTime() + this.auth.lockoutDurationMs);
          lockedNow.push(scope);
        }
      }
      row.updatedAt = now;
      await this.failures.update(row);
      if (scope === 'client') {
        failures = row.failures;
      }
    }
    return { lockedUntil: latestLock(rows, now), lockedNow, failures };
  }

  onModuleInit(): void {
    scheduleCleanup(
      this.scheduler,
      {
        name: 'login-failures-retention',
        everyMs: this.purgeIntervalMs,
        what: 'idle login failure counters',
        run: () => this.purgeIdle(),
      },
      this.logger,
    );
  }
}

function latestLock(rows: readonly Pick<LoginFailure, 'lockedUntil'>[], now: Date): Date | null {
  let latest: Date | null = null;
  for (const { lockedUntil } of rows) {
    if (lockedUntil && lockedUntil > now && (!latest || lockedUntil > latest)) {
      latest = lockedUntil;
    }
  }
  return latest;
}
