import { setTimeout as sleep } from 'node:timers/promises';
import { noSoonerThan } from './timing.js';

describe(noSoonerThan.name, () => {
  it('should hold a fast answer until the floor', async () => {
    const started = performance.now();
    await expect(noSoonerThan(60, Promise.resolve('fast'))).resolves.toBe('fast');
    expect(performance.now() - started).toBeGreaterThanOrEqual(58);
  });

  it('should not slow work that already took longer than the floor', async () => {
    const started = performance.now();
    await noSoonerThan(10, sleep(50));
    expect(performance.now() - started).toBeLessThan(45 + 50);
  });

  it('should pass failures through after the work fails', async () => {
    await expect(noSoonerThan(5, Promise.reject(new Error('no')))).rejects.toThrow('no');
  });
});
