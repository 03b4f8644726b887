import { Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { SchedulerRegistry } from '@nestjs/schedule';
import { Clock } from '../common/clock.js';
import { scheduleCleanup } from '../common/schedule.js';
import type { Config } from '../config/config.js';
import { retryOnDeadlock } from '../database/driver-errors.js';
import { UnitOfWork } from '../database/unit-of-work.js';
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

/** A credential check the lockout admitted: it holds a place until settled, once. */
export interface AdmittedCheck {
  readonly emailHash: string;
  readonly client: string;
  settled: boolean;
}

/** What the lockout says to a credential about to be checked. */
export type Admission =
  | { admitted: AdmittedCheck }
  /** Locked: check nothing, answer 429 with Retry-After. */
  | { lockedUntil: Date }
  /** The checks in flight did not settle in time (a refusal for load, not a failure). */
  | { busy: true };

/** What an operator sees of an address's counters. */
export interface LockoutState {
  lockedUntil: Date | null;
  /** Consecutive failures across every client since the last success. */
  failures: number;
}

/** Idle counters are forgotten after a day: a lock never lasts that long (AUTH_LOCKOUT_DURATION ≤ 1h). */
const IDLE_MS = 24 * 60 * 60 * 1000;
/** How long a check waits for a place among the checks in flight before it is refused for load. */
const MAX_WAIT_MS = 10_000;
/** How often a waiting check looks again: a check settling on another instance wakes nobody here. */
const POLL_MS = 100;

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
 *   grows, and only a correct credential (or a reset, or an operator) starts the count over;
 * - only wrong credentials count: a correct one, parallel or not, and a refusal for load never do.
 *
 * The caps hold under any concurrency because a credential is admitted before it is checked, not
 * judged after: `admit` takes a place under both thresholds in one transaction with the counters
 * row-locked (SELECT … FOR UPDATE; SQLite serializes write transactions), counting the checks in
 * flight beside the failures. A counter at `failures` with `inFlight` checks under way admits another
 * only while `failures + inFlight` stays below its threshold (once past it, after a lock ends, one at
 * a time), so of N concurrent guesses at most the threshold are ever checked per lock period; the
 * rest wait for those to settle, then meet the lock, or a count started over, or (after MAX_WAIT_MS)
 * a refusal for load. Every admitted check is settled once: `failed` (counted; the failure that
 * reaches a threshold locks and says so), `succeeded` (the count starts over), or `release` (nothing
 * counted: a correct password that still owes its second factor, a check that never finished). A
 * process that dies mid-check leaves a place taken; it is ignored once the counter has been idle for
 * a lock period.
 */
@Injectable()
export class LoginLockout implements OnModuleInit {
  private readonly logger = new Logger(LoginLockout.name);
  private readonly auth: Config['auth'];
  private readonly purgeIntervalMs: number;
  /** Checks on this instance waiting for a place, by address hash: woken when one settles here. */
  private readonly waiting = new Map<string, Set<() => void>>();

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

  /**
   * Asks to check one credential naming `email` from `client`: admitted (settle it once), locked, or
   * busy. Waits while the checks already in flight fill the threshold.
   */
  async admit(email: string, client: string): Promise<Admission> {
    const emailHash = loginKeyOf(email);
    const giveUpAt = performance.now() + MAX_WAIT_MS;
    for (;;) {
      const now = this.clock.now();
      const outcome = await this.withCounters(emailHash, client, now, 'ensure', (rows) =>
        this.takePlace(rows, now),
      );
      if (outcome === 'admitted') {
        return { admitted: { emailHash, client, settled: false } };
      }
      if (outcome !== 'full') {
        return outcome;
      }
      if (performance.now() >= giveUpAt) {
        return { busy: true };
      }
      await this.nextTurn(emailHash);
    }
  }

  /** The admitted credential was wrong: counted, and what crossed its threshold is locked. */
  async failed(check: AdmittedCheck): Promise<FailureRecorded> {
    settle(check);
    const now = this.clock.now();
    const recorded = await this.withCounters(check.emailHash, check.client, now, 'ensure', (rows) =>
      this.countFailure(rows, now),
    );
    this.wake(check.emailHash);
    return recorded;
  }

  /** The admitted credential proved the user: this client's counter and the account-wide one start over. */
  async succeeded(check: AdmittedCheck): Promise<void> {
    settle(check);
    const now = this.clock.now();
    await this.withCounters(check.emailHash, check.client, now, 'existing', (rows) =>
      this.startOver(rows, now),
    );
    this.wake(check.emailHash);
  }

  /** Gives the place back, counting nothing (a correct password owing its second factor, a check cut short). */
  async release(check: AdmittedCheck): Promise<void> {
    settle(check);
    const now = this.clock.now();
    await this.withCounters(check.emailHash, check.client, now, 'existing', async (rows) => {
      for (const row of rows) {
        row.inFlight = this.othersInFlight(row, now);
        row.updatedAt = now;
        await this.failures.update(row);
      }
    });
    this.wake(check.emailHash);
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

  /**
   * Runs `work` on this client's counter and the account-wide one, row-locked in one transaction.
   * With 'ensure' both exist first (created outside the transaction: see `ensure`) and `work` always
   * gets both; a success or an unlock may delete them in between, so that is simply tried again. On
   * MySQL, concurrent settles and admissions on one address can deadlock on the counter rows; InnoDB
   * rolls the victim back whole, so it is run again (a 500 here would be a check nobody settled).
   */
  private async withCounters<T>(
    emailHash: string,
    client: string,
    now: Date,
    rows: 'ensure' | 'existing',
    work: (rows: LoginFailure[]) => Promise<T>,
  ): Promise<T> {
    const clients = [ANY_CLIENT, client];
    for (;;) {
      const result = await retryOnDeadlock(async () => {
        if (rows === 'ensure') {
          await this.failures.ensure(emailHash, clients, now);
        }
        return this.uow.withTransaction(async () => {
          const locked = await this.failures.lockForUpdate(emailHash, clients);
          return rows === 'ensure' && locked.length < clients.length
            ? MISSING
            : { value: await work(locked) };
        });
      });
      if (result !== MISSING) {
        return result.value;
      }
    }
  }

  private async takePlace(
    rows: LoginFailure[],
    now: Date,
  ): Promise<'admitted' | 'full' | { lockedUntil: Date }> {
    const lockedUntil = latestLock(rows, now);
    if (lockedUntil) {
      return { lockedUntil };
    }
    if (rows.some((row) => this.inFlightOf(row, now) >= this.placesOf(row))) {
      return 'full';
    }
    for (const row of rows) {
      row.inFlight = this.inFlightOf(row, now) + 1;
      row.updatedAt = now;
      await this.failures.update(row);
    }
    return 'admitted';
  }

  private async countFailure(rows: LoginFailure[], now: Date): Promise<FailureRecorded> {
    const lockedNow: LockScope[] = [];
    let failures = 0;
    for (const row of rows) {
      const scope = scopeOf(row);
      row.inFlight = this.othersInFlight(row, now);
      row.failures += 1;
      // A lock in force (the other scope's check may have set it) is never lengthened.
      if (row.failures >= this.thresholdOf(row) && !latestLock([row], now)) {
        row.lockedUntil = new Date(now.getTime() + this.auth.lockoutDurationMs);
        lockedNow.push(scope);
      }
      row.updatedAt = now;
      await this.failures.update(row);
      if (scope === 'client') {
        failures = row.failures;
      }
    }
    return { lockedUntil: latestLock(rows, now), lockedNow, failures };
  }

  private async startOver(rows: LoginFailure[], now: Date): Promise<void> {
    for (const row of rows) {
      const othersInFlight = this.othersInFlight(row, now);
      if (othersInFlight === 0) {
        await this.failures.delete(row.emailHash, [row.client]);
        continue;
      }
      // Checks still in flight keep their places; their failures, if they fail, count from zero.
      Object.assign(row, { failures: 0, lockedUntil: null, inFlight: othersInFlight, updatedAt: now });
      await this.failures.update(row);
    }
  }

  private thresholdOf(row: LoginFailure): number {
    return scopeOf(row) === 'account' ? this.auth.lockoutAccountThreshold : this.auth.lockoutThreshold;
  }

  /** How many checks a counter admits at once: what is left below its threshold, or one once past it. */
  private placesOf(row: LoginFailure): number {
    return Math.max(1, this.thresholdOf(row) - row.failures);
  }

  /** Checks in flight on a counter; a count idle for a lock period was left by a process that died. */
  private inFlightOf(row: LoginFailure, now: Date): number {
    return now.getTime() - row.updatedAt.getTime() >= this.auth.lockoutDurationMs ? 0 : row.inFlight;
  }

  /** The checks still in flight on a counter once the one being settled gives its place back. */
  private othersInFlight(row: LoginFailure, now: Date): number {
    return Math.max(0, this.inFlightOf(row, now) - 1);
  }

  /** Resolves when a check on this address settles here, or after POLL_MS (one may settle elsewhere). */
  private nextTurn(emailHash: string): Promise<void> {
    return new Promise((resolve) => {
      const waiters = this.waiting.get(emailHash) ?? new Set<() => void>();
      this.waiting.set(emailHash, waiters);
      const done = () => {
        clearTimeout(timer);
        waiters.delete(done);
        if (waiters.size === 0 && this.waiting.get(emailHash) === waiters) {
          this.waiting.delete(emailHash);
        }
        resolve();
      };
      const timer = setTimeout(done, POLL_MS);
      waiters.add(done);
    });
  }

  private wake(emailHash: string): void {
    for (const done of [...(this.waiting.get(emailHash) ?? [])]) {
      done();
    }
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

/** A counter deleted between `ensure` and the row lock. */
const MISSING = Symbol('missing');

function settle(check: AdmittedCheck): void {
  if (check.settled) {
    throw new Error('A login check was settled twice');
  }
  check.settled = true;
}

function scopeOf(row: LoginFailure): LockScope {
  return row.client === ANY_CLIENT ? 'account' : 'client';
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
