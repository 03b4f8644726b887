import { randomBytes } from 'node:crypto';
import { type ThrottlerStorage, ThrottlerStorageService } from '@nestjs/throttler';
import { RedisThrottlerStorage } from './redis-throttler.storage.js';

const redisUrl = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** The same scenario against throttler's memory storage and ours: the guard must not tell them apart. */
describe.each([
  ['ThrottlerStorageService (memory)', () => new ThrottlerStorageService()],
  [RedisThrottlerStorage.name, () => new RedisThrottlerStorage(redisUrl)],
])('%s', (_name, create: () => ThrottlerStorage & { onApplicationShutdown(): unknown }) => {
  let sut: ReturnType<typeof create>;
  const key = () => `spec-${randomBytes(8).toString('hex')}`;

  beforeAll(async () => {
    sut = create();
    if (sut instanceof RedisThrottlerStorage) {
      await sut.onModuleInit();
    }
  });

  afterAll(async () => {
    await sut.onApplicationShutdown();
  });

  it('should count up to the limit, then block for the block duration', async () => {
    const k = key();
    const records = [];
    for (let i = 0; i < 4; i += 1) {
      records.push(await sut.increment(k, 60_000, 3, 30_000, 'spec'));
    }
    expect(records.map((r) => [r.totalHits, r.isBlocked])).toEqual([
      [1, false],
      [2, false],
      [3, false],
      [4, true],
    ]);
    expect(records[0].timeToExpire).toBe(60);
    expect(records[3].timeToBlockExpire).toBe(30);
  });

  it('should keep a blocked key blocked without counting, and start afresh when the block ends', async () => {
    const k = key();
    for (let i = 0; i < 2; i += 1) {
      await sut.increment(k, 400, 1, 400, 'spec');
    }
    const stillBlocked = await sut.increment(k, 400, 1, 400, 'spec');
    expect(stillBlocked.isBlocked).toBe(true);
    expect(stillBlocked.totalHits).toBe(2);
    await sleep(500);
    const afterwards = await sut.increment(k, 400, 1, 400, 'spec');
    expect([afterwards.totalHits, afterwards.isBlocked]).toEqual([1, false]);
  });

  it('should keep separate counts for the same key under different throttler names', async () => {
    const k = key();
    await sut.increment(k, 60_000, 5, 60_000, 'one');
    const other = await sut.increment(k, 60_000, 5, 60_000, 'two');
    expect(other.totalHits).toBe(1);
  });
});
