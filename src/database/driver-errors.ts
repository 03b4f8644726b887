import { QueryFailedError } from 'typeorm';

/** The MySQL or SQLite error behind a failed query, or undefined for any other error. */
function driverErrorOf(error: unknown): { code?: string; errno?: number } | undefined {
  return error instanceof QueryFailedError
    ? (error.driverError as { code?: string; errno?: number } | undefined)
    : undefined;
}

/** InnoDB chose this transaction as a deadlock victim and rolled it back (ER_LOCK_DEADLOCK, 1213). */
export function isDeadlock(error: unknown): boolean {
  const driverError = driverErrorOf(error);
  return driverError?.code === 'ER_LOCK_DEADLOCK' || driverError?.errno === 1213;
}

/** A unique index refused the row (MySQL ER_DUP_ENTRY 1062, SQLite SQLITE_CONSTRAINT_UNIQUE). */
export function isUniqueViolation(error: unknown): boolean {
  const driverError = driverErrorOf(error);
  return (
    driverError?.code === 'ER_DUP_ENTRY' ||
    driverError?.code === 'SQLITE_CONSTRAINT_UNIQUE' ||
    driverError?.errno === 1062
  );
}

/**
 * A row named a parent that is not there (MySQL ER_NO_REFERENCED_ROW_2 1452, SQLite
 * SQLITE_CONSTRAINT_FOREIGNKEY): e.g. an owned row inserted for an account deleted meanwhile.
 */
export function isForeignKeyViolation(error: unknown): boolean {
  const driverError = driverErrorOf(error);
  return (
    driverError?.code === 'ER_NO_REFERENCED_ROW_2' ||
    driverError?.code === 'SQLITE_CONSTRAINT_FOREIGNKEY' ||
    driverError?.errno === 1452
  );
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
