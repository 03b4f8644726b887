import { AsyncLocalStorage } from 'node:async_hooks';
import { chmodSync, closeSync, mkdirSync, openSync } from 'node:fs';
import { dirname } from 'node:path';
import type { RowDataPacket } from 'mysql2';
import { DataSource, type DataSourceOptions } from 'typeorm';
import type { DatabaseConfig } from '../config/config.js';
import { GatehouseNamingStrategy } from './naming-strategy.js';
import type { Schema } from './schema.js';

/** How long a new MySQL connection may take before the attempt fails. */
const CONNECT_TIMEOUT_MS = 2000;

/**
 * The prepared statements a pooled MySQL connection keeps (mysql2's `execute`). Gatehouse sends text
 * queries only (TypeORM's and EntityRepository.rows), but mysql2 allocates each connection's statement
 * cache up front, four arrays of this many slots: at its default of 16,000, 0.5 MB per connection, 5 MB
 * of live heap for a pool of ten (P4, bench/results/2026-12-06-node24-memory.md). 64 still serves a
 * team's own `execute` of a few statements.
 */
export const MAX_PREPARED_STATEMENTS = 64;

export type DatabaseKind = 'mysql' | 'sqlite';

export function databaseKind(url: string): DatabaseKind {
  return url.startsWith('sqlite:') ? 'sqlite' : 'mysql';
}

/** The one set of TypeORM options, shared by the app, the CLI and the tests. */
export function dataSourceOptions(config: DatabaseConfig, schema: Schema): DataSourceOptions {
  const common = {
    migrationsTableName: 'migrations',
    synchronize: false,
    migrationsRun: false,
    logging: false,
    namingStrategy: new GatehouseNamingStrategy(),
    entities: [...schema.entities],
    migrations: [...schema.migrations],
  };

  if (databaseKind(config.url) === 'sqlite') {
    const database = config.url.slice('sqlite:'.length);
    if (database !== ':memory:') {
      // Files under var/ are 0600 and their directories 0700 (DESIGN §5): the database holds password
      // hashes. SQLite gives its -wal and -shm files the database file's mode.
      mkdirSync(dirname(database), { recursive: true, mode: 0o700 });
      closeSync(openSync(database, 'a', 0o600));
      chmodSync(database, 0o600);
    }
    return {
      ...common,
      type: 'better-sqlite3',
      database,
      // WAL lets readers proceed during a write; busy_timeout makes concurrent writers wait instead of failing.
      prepareDatabase: (db: { pragma(s: string): unknown }) => {
        db.pragma('journal_mode = WAL');
        db.pragma('busy_timeout = 5000');
        db.pragma('foreign_keys = ON');
      },
    };
  }

  return {
    ...common,
    type: 'mysql',
    url: config.url.replace(/^mariadb:/, 'mysql:'),
    charset: 'utf8mb4_unicode_ci',
    timezone: 'Z',
    poolSize: config.poolSize,
    // DATETIME(3) values come back as Date objects in UTC; BIGINT ids as strings (never lossy numbers).
    supportBigNumbers: true,
    bigNumberStrings: true,
    // Give up on an unreachable server within 2 s so a request answers 503 instead of hanging
    // (DESIGN §8); a dropped connection leaves the pool and the next query dials afresh.
    extra: {
      connectTimeout: CONNECT_TIMEOUT_MS,
      enableKeepAlive: true,
      maxPreparedStatements: MAX_PREPARED_STATEMENTS,
    },
  };
}

/**
 * TypeORM reads MariaDB's catalogue differently from MySQL's (column defaults, for one), so a
 * `mysql://` URL is asked which server it is before the options are built.
 */
export async function resolveDataSourceOptions(
  config: DatabaseConfig,
  schema: Schema,
): Promise<DataSourceOptions> {
  const options = dataSourceOptions(config, schema);
  if (options.type !== 'mysql') {
    return options;
  }
  const mysql = await import('mysql2/promise');
  const connection = await mysql.createConnection({ uri: options.url, connectTimeout: CONNECT_TIMEOUT_MS });
  try {
    const [rows] = await connection.query<RowDataPacket[]>('SELECT VERSION() AS version');
    const version = String(rows[0]?.version ?? '');
    return version.toLowerCase().includes('mariadb') ? { ...options, type: 'mariadb' } : options;
  } finally {
    await connection.end();
  }
}

