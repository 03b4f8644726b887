import { describe, expect, it, jest } from '@jest/globals';
import { Logger } from '@nestjs/common';
import { PeriodicJob } from './periodic-job.js';

describe(PeriodicJob.name, () => {
  it('should join a run in progress instead of starting a second one', async () => {
    let release!: (n: number) => void;
    const work = jest.fn(() => new Promise<number>((resolve) => (release = resolve)));
    const sut = new PeriodicJob('rows', work, new Logger('test'));
    const first = sut.run();
    const second = sut.run();
    release(3);
    await expect(first).resolves.toBe(3);
    await expect(second).resolves.toBe(3);
    expect(work).toHaveBeenCalledTimes(1);
    // Once it has finished, the next run is a new one.
    const third = sut.run();
    release(0);
    await expect(third).resolves.toBe(0);
    expect(work).toHaveBeenCalledTimes(2);
  });

  it('should run on its interval and log what it removed and what failed', async () => {
    jest.useFakeTimers();
    const logger = new Logger('test');
    const log = jest.spyOn(logger, 'log').mockImplementation(() => undefined);
    const error = jest.spyOn(logger, 'error').mockImplementation(() => undefined);
    const work = jest
      .fn<() => Promise<number>>()
      .mockResolvedValueOnce(2)
      .mockRejectedValueOnce(new Error('db down'));
    const sut = new PeriodicJob('rows', work, logger);
    sut.start(1000);
    await jest.advanceTimersByTimeAsync(2000);
    sut.stop();
    await jest.advanceTimersByTimeAsync(5000);
    jest.useRealTimers();
    expect(work).toHaveBeenCalledTimes(2);
    expect(log).toHaveBeenCalledWith('Purged 2 rows');
    expect(error).toHaveBeenCalledWith('Purging rows failed: Error: db down');
  });
});
