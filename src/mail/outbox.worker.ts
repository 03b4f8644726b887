import { randomBytes, randomInt } from 'node:crypto';
import { hostname } from 'node:os';
import { Injectable, Logger, type OnApplicationBootstrap, type OnModuleDestroy } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { InjectDataSource } from '@nestjs/typeorm';
import { type DataSource, In } from 'typeorm';
import { Clock } from '../common/clock.js';
import type { Config, MailConfig } from '../config/config.js';
import { isMysqlFamily } from '../database/data-source.js';
import type { FileTransportInfo } from './file.transport.js';
import { MailRenderer, PermanentMailError } from './mail-templates.js';
import { MailTransport, SMTP_CONNECTIONS } from './mail.transport.js';
import { OutboxMessage } from './outbox-message.entity.js';
import { ERASED_PAYLOAD, PayloadCipher, openPayload } from './payload-cipher.js';

/** Rows claimed per round; the pooled SMTP transport sends up to SMTP_CONNECTIONS of them at a time. */
export const CLAIM_BATCH = 10;
const MAX_BACKOFF_MS = 60 * 60 * 1000;
/** Plain addr-spec: one @, no spaces, brackets, commas or control characters (no header tricks). */
const ADDRESS = /^[^\s@<>()[\]\\,;:"]+@[^\s@<>()[\]\\,;:"]+\.[^\s@<>()[\]\\,;:"]+$/;

/**
 * Delivers the outbox (DESIGN §6). Every MAIL_POLL_INTERVAL it claims due rows exclusively: on
 * MySQL/MariaDB with SELECT … FOR UPDATE SKIP LOCKED, so any number of app instances can run a worker
 * without sending a message twice; on SQLite with one atomic UPDATE (SQLite has a single writer).
 * A claim is a lease: it moves next_attempt_at to locked_until, so a row whose worker died is simply
 * due again once the lease runs out, with no separate recovery job.
 */
@Injectable()
export class OutboxWorker implements OnApplicationBootstrap, OnModuleDestroy {
  /** Names this process in locked_by (varchar 64). */
  readonly workerId = `${hostname().slice(0, 40)}:${process.pid}:${randomBytes(4).toString('hex')}`;
  private readonly logger = new Logger(OutboxWorker.name);
  private readonly config: MailConfig;
  /** Longer than a full claimed batch can take, so a live worker never loses its lease mid-send. */
  private readonly leaseMs: number;
  private timer?: NodeJS.Timeout;
  private stopped = false;
  /** Drains run one after another, never overlapping, whether started by the timer or by drainOnce(). */
  private chain: Promise<unknown> = Promise.resolve();

  constructor(
    @InjectDataSource() private readonly dataSource: DataSource,
    private readonly transport: MailTransport,
    private readonly renderer: MailRenderer,
    private readonly cipher: PayloadCipher,
    private readonly clock: Clock,
    config: ConfigService<Config, true>,
  ) {
    this.config = config.getOrThrow('mail', { infer: true });
    this.leaseMs = 60_000 + (CLAIM_BATCH / SMTP_CONNECTIONS + 1) * sendTimeoutMs(this.config);
  }

  onApplicationBootstrap(): void {
    this.schedule();
  }

  /** Shutdown: no new claims; the batch in flight finishes (bounded by the SMTP timeouts). */
  async onModuleDestroy(): Promise<void> {
    this.stopped = true;
    clearTimeout(this.timer);
    await this.chain;
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
    while (!this.stopped || handled === 0) {
      const rows = await this.claim();
      await Promise.all(rows.map((row) => this.deliver(row)));
      handled += rows.length;
      if (rows.length < CLAIM_BATCH || this.stopped) {
        break;
      }
    }
    return handled;
  }

  private async claim(): Promise<OutboxMessage[]> {
    const now = this.clock.now();
    const leaseUntil = new Date(now.getTime() + this.leaseMs);
    const claimed = { lockedBy: this.workerId, lockedUntil: leaseUntil, nextAttemptAt: leaseUntil };
    const repository = this.dataSource.getRepository(OutboxMessage);

    if (isMysqlFamily(this.dataSource)) {
      const ids = await this.dataSource.transaction(async (manager) => {
        const due: { id: number }[] = await manager.query(
          `SELECT id FROM mail_outbox WHERE status = 'pending' AND next_attempt_at <= ?
           ORDER BY next_attempt_at, id LIMIT ${CLAIM_BATCH} FOR UPDATE SKIP LOCKED`,
          [now],
        );
        if (due.length > 0) {
          await manager
            .createQueryBuilder()
            .update(OutboxMessage)
            .set({ ...claimed, attempts: () => 'attempts + 1' })
            .whereInIds(due.map((r) => r.id))
            .execute();
        }
        return due.map((r) => Number(r.id));
      });
      return ids.length > 0 ? repository.findBy({ id: In(ids) }) : [];
    }

    await repository
      .createQueryBuilder()
      .update()
      .set({ ...claimed, attempts: () => 'attempts + 1' })
      .where(
        `id IN (SELECT id FROM mail_outbox WHERE status = 'pending' AND next_attempt_at <= :now
                ORDER BY next_attempt_at, id LIMIT ${CLAIM_BATCH})`,
        { now },
      )
      .execute();
    return repository.findBy({ status: 'pending', lockedBy: this.workerId, lockedUntil: leaseUntil });
  }

  private async deliver(row: OutboxMessage): Promise<void> {
    try {
      const data = this.open(row);
      if (!ADDRESS.test(row.recipient) || row.recipient.length > 254) {
        throw new PermanentMailError('invalid recipient address');
      }
      const mail = this.renderer.render(row.template, row.recipient, data);
      const info = (await withTimeout(
        this.transport.send({ to: row.recipient, subject: mail.subject, html: mail.html, text: mail.text }),
        sendTimeoutMs(this.config),
      )) as Partial<FileTransportInfo>;
      await this.finish(row, { status: 'sent', sentAt: this.clock.now(), lastError: null });
      if (info.path !== undefined) {
        // The one place a link may be logged: the development file transport, so a new user can
        // finish sign-up without a mail server. Never under NODE_ENV=test or production.
        const link = this.config.nodeEnv === 'development' && mail.link ? `; link: ${mail.link}` : '';
        this.logger.log(`Mail #${row.id} (${row.template}) written to ${info.path}${link}`);
      } else {
        this.logger.log(`Mail #${row.id} (${row.template}) sent by ${this.workerId}`);
      }
    } catch (error) {
      await this.fail(row, error);
    }
  }

  private open(row: OutboxMessage): Record<string, string> {
    try {
      return openPayload(this.cipher, row.template, row.recipient, row.payload);
    } catch (error) {
      throw new PermanentMailError(
        `payload cannot be decrypted (${describe(error)}); was MAIL_PAYLOAD_KEY changed?`,
      );
    }
  }

  private async fail(row: OutboxMessage, error: unknown): Promise<void> {
    const lastError = describe(error).slice(0, 1000);
    const permanent = error instanceof PermanentMailError;
    try {
      if (permanent || row.attempts >= this.config.maxAttempts) {
        await this.finish(row, { status: 'dead', lastError });
        this.logger.error(
          `Mail outbox #${row.id} (${row.template}) is dead after ${row.attempts} attempt(s)` +
            `${permanent ? ' (not retryable)' : ''}: ${lastError}`,
        );
        return;
      }
      const delayMs = this.backoffMs(row.attempts);
      await this.finish(row, {
        status: 'pending',
        lastError,
        nextAttemptAt: new Date(this.clock.now().getTime() + delayMs),
      });
      this.logger.warn(
        `Mail outbox #${row.id} (${row.template}) attempt ${row.attempts}/${this.config.maxAttempts} failed, ` +
          `retrying in ${Math.round(delayMs / 1000)}s: ${lastError}`,
      );
    } catch (updateError) {
      // The lease runs out and the row is retried: nothing is lost, but say so.
      this.logger.error(
        `Mail outbox #${row.id} could not be updated after a failure: ${describe(updateError)}`,
      );
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

  /** Releases the claim; only while this worker still holds it (a late writer cannot clobber a re-claim). */
  private async finish(row: OutboxMessage, changes: Partial<OutboxMessage>): Promise<void> {
    const done = changes.status !== 'pending';
    const result = await this.dataSource
      .createQueryBuilder()
      .update(OutboxMessage)
      .set({
        ...changes,
        lockedBy: null,
        lockedUntil: null,
        ...(done ? { payload: ERASED_PAYLOAD } : {}),
      })
      .where('id = :id AND locked_by = :workerId AND locked_until = :lockedUntil', {
        id: row.id,
        workerId: this.workerId,
        lockedUntil: row.lockedUntil,
      })
      .execute();
    if (result.affected === 0) {
      this.logger.warn(`Mail outbox #${row.id}: the claim expired before the worker finished`);
    }
  }
}

/** A hard cap on one send; the transport's own timeouts normally fire first. */
function sendTimeoutMs(config: MailConfig): number {
  return config.smtpTimeoutMs * 3;
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`sending took longer than ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

function describe(error: unknown): string {
  if (!(error instanceof Error)) {
    return String(error);
  }
  const { code, responseCode } = error as Error & { code?: string; responseCode?: number };
  const tag = [code, responseCode].filter((v) => v !== undefined).join(' ');
  return `${tag ? `[${tag}] ` : ''}${error.message}`.replace(/[\r\n]+/g, ' ').trim();
}
