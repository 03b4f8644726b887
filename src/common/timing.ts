import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Resolves no sooner than `floorMs` after it was called, whatever `work` took (up to the floor): the
 * answer to "does this address have an account" must not be readable from the response time either.
 * Work that takes longer than the floor is not slowed further.
 */
export async function noSoonerThan<T>(floorMs: number, work: Promise<T>): Promise<T> {
  const started = performance.now();
  const result = await work;
  const remaining = floorMs - (performance.now() - started);
  if (remaining > 0) {
    await sleep(remaining);
  }
  return result;
}
