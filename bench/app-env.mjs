// What every bench starts Gatehouse with: its own MySQL database on the bench server, and production
// settings (request logging at info, to /dev/null but still produced; helmet; validation). The one
// change is AUTH_THROTTLE_IP_LIMIT, because every bench client shares the loopback address that in
// production would be many clients.
import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import mysql from 'mysql2/promise';

/** The MySQL server (BENCH_MYSQL) and the bench's database on it (BENCH_DB, else `fallback`). */
export function benchDatabase(fallback) {
  const server = process.env.BENCH_MYSQL ?? 'mysql://root@127.0.0.1:3306';
  const name = process.env.BENCH_DB ?? fallback;
  if (!/^[A-Za-z0-9_]+$/.test(name)) {
    throw new Error('BENCH_DB must be letters, digits and underscores');
  }
  return { server, name, url: `${server.replace(/\/+$/, '')}/${name}` };
}

/** Runs `work` on an admin connection to the MySQL server at `serverUrl` (to create and drop a bench's database). */
export async function withAdmin(serverUrl, work) {
  const admin = await mysql.createConnection({ uri: serverUrl });
  try {
    return await work(admin);
  } finally {
    await admin.end();
  }
}

/** Gatehouse's environment for a bench: production mode on `databaseUrl`, listening on `port`. */
export function productionEnv({ databaseUrl, port }) {
  return {
    ...imageLibcEnv(),
    ...process.env,
    NODE_ENV: 'production',
    PORT: String(port),
    HOST: '127.0.0.1',
    APP_PUBLIC_URL: `http://127.0.0.1:${port}`,
    DATABASE_URL: databaseUrl,
    DB_MIGRATE_ON_START: 'true',
    JWT_SECRET: randomBytes(48).toString('base64url'),
    MAIL_URL: 'smtp://127.0.0.1:2525',
    MAIL_PAYLOAD_KEY: randomBytes(32).toString('base64'),
    LOG_LEVEL: process.env.LOG_LEVEL ?? 'info',
    AUTH_THROTTLE_IP_LIMIT: '1000000',
  };
}

/**
 * What docker/Dockerfile's ENV tells the image's C library: MALLOC_ARENA_MAX, the number of malloc
 * arenas. This process's own environment, set first, wins.
 */
export function imageLibcEnv() {
  const arenas = /^\s*MALLOC_ARENA_MAX=(\d+)/m.exec(readFileSync('docker/Dockerfile', 'utf8'))?.[1];
  return arenas === undefined ? {} : { MALLOC_ARENA_MAX: arenas };
}

/**
 * Node flags as a list: `value` when given ('' for none), else production's, the NODE_OPTIONS that
 * docker/Dockerfile sets in the image (its heap limits).
 */
export function nodeFlags(value) {
  const image = /^\s*NODE_OPTIONS="([^"]*)"/m.exec(readFileSync('docker/Dockerfile', 'utf8'))?.[1] ?? '';
  return (value ?? image).split(/\s+/).filter(Boolean);
}
