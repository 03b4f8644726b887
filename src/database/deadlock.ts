import { QueryFailedError } from 'typeorm';

/** InnoDB chose this transaction as a deadlock victim and rolled it back (ER_LOCK_DEADLOCK, 1213). */
export function isDeadlock(error: unknown): boolean {
  if (!(error instanceof QueryFailedError)) {
    return false;
  }
  const driverError = error.driverError as { code?: string; errno?: number } | undefined;
  return driverError?.code === 'ER_LOCK_DEADLOCK' || driverError?.errno === 1213;
}

/**
 * Runs `work` (a whole transaction, or one statement outside any) again when InnoDB picks it as a
 * deadlock victim: MySQL rolled it back entirely, and its advice is to restart it. Never use it
 * inside an outer transaction, whose earlier statements the rollback also undid.
 */
export async function retryOnDeadlock<T>(work: () => Promise<T>, attempts = 3): Promise<T> {
  for (let attempt = 1; ; attempt += 1) {
    try {
      return await work();
    } catch (error) {
      if (attempt >= attempts || !isDeadlock(error)) {
        throw error;
      }
    }
  }
}
