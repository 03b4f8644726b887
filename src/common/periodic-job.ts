import type { Logger } from '@nestjs/common';

/**
 * A background clean-up: runs `work` every interval, one run at a time (a slow run never overlaps
 * the next tick, and a manual run joins the one in progress), never keeps the process alive, and
 * logs how many rows it removed or why it failed. Every retention job uses it.
 */
export class PeriodicJob {
  private timer?: NodeJS.Timeout;
  private running?: Promise<number>;

  constructor(
    private readonly what: string,
    private readonly work: () => Promise<number>,
    private readonly logger: Logger,
  ) {}

  start(intervalMs: number): void {
    this.timer = setInterval(() => {
      this.run().then(
        (removed) => removed > 0 && this.logger.log(`Purged ${removed} ${this.what}`),
        (error: unknown) => this.logger.error(`Purging ${this.what} failed: ${String(error)}`),
      );
    }, intervalMs).unref();
  }

  run(): Promise<number> {
    this.running ??= this.work().finally(() => {
      this.running = undefined;
    });
    return this.running;
  }

  stop(): void {
    clearInterval(this.timer);
  }
}
