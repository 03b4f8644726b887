import { setTimeout as sleep } from 'node:timers/promises';
import type { ApiResponse } from './test-app.js';

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

/**
 * Spies on `object[method]` (an async method) so that a call returns its real result only once the
 * returned gate opens: the request that made it has got that far, and waits there while the test
 * commits something else. With `when`, only calls whose arguments match are held (another request's
 * go straight through); with `once`, only the first such call. Restored by jest.restoreAllMocks().
 */
export function holdAfter<T extends object, K extends keyof T & string>(
  object: T,
  method: K,
  { once = false, when = () => true }: { once?: boolean; when?: (...args: unknown[]) => boolean } = {},
): Gate {
  const gate = new Gate();
  const original = (object[method] as (...args: unknown[]) => Promise<unknown>).bind(object);
  let held = false;
  (jest.spyOn(object, method as never) as jest.SpyInstance).mockImplementation(async (...args: unknown[]) => {
    const result = await original(...args);
    if ((!once || !held) && when(...args)) {
      held = true;
      await gate.pass();
    }
    return result;
  });
  return gate;
}

/** The gates a test file's tests made (each test file has its own module registry). */
const trackedGates: Gate[] = [];

/** Registers a gate to be opened by openTrackedGates(); returns it. */
export function tracked(gate: Gate): Gate {
  trackedGates.push(gate);
  return gate;
}

/** Opens every tracked gate (in afterEach), so a failed assertion never leaves a request hanging. */
export function openTrackedGates(): void {
  trackedGates.splice(0).forEach((gate) => gate.open());
}

/** `status CODE` of an answer, e.g. `401 INVALID_PASSWORD`, to compare a race's outcome in one line. */
export function statusOf(res: ApiResponse<{ code?: string } | undefined>): string {
  return `${res.status} ${res.body?.code ?? ''}`.trim();
}
