import { setTimeout as sleep } from 'node:timers/promises';

/**
 * A gate a test puts inside a real call (a call-through spy) to make one interleaving certain
 * instead of likely: calls that reach it wait until `open()`, and the test knows how many wait. Used
 * to keep credential checks in flight while another request races in; nothing is faked.
 */
export class Gate {
  private readonly opened: Promise<void>;
  private release!: () => void;
  /** Calls waiting at the gate (or let through by it). */
  arrived = 0;

  constructor() {
    this.opened = new Promise((resolve) => {
      this.release = resolve;
    });
  }

  /** Waits until the gate opens. */
  async pass(): Promise<void> {
    this.arrived += 1;
    await this.opened;
  }

  open(): void {
    this.release();
  }

  /** Resolves once `count` calls have reached the gate; fails after `timeoutMs`. */
  async reached(count: number, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.arrived < count) {
      if (Date.now() > deadline) {
        throw new Error(`only ${this.arrived} of ${count} calls reached the gate`);
      }
      await sleep(5);
    }
  }
}

/** `promise`, or undefined if it has not settled within `ms`. */
export function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  return Promise.race([promise, sleep(ms).then(() => undefined)]);
}

/** How many times each value occurs: a race's answers, say. */
export function tally(values: readonly (string | number)[]): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const value of values) {
    counts[value] = (counts[value] ?? 0) + 1;
  }
  return counts;
}
