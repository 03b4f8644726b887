import { createHmac } from 'node:crypto';
import { Injectable, Logger, type OnModuleInit } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import bcrypt from 'bcrypt';
import type { Config } from '../config/config.js';
import { authBusy, PasswordHasher, UNUSABLE_PASSWORD_HASH } from './password-hasher.service.js';
import { normalizePassword } from './password.policy.js';

/**
 * bcrypt reads only the first 72 bytes of its input, so passwords are pre-hashed with HMAC-SHA-256
 * (base64, 44 bytes) first: nothing is truncated and a 64-emoji password is as strong as it looks.
 * The HMAC key is a fixed domain separator, not a secret (see OWASP Password Storage Cheat Sheet,
 * "Pre-Hashing Passwords with bcrypt").
 */
const PREHASH_KEY = 'gatehouse/password/v1';

/** The default PasswordHasher: bcrypt at BCRYPT_COST, behind a bounded queue. */
@Injectable()
export class BcryptPasswordHasher extends PasswordHasher implements OnModuleInit {
  private readonly cost: number;
  private readonly queueLimit: number;
  private readonly concurrency: number;
  private running = 0;
  private readonly waiting: Array<() => void> = [];
  /** A real hash at the configured cost, compared against when the email is unknown (same timing). */
  private dummyHash = '';

  constructor(config: ConfigService<Config, true>) {
    super();
    const auth = config.getOrThrow('auth', { infer: true });
    this.cost = auth.bcryptCost;
    this.queueLimit = auth.hashQueueLimit;
    this.concurrency = auth.hashConcurrency;
  }

  async onModuleInit(): Promise<void> {
    // bcrypt shares libuv's pool with file and DNS work: with no thread to spare, a login flood would
    // queue log writes and lookups behind hashes.
    const poolSize = Number(process.env.UV_THREADPOOL_SIZE ?? 4);
    if (this.concurrency >= poolSize) {
      new Logger(BcryptPasswordHasher.name).warn(
        `HASH_CONCURRENCY=${this.concurrency} leaves no thread of UV_THREADPOOL_SIZE=${poolSize} to file and DNS work; set UV_THREADPOOL_SIZE to at least ${this.concurrency + 1}`,
      );
    }
    this.dummyHash = await bcrypt.hash(prehash('gatehouse-dummy-password'), this.cost);
  }

  hash(password: string): Promise<string> {
    return this.bounded(() => bcrypt.hash(prehash(password), this.cost));
  }

  verify(password: string, hash: string): Promise<boolean> {
    if (hash === UNUSABLE_PASSWORD_HASH) {
      return this.verifyNothing(password);
    }
    return this.bounded(() => bcrypt.compare(prehash(password), hash));
  }

  async verifyNothing(password: string): Promise<false> {
    await this.bounded(() => bcrypt.compare(prehash(password), this.dummyHash));
    return false;
  }

  /** True when the hash was made with a lower cost than configured. */
  needsRehash(hash: string): boolean {
    const cost = Number(/^\$2[aby]\$(\d{2})\$/.exec(hash)?.[1]);
    return !Number.isFinite(cost) || cost < this.cost;
  }

  /**
   * bcrypt runs on libuv's thread pool, HASH_CONCURRENCY at a time: by default one less than the CPU
   * count, so a login flood keeps a core for the event loop and every other route stays fast, and
   * each hash gets a core of its own (more in flight only slows each one down). Up to
   * HASH_QUEUE_LIMIT more wait their turn here; beyond that a flood gets 503 at once instead of
   * queueing without bound.
   */
  private async bounded<T>(work: () => Promise<T>): Promise<T> {
    if (this.running + this.waiting.length >= this.concurrency + this.queueLimit) {
      throw authBusy();
    }
    if (this.running < this.concurrency) {
      this.running += 1;
    } else {
      // The finishing hash hands its slot over: `running` stays the same.
      await new Promise<void>((resolve) => this.waiting.push(resolve));
    }
    try {
      return await work();
    } finally {
      const next = this.waiting.shift();
      if (next) {
        next();
      } else {
        this.running -= 1;
      }
    }
  }
}

/** What bcrypt is given for a password: HMAC-SHA-256 of its NFKC form, base64 (44 bytes, never truncated). */
export function prehash(password: string): string {
  return createHmac('sha256', PREHASH_KEY).update(normalizePassword(password), 'utf8').digest('base64');
}
