import type { ConfigService } from '@nestjs/config';
import bcrypt from 'bcrypt';
import type { Config } from '../config/config.js';
import { AppException } from '../common/problem.js';
import { BcryptPasswordHasher } from './bcrypt-password-hasher.service.js';

function hasher(hashConcurrency: number, hashQueueLimit: number): BcryptPasswordHasher {
  const auth = { bcryptCost: 4, hashConcurrency, hashQueueLimit };
  return new BcryptPasswordHasher({ getOrThrow: () => auth } as unknown as ConfigService<Config, true>);
}

describe(BcryptPasswordHasher.name, () => {
  let running: number;
  let peak: number;
  let release: Array<() => void>;

  beforeEach(() => {
    running = 0;
    peak = 0;
    release = [];
    // Each hash stays in flight until the test releases it, so concurrency is observed, not timed.
    jest.spyOn(bcrypt, 'hash').mockImplementation(
      () =>
        new Promise<string>((resolve) => {
          running += 1;
          peak = Math.max(peak, running);
          release.push(() => {
            running -= 1;
            resolve('$2b$04$hash');
          });
        }) as never,
    );
  });

  afterEach(() => jest.restoreAllMocks());

  const settle = () => new Promise((resolve) => setImmediate(resolve));

  it('runs at most HASH_CONCURRENCY hashes at once and starts the next as one finishes', async () => {
    const sut = hasher(2, 10);
    const all = Promise.all(Array.from({ length: 5 }, (_, i) => sut.hash(`password ${i}`)));
    await settle();
    expect(running).toBe(2);
    while (release.length > 0 || running > 0) {
      release.shift()?.();
      await settle();
      expect(running).toBeLessThanOrEqual(2);
    }
    expect(await all).toHaveLength(5);
    expect(peak).toBe(2);
  });

  it('answers AUTH_BUSY beyond HASH_CONCURRENCY running plus HASH_QUEUE_LIMIT waiting', async () => {
    const sut = hasher(1, 2);
    const accepted = [sut.hash('a'), sut.hash('b'), sut.hash('c')];
    await expect(sut.hash('d')).rejects.toMatchObject({ code: 'AUTH_BUSY' });
    await expect(sut.hash('e')).rejects.toBeInstanceOf(AppException);
    await settle();
    for (let i = 0; i < 3; i += 1) {
      release.shift()?.();
      await settle();
    }
    await expect(Promise.all(accepted)).resolves.toHaveLength(3);
    // The queue drained: a new hash is accepted again.
    const again = sut.hash('f');
    await settle();
    release.shift()?.();
    await expect(again).resolves.toBe('$2b$04$hash');
  });
});
