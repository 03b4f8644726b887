import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import mysql from 'mysql2/promise';

export const DEFAULT_MYSQL_URL = 'mysql://root@127.0.0.1:3306';

export function usingMysql(): boolean {
  return process.env.TEST_DB === 'mysql';
}

/** A database of its own for one test file: a temporary SQLite file, or a throwaway MySQL schema. */
export interface ThrowawayDatabase {
  url: string;
  drop(): Promise<void>;
}

export async function createThrowawayDatabase(): Promise<ThrowawayDatabase> {
  const suffix = randomBytes(6).toString('hex');
  if (!usingMysql()) {
    const file = join(tmpdir(), `gatehouse-test-${suffix}.sqlite`);
    return {
      url: `sqlite:${file}`,
      drop: () => {
        for (const extra of ['', '-wal', '-shm', '-journal']) {
          rmSync(`${file}${extra}`, { force: true });
        }
        return Promise.resolve();
      },
    };
  }
  const server = new URL(process.env.TEST_DATABASE_URL ?? DEFAULT_MYSQL_URL);
  server.pathname = '';
  const name = `gatehouse_test_${suffix}`;
  const admin = await mysql.createConnection({ uri: server.toString() });
  await admin.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
  await admin.end();
  const url = new URL(server.toString());
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const connection = await mysql.createConnection({ uri: server.toString() });
      await connection.query(`DROP DATABASE IF EXISTS \`${name}\``);
      await connection.end();
    },
  };
}
