import type { Logger } from '@nestjs/common';
import type { SchedulerRegistry } from '@nestjs/schedule';

export interface CleanupJob {
  /** The interval's name in SchedulerRegistry. */
  name: string;
  everyMs: number;
  /** What `run` deletes, for the log line: "Purged 3 ended sessions". */
  what: string;
  /** Deletes what is due; returns how many rows went. */
  run: () => Promise<number>;
}

/**
 * Adds a background clean-up to @nestjs/schedule as a named interval; ScheduleModule clears it when
 * the app shuts down. @nestjs/schedule fires every tick regardless and leaves errors to the callback,
 * so this adds the two rules a clean-up needs: a tick that finds the previous run still going is
 * skipped (a slow purge never piles up behind itself), and a failed run is logged while the next
 * tick runs as usual.
 */
export function scheduleCleanup(registry: SchedulerRegistry, job: CleanupJob, logger: Logger): void {
  let running = false;
  const tick = async (): Promise<void> => {
    if (running) {
      logger.warn(`Purging ${job.what} is still running; skipped this tick`);
      return;
    }
    running = true;
    try {
      const removed = await job.run();
      if (removed > 0) {
        logger.log(`Purged ${removed} ${job.what}`);
      }
    } catch (error) {
      logger.error(`Purging ${job.what} failed: ${String(error)}`);
    } finally {
      running = false;
    }
  };
  // unref: a clean-up timer alone never keeps the process alive.
  registry.addInterval(job.name, setInterval(() => void tick(), job.everyMs).unref());
}