export async function createDataSource(config: DatabaseConfig, schema: Schema): Promise<DataSource> {
  const dataSource = new DataSource(await resolveDataSourceOptions(config, schema));
  // created_at / updated_at are DATETIME(3) like every other timestamp (TypeORM's own default is
  // DATETIME(6) on MySQL and whole seconds on SQLite). Set before initialize() builds the metadata.
  Object.assign(dataSource.driver.mappedDataTypes, timestampDefaults(isMysqlFamily(dataSource)));
  return dataSource;
}

/** Creates and connects the DataSource; the one way the app, the CLI and the tests open the database. */
export async function openDataSource(config: DatabaseConfig, schema: Schema): Promise<DataSource> {
  const dataSource = await createDataSource(config, schema);
  await dataSource.initialize();
  if (!isMysqlFamily(dataSource)) {
    // SQLite has no UNSIGNED, and its auto-increment key is always a 64-bit INTEGER: without this the
    // schema diff would see every unsigned or BIGINT key column as changed.
    for (const column of dataSource.entityMetadatas.flatMap((m) => m.columns)) {
      column.unsigned = false;
      if (column.isGenerated && column.type === 'bigint') {
        column.type = 'integer';
      }
    }
    serializeTransactions(dataSource);
  }
  return dataSource;
}

/**
 * better-sqlite3 gives TypeORM one connection. Two overlapping transactions would fail ("cannot start
 * a transaction within a transaction"), and worse, a statement another request runs while a
 * transaction is open would join it and vanish if it rolls back. So on SQLite transactions queue in
 * arrival order, and a statement from outside the open transaction (told apart with
 * AsyncLocalStorage) waits until it ends. MySQL has a pool and row locks and needs none of this.
 */
function serializeTransactions(dataSource: DataSource): void {
  const inTransaction = new AsyncLocalStorage<true>();
  const manager = dataSource.manager;
  const transaction = manager.transaction.bind(manager) as (...args: unknown[]) => Promise<unknown>;
  let tail: Promise<unknown> = Promise.resolve();
  let open: Promise<unknown> | null = null;
  const serialized = (...args: unknown[]): Promise<unknown> => {
    if (inTransaction.getStore()) {
      return transaction(...args); // nested: TypeORM turns it into a savepoint on the same connection
    }
    const run = tail.then(() => {
      const current = inTransaction.run(true, () => transaction(...args));
      open = current;
      return current.finally(() => {
        open = null;
      });
    });
    tail = run.catch(() => undefined);
    return run;
  };
  Object.assign(manager, { transaction: serialized });

  const runner = dataSource.driver.createQueryRunner('master');
  const query = runner.query.bind(runner) as (...args: unknown[]) => Promise<unknown>;
  const guarded = async (...args: unknown[]): Promise<unknown> => {
    while (open && !inTransaction.getStore()) {
      await open.catch(() => undefined);
    }
    return query(...args);
  };
  Object.assign(runner, { query: guarded });
}

/** The database's clock to the millisecond, as SQL. */
export function currentTimestamp(mysql: boolean): string {
  return mysql ? 'CURRENT_TIMESTAMP(3)' : "STRFTIME('%Y-%m-%d %H:%M:%f', 'NOW')";
}

/** The default of created_at / updated_at, shared with the migrations so both agree. */
export function timestampDefaults(mysql: boolean) {
  const now = currentTimestamp(mysql);
  return { createDateDefault: now, createDatePrecision: 3, updateDateDefault: now, updateDatePrecision: 3 };
}

export function isMysqlFamily(dataSource: DataSource): boolean {
  return dataSource.options.type === 'mysql' || dataSource.options.type === 'mariadb';
}
