import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';
import type { DataSource } from 'typeorm';
import type { DatabaseConfig } from '../config/config.js';
import { databaseKind, openDataSource } from './data-source.js';
import type { Schema } from './schema.js';

export interface SchemaDiff {
  up: string[];
  down: string[];
}

/** What TypeORM would still change to make the database match the entities (empty when they agree). */
export async function schemaDiff(dataSource: DataSource): Promise<SchemaDiff> {
  const sql = await dataSource.driver.createSchemaBuilder().log();
  return { up: sql.upQueries.map((q) => q.query), down: sql.downQueries.map((q) => q.query) };
}

/**
 * Runs `work` against a scratch database of the same kind as `config` (a temporary SQLite file, or a
 * throwaway schema on the same MySQL server), so checks never touch real data.
 */
export async function withScratchDatabase<T>(
  config: DatabaseConfig,
  schema: Schema,
  work: (dataSource: DataSource) => Promise<T>,
): Promise<T> {
  const suffix = randomBytes(5).toString('hex');
  if (databaseKind(config.url) === 'sqlite') {
    const file = join(tmpdir(), `gatehouse-check-${suffix}.sqlite`);
    const dataSource = await openDataSource({ ...config, url: `sqlite:${file}` }, schema);
    try {
      return await work(dataSource);
    } finally {
      await dataSource.destroy();
      for (const extra of ['', '-wal', '-shm']) {
        rmSync(`${file}${extra}`, { force: true });
      }
    }
  }
  const server = new URL(config.url.replace(/^mariadb:/, 'mysql:'));
  server.pathname = '';
  const name = `gatehouse_check_${suffix}`;
  const admin = await mysql.createConnection({ uri: server.toString() });
  await admin.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
  const url = new URL(server.toString());
  url.pathname = `/${name}`;
  const dataSource = await openDataSource({ ...config, url: url.toString() }, schema);
  try {
    return await work(dataSource);
  } finally {
    await dataSource.destroy();
    await admin.query(`DROP DATABASE IF EXISTS \`${name}\``);
    await admin.end();
  }
}

/**
 * Applies every migration to an empty database and diffs it with the entities; then reverts every
 * migration and applies them again, and diffs once more. Returns the problems found (none: agreement).
 */
export async function checkMigrations(config: DatabaseConfig, schema: Schema): Promise<string[]> {
  return withScratchDatabase(config, schema, async (dataSource) => {
    const problems: string[] = [];
    await dataSource.runMigrations({ transaction: 'each' });
    const first = await schemaDiff(dataSource);
    problems.push(...first.up.map((q) => `after migrating up: ${q}`));
    const count = dataSource.migrations.length;
    for (let i = 0; i < count; i += 1) {
      await dataSource.undoLastMigration({ transaction: 'each' });
    }
    const remaining: unknown[] = await dataSource.query(
      databaseKind(config.url) === 'sqlite'
        ? "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT IN ('migrations', 'sqlite_sequence')"
        : "SELECT table_name FROM information_schema.tables WHERE table_schema = DATABASE() AND table_name <> 'migrations'",
    );
    if (remaining.length > 0) {
      problems.push(`after migrating down, tables remain: ${JSON.stringify(remaining)}`);
    }
    await dataSource.runMigrations({ transaction: 'each' });
    const second = await schemaDiff(dataSource);
    problems.push(...second.up.map((q) => `after migrating down and up again: ${q}`));
    return problems;
  });
}
