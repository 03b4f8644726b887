import { Logger } from '@nestjs/common';
import { SchedulerRegistry } from '@nestjs/schedule';
import { scheduleCleanup } from './schedule.js';

const TICK_MS = 10;

/** Waits for `condition`, so a loaded machine's late timers slow the test down instead of failing it. */
async function until(condition: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) {
      throw new Error('condition not met in time');
    }
    await new Promise((resolve) => setTimeout(resolve, TICK_MS));
  }
}

describe(scheduleCleanup.name, () => {
  let registry: SchedulerRegistry;
  let logger: Logger;
  let log: jest.SpiedFunction<Logger['log']>;
  let warn: jest.SpiedFunction<Logger['warn']>;
  let error: jest.SpiedFunction<Logger['error']>;

  beforeEach(() => {
    registry = new SchedulerRegistry();
    logger = new Logger('test');
    log = jest.spyOn(logger, 'log').mockImplementation(() => undefined);
    error = jest.spyOn(logger, 'error').mockImplementation(() => undefined);
    warn = jest.spyOn(logger, 'warn').mockImplementation(() => undefined);
  });

  afterEach(() => {
    for (const name of registry.getIntervals()) {
      registry.deleteInterval(name);
    }
  });

  it('should run the job on its named interval and log what it removed', async () => {
    const run = jest.fn().mockResolvedValue(3);
    scheduleCleanup(registry, { name: 'cleanup', everyMs: TICK_MS, what: 'old rows', run }, logger);

    expect(registry.getIntervals()).toEqual(['cleanup']);
    await until(() => run.mock.calls.length >= 2);
    expect(log).toHaveBeenCalledWith('Purged 3 old rows');
  });

  it('should skip ticks while the previous run is still going', async () => {
    let finish!: (removed: number) => void;
    const run = jest.fn(() => new Promise<number>((resolve) => (finish = resolve)));
    scheduleCleanup(registry, { name: 'slow', everyMs: TICK_MS, what: 'old rows', run }, logger);

    await until(() => warn.mock.calls.length >= 2);
    expect(run).toHaveBeenCalledTimes(1);
    expect(warn).toHaveBeenCalledWith('Purging old rows is still running; skipped this tick');

    finish(0);
    await until(() => run.mock.calls.length >= 2);
  });

  it('should log a failed run and run again on the next tick', async () => {
    const run = jest.fn().mockRejectedValueOnce(new Error('database went away')).mockResolvedValue(0);
    scheduleCleanup(registry, { name: 'flaky', everyMs: TICK_MS, what: 'old rows', run }, logger);

    await until(() => run.mock.calls.length >= 2);
    expect(error).toHaveBeenCalledWith('Purging old rows failed: Error: database went away');
    expect(run.mock.calls.length).toBeGreaterThanOrEqual(2);
  });
});
