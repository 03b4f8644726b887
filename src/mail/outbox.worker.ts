import { randomBytes, randomInt } from 'node:crypto';
import { hostname } from 'node:os';
import {
  Inject,
  Injectable,
  Logger,
  type OnApplicationBootstrap,
  type OnModuleDestroy,
} from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { Clock } from '../common/clock.js';
import { Shutdown } from '../common/shutdown.js';
import type { Config, MailConfig } from '../config/config.js';
import { MailSender, type OutgoingMail, PermanentMailError } from './mail-sender.js';
import { isMailTemplate, type LinkLifetimes, mailContext } from './mail-template.js';
import { SMTP_CONNECTIONS, sendTimeoutMs } from './mailer.options.js';
import type { OutboxMessage } from './outbox-message.entity.js';
import { type OutboxClaims, OutboxRepository } from './outbox.repository.js';
import { PayloadCipher, UnknownPayloadKeyError, openPayload } from './payload-cipher.js';

/** Rows claimed per round; the pooled SMTP transport sends up to SMTP_CONNECTIONS of them at a time. */
export const CLAIM_BATCH = 10;
const MAX_BACKOFF_MS = 60 * 60 * 1000;
/** How soon a row sealed with a key this instance lacks is due again (for an instance that has it). */
const FOREIGN_KEY_WAIT_MS = 10_000;
/** Plain addr-spec: one @, no spaces, brackets, commas or control characters (no header tricks). */
const ADDRESS = /^[^\s@<>()[\]\\,;:"]+@[^\s@<>()[\]\\,;:"]+\.[^\s@<>()[\]\\,;:"]+$/;

/**
 * Delivers the outbox (DESIGN §6). Every MAIL_POLL_INTERVAL it claims due rows exclusively
 * (OutboxRepository.claimDue: SKIP LOCKED on MySQL), hands each to the MailSender, and marks it sent;
 * a failure is retried with exponential backoff until MAIL_MAX_ATTEMPTS, then the row is dead.
 */
@Injectable()
export class OutboxWorker implements OnApplicationBootstrap, OnModuleDestroy {
  /** Names this process in locked_by (varchar 64). */
  readonly workerId = `${hostname().slice(0, 40)}:${process.pid}:${randomBytes(4).toString('hex')}`;
  private readonly logger = new Logger(OutboxWorker.name);
  private readonly config: MailConfig;
  private readonly lifetimes: LinkLifetimes;
  /** Longer than a full claimed batch can take, so a live worker never loses its lease mid-send. */
  private readonly leaseMs: number;
  private timer?: NodeJS.Timeout;
  private stopped = false;
  /** Aborts the sends still running when SHUTDOWN_GRACE runs out. */
  private readonly cancel = new AbortController();
  private cancelTimer?: NodeJS.Timeout;
  /** Drains run one after another, never overlapping, whether started by the timer or by drainOnce(). */
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    @Inject(OutboxRepository) private readonly outbox: OutboxClaims,
    private readonly sender: MailSender,
    private readonly cipher: PayloadCipher,
    private readonly clock: Clock,
    config: ConfigService<Config, true>,
    private readonly shutdown: Shutdown,
  ) {
    this.config = config.getOrThrow('mail', { infer: true });
    this.lifetimes = config.getOrThrow('tokens', { infer: true });
    this.leaseMs = 60_000 + (CLAIM_BATCH / SMTP_CONNECTIONS + 1) * sendTimeoutMs(this.config);
    // The stop begins with SIGTERM, while the HTTP server still drains: stop claiming at once.
    shutdown.onBegin(() => this.stop());
  }

  onApplicationBootstrap(): void {
    this.schedule();
  }

  /**
   * Shutdown: no new claims; claimed rows not yet handed to the sender are released at once; sends in
   * flight finish, or are cancelled (connection closed before the server's 250) when SHUTDOWN_GRACE
   * runs out and their rows released. Either way no row stays claimed by a stopped process: another
   * instance picks them up without waiting out the lease, and nothing is sent twice.
   */
  async onModuleDestroy(): Promise<void> {
    this.stop();
    await this.chain;
    clearTimeout(this.cancelTimer);
  }

  private stop(): void {
    if (this.stopped) {
      return;
    }
    this.stopped = true;
    clearTimeout(this.timer);
    this.cancelTimer = setTimeout(() => this.cancel.abort(), this.shutdown.remainingMs());
    this.cancelTimer.unref();
  }

  /**
   * Delivers everything due now and resolves with the number of rows handled (sent, rescheduled or
   * dead). Tests and the bench await it instead of sleeping.
   */
  drainOnce(): Promise<number> {
    const run = this.chain.then(() => this.drain());
    this.chain = run.catch(() => undefined);
    return run;
  }

  private schedule(): void {
    if (this.stopped) {
      return;
    }
    this.timer = setTimeout(() => {
      this.drainOnce()
        .catch((error: unknown) => this.logger.error(`Outbox poll failed: ${describe(error)}`))
        .finally(() => this.schedule());
    }, this.config.pollIntervalMs);
    this.timer.unref();
  }

  private async drain(): Promise<number> {
    let handled = 0;
    while (!this.stopped) {
      const now = this.clock.now();
      const leaseUntil = new Date(now.getTime() + this.leaseMs);
      const rows = await this.outbox.claimDue(this.workerId, now, leaseUntil, CLAIM_BATCH);
      await this.deliverAll(rows);
      handled += rows.length;
      if (rows.length < CLAIM_BATCH || this.stopped) {
        break;
      }
    }
    return handled;
  }

  /**
   * SMTP_CONNECTIONS sends at a time (what the pooled transport would run anyway), so that rows not
   * yet started when the stop begins are still ours to release rather than queued inside the sender.
   */
  private async deliverAll(rows: OutboxMessage[]): Promise<void> {
    const queue = [...rows];
    const lane = async () => {
      for (let row = queue.shift(); row; row = queue.shift()) {
        if (this.stopped) {
          await this.release(row, 'not attempted: the instance is stopping');
        } else {
          await this.deliver(row);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(SMTP_CONNECTIONS, queue.length) }, lane));
  }

  private async deliver(row: OutboxMessage): Promise<void> {
    let mail: OutgoingMail;
    try {
      mail = this.compose(row);
    } catch (error) {
      if (error instanceof UnknownPayloadKeyError) {
        await this.handBack(row, error);
      } else {
        await this.fail(row, error);
      }
      return;
    }
    try {
      await this.sender.send(mail, this.cancel.signal);
    } catch (error) {
      if (this.cancel.signal.aborted) {
        await this.release(row, `cancelled: the instance stopped (SHUTDOWN_GRACE) before the send finished`);
      } else {
        await this.fail(row, error);
      }
      return;
    }
    // Sent. If this update fails the lease runs out and the message may go out twice: rare, and
    // better than never (the alternative, marking before sending, loses mail on a crash).
    await this.settle(row, 'sent', () => this.outbox.markSent(row, this.clock.now()));
    this.logger.log(`Mail #${row.id} (${row.template}) sent by ${this.workerId}`);
  }

  private compose(row: OutboxMessage): OutgoingMail {
    let data: Record<string, string>;
    try {
      data = openPayload(this.cipher, row.template, row.recipient, row.payload);
    } catch (error) {
      if (error instanceof UnknownPayloadKeyError) {
        throw error;
      }
      throw new PermanentMailError(
        `payload cannot be decrypted (${describe(error)}); was MAIL_PAYLOAD_KEY changed?`,
      );
    }
    if (!ADDRESS.test(row.recipient) || row.recipient.length > 254) {
      throw new PermanentMailError('invalid recipient address');
    }
    if (!isMailTemplate(row.template)) {
      // A row another version of the app wrote: this build cannot render it.
      throw new PermanentMailError(`unknown mail template "${row.template}"`);
    }
    const context = mailContext(row.template, row.recipient, data, {
      publicUrl: this.config.publicUrl,
      lifetimes: this.lifetimes,
    });
    return {
      outboxId: row.id,
      template: row.template,
      to: row.recipient,
      subject: context.subject,
      context,
    };
  }

  private async fail(row: OutboxMessage, error: unknown): Promise<void> {
    const lastError = describe(error).slice(0, 1000);
    const permanent = error instanceof PermanentMailError;
    if (permanent || row.attempts >= this.config.maxAttempts) {
      await this.settle(row, 'dead', () => this.outbox.markDead(row, lastError));
      this.logger.error(
        `Mail outbox #${row.id} (${row.template}) is dead after ${row.attempts} attempt(s)` +
          `${permanent ? ' (not retryable)' : ''}: ${lastError}`,
      );
      return;
    }
    const delayMs = this.backoffMs(row.attempts);
    const nextAttemptAt = new Date(this.clock.now().getTime() + delayMs);
    await this.settle(row, 'rescheduled', () => this.outbox.markFailed(row, lastError, nextAttemptAt));
    this.logger.warn(
      `Mail outbox #${row.id} (${row.template}) attempt ${row.attempts}/${this.config.maxAttempts} failed, ` +
        `retrying in ${Math.round(delayMs / 1000)}s: ${lastError}`,
    );
  }

  /**
   * A key rotation in progress (DESIGN §6): another instance already seals with a key this one does
   * not hold yet. Nothing was sent, so the attempt does not count and the row is never dead for it;
   * it is due again soon, for whichever instance holds the key (this one too, once restarted with it).
   */
  private async handBack(row: OutboxMessage, error: UnknownPayloadKeyError): Promise<void> {
    const delayMs = Math.min(this.config.retryBaseDelayMs, FOREIGN_KEY_WAIT_MS);
    const nextAttemptAt = new Date(this.clock.now().getTime() + delayMs);
    await this.settle(row, 'handed back', () => this.outbox.handBack(row, error.message, nextAttemptAt));
    this.logger.warn(`Mail outbox #${row.id} (${row.template}) left for another instance: ${error.message}`);
  }

  /** Nothing was delivered and the process is stopping: due again now, the attempt not counted. */
  private async release(row: OutboxMessage, reason: string): Promise<void> {
    await this.settle(row, 'released', () => this.outbox.handBack(row, reason, this.clock.now()));
    this.logger.log(`Mail outbox #${row.id} (${row.template}) released: ${reason}`);
  }

  /** Releases the claim; a failure to do so is logged, never thrown (the lease runs out and the row is due again). */
  private async settle(row: OutboxMessage, outcome: string, release: () => Promise<boolean>): Promise<void> {
    try {
      if (!(await release())) {
        this.logger.warn(`Mail outbox #${row.id}: the claim expired before the worker finished`);
      }
    } catch (error) {
      this.logger.error(`Mail outbox #${row.id} could not be marked ${outcome}: ${describe(error)}`);
    }
  }

  /** Exponential backoff with jitter: base·2^(n-1), capped, then a random 50-100 % of it. */
  private backoffMs(attempts: number): number {
    const exponential = Math.min(
      MAX_BACKOFF_MS,
      this.config.retryBaseDelayMs * 2 ** Math.max(0, attempts - 1),
    );
    return Math.round(exponential / 2 + randomInt(Math.max(1, Math.floor(exponential / 2)) + 1));
  }
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) {
    return String(error);
  }
  const { code, responseCode } = error as Error & { code?: string; responseCode?: number };
  const tag = [code, responseCode].filter((v) => v !== undefined).join(' ');
  return `${tag ? `[${tag}] ` : ''}${error.message}`.replace(/[\r\n]+/g, ' ').trim();
}
