import type { Logger } from 'pino';
import type { DatabaseConfig } from '../config/config.js';

const FIRST_DELAY_MS = 250;
const MAX_DELAY_MS = 5000;
const ATTEMPT_TIMEOUT_MS = 2000;

/** host:port/database of a MySQL URL: never the credentials, which stay out of the log. */
export function describeDatabase(url: string): string {
  try {
    const u = new URL(url.replace(/^mariadb:/, 'mysql:'));
    return `${u.hostname}:${u.port || '3306'}${u.pathname}`;
  } catch {
    return 'the configured database';
  }
}

/**
 * Boot waits here for MySQL to accept a connection, retrying with doubling delays (250 ms up to 5 s)
 * until `connectDeadlineMs`, so an app started before its database comes up on its own, and one whose
 * database never comes fails with one clear line instead of hanging. Says what it waits for at the
 * first refusal. SQLite is a local file and needs no wait. Throws when the deadline passes.
 */
export async function waitForDatabase(
  config: DatabaseConfig,
  log: Logger,
  /**
   * Called once the first attempt has answered (and, on a refusal, been logged): boot starts loading
   * the app's modules then, since loading them starves the event loop the attempt needs.
   */
  afterFirstAttempt: () => void = () => undefined,
): Promise<void> {
  // Imports nothing heavy (no TypeORM).
  if (config.url.startsWith('sqlite:')) {
    afterFirstAttempt();
    return;
  }
  const mysql = await import('mysql2/promise');
  const target = describeDatabase(config.url);
  const started = Date.now();
  let delay = FIRST_DELAY_MS;
  for (let attempt = 1; ; attempt++) {
    try {
      const connection = await mysql.createConnection({
        uri: config.url.replace(/^mariadb:/, 'mysql:'),
        connectTimeout: ATTEMPT_TIMEOUT_MS,
      });
      await connection.end();
      if (attempt > 1) {
        log.info({ database: target, attempt, waitedMs: Date.now() - started }, 'Database reachable');
      }
      if (attempt === 1) {
        afterFirstAttempt();
      }
      return;
    } catch (error) {
      const cause = (error as { code?: string }).code ?? (error as Error).message;
      const remaining = config.connectDeadlineMs - (Date.now() - started);
      if (remaining <= 0) {
        throw new DatabaseUnreachableError(target, config.connectDeadlineMs, attempt, cause);
      }
      log.warn(
        {
          database: target,
          attempt,
          cause,
          retryInMs: Math.min(delay, remaining),
          deadlineMs: config.connectDeadlineMs,
        },
        `Waiting for the database at ${target}`,
      );
      if (attempt === 1) {
        afterFirstAttempt();
      }
      await new Promise((resolve) => setTimeout(resolve, Math.min(delay, remaining)));
      delay = Math.min(delay * 2, MAX_DELAY_MS);
    }
  }
}

export class DatabaseUnreachableError extends Error {
  constructor(
    readonly database: string,
    readonly deadlineMs: number,
    readonly attempts: number,
    readonly lastCause: string,
  ) {
    super(
      `The database at ${database} did not accept a connection within ${deadlineMs} ms ` +
        `(${attempts} attempts, last: ${lastCause}); set DB_CONNECT_DEADLINE to wait longer`,
    );
  }
}
