// What each scavenge (V8's young-generation GC) keeps, under load: bytes that survived it, bytes it
// promoted to the old generation, and its pause, from V8's own --trace-gc-nvp lines, read only for the
// measured window. A request's objects should die young: what survives a scavenge is copied, and what
// is promoted stays until a full collection.
//
//   npm run build
//   node bench/scavenge.mjs                                   # Gatehouse, raw and mysql2-only, GET /todos
//   SCAVENGE_SERVERS=gatehouse SCAVENGE_CONNECTIONS=1 node bench/scavenge.mjs
//
// Every server runs with Node's default heap sizes (no image flags), so the three compare alike.
// Servers: `gatehouse` (dist/src/main.js, production settings), `raw` (raw-same-work.mjs) and
// `mysql2-only` (Fastify answering with one mysql2 pool query, nothing else: where survival starts).
// Environment: SCAVENGE_SERVERS, SCAVENGE_ROUTE (default /api/v1/todos), SCAVENGE_CONNECTIONS (default
// 50), SCAVENGE_MAIN (Gatehouse's script, default dist/src/main.js: another build to compare), SCAVENGE_DURATION (seconds measured, default 8), BENCH_MYSQL and BENCH_DB (default
// gatehouse_scavenge, **dropped and recreated**).
import { spawn } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JwtService } from '@nestjs/jwt';
import autocannon from 'autocannon';
import mysql from 'mysql2/promise';
import { AccessTokensService } from '../dist/src/auth/access-tokens.service.js';
import { loadConfig } from '../dist/src/config/config.js';
import { benchDatabase, productionEnv } from './app-env.mjs';
import { SMALL_USER_ID, connect, seedMeasuredUsers, seedSessions, seedUsers } from './seed.mjs';

const { server: SERVER_URL, name: DB, url: dbUrl } = benchDatabase('gatehouse_scavenge');
const SERVERS = (process.env.SCAVENGE_SERVERS ?? 'gatehouse,raw,mysql2-only').split(',');
const ROUTE = process.env.SCAVENGE_ROUTE ?? '/api/v1/todos';
const CONNECTIONS = Number(process.env.SCAVENGE_CONNECTIONS ?? 50);
const DURATION = Number(process.env.SCAVENGE_DURATION ?? 8);
const PORT = 3940;

const env = productionEnv({ databaseUrl: dbUrl, port: PORT });
const { auth } = loadConfig(env);
const SCRIPTS = {
  gatehouse: [process.env.SCAVENGE_MAIN ?? 'dist/src/main.js'],
  raw: ['bench/raw-same-work.mjs'],
  'mysql2-only': ['bench/scavenge.mjs', '--mysql2-only'],
};
/** Mean and largest: survival comes in bursts, which a median would hide. */
const meanMax = (values) =>
  `${(values.reduce((a, b) => a + b, 0) / values.length).toFixed(1)} / ${Math.max(...values).toFixed(1)}`;

/** The mysql2-only server: Fastify and one pool query per request, the answer discarded. */
async function mysql2Only() {
  const { default: Fastify } = await import('fastify');
  const pool = mysql.createPool({ uri: dbUrl, connectionLimit: 10 });
  const app = Fastify();
  app.get(ROUTE, async () => {
    const [rows] = await pool.query('SELECT * FROM todos WHERE user_id = ? ORDER BY id DESC LIMIT 21', [
      SMALL_USER_ID,
    ]);
    return { count: rows.length };
  });
  await app.listen({ port: PORT, host: '127.0.0.1' });
}

function load(duration, token) {
  return new Promise((resolve, reject) => {
    autocannon(
      {
        url: `http://127.0.0.1:${PORT}${ROUTE}`,
        connections: CONNECTIONS,
        duration,
        headers: { authorization: `Bearer ${token}` },
      },
      (error, result) => (error ? reject(error) : resolve(result)),
    );
  });
}

/** Starts one server with --trace-gc-nvp, loads it, and reads the scavenges of the measured window. */
async function measure(name, token) {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-scavenge-'));
  const traceFile = join(dir, 'trace.log');
  const out = openSync(traceFile, 'w');
  const child = spawn(process.execPath, ['--trace-gc-nvp', ...SCRIPTS[name]], {
    env: { ...env, JWT_ISSUER: auth.jwtIssuer, JWT_AUDIENCE: auth.jwtAudience },
    stdio: ['ignore', out, 'inherit'],
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try {
    for (let i = 0; ; i += 1) {
      try {
        if ((await fetch(`http://127.0.0.1:${PORT}/health/live`)).status < 500) break;
      } catch {
        // not listening yet
      }
      if (i > 300) throw new Error(`${name} did not start`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    await load(3, token); // warm-up: JIT, pools
    const from = readFileSync(traceFile, 'utf8').length;
    const result = await load(DURATION, token);
    const to = readFileSync(traceFile, 'utf8').length;
    if (result.non2xx + result.errors > 0) {
      throw new Error(`${name}: ${result.non2xx} non-2xx, ${result.errors} errors`);
    }
    const scavenges = readFileSync(traceFile, 'utf8')
      .slice(from, to)
      .split('\n')
      .filter((line) => line.includes(' gc=s '))
      .map((line) =>
        Object.fromEntries([...line.matchAll(/ ([a-z_.]+)=([0-9.]+)/g)].map(([, k, v]) => [k, Number(v)])),
      );
    const requests = result.requests.total;
    const sum = (field) => scavenges.reduce((total, s) => total + (s[field] ?? 0), 0);
    return {
      name,
      requests,
      scavenges: scavenges.length,
      pauseMs: meanMax(scavenges.map((s) => s.pause)),
      survivedMb: meanMax(scavenges.map((s) => s.new_space_survived / 1e6)),
      promotedMb: meanMax(scavenges.map((s) => s.promoted / 1e6)),
      promotedKbPerRequest: sum('promoted') / 1024 / requests,
      pauseUsPerRequest: (sum('pause') * 1000) / requests,
    };
  } finally {
    child.kill('SIGTERM');
    await exited;
    closeSync(out);
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Gatehouse creates the schema (DB_MIGRATE_ON_START) that every server reads. */
async function migrate() {
  const child = spawn(process.execPath, SCRIPTS.gatehouse, { env, stdio: ['ignore', 'ignore', 'inherit'] });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  try {
    for (let i = 0; ; i += 1) {
      try {
        if ((await fetch(`http://127.0.0.1:${PORT}/health/ready`)).status === 200) return;
      } catch {
        // not listening yet
      }
      if (i > 300) throw new Error('Gatehouse did not start');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  } finally {
    child.kill('SIGTERM');
    await exited;
  }
}

if (process.argv.includes('--mysql2-only')) {
  await mysql2Only();
} else {
  const admin = await mysql.createConnection({ uri: SERVER_URL });
  await admin.query(`DROP DATABASE IF EXISTS \`${DB}\``);
  await admin.query(`CREATE DATABASE \`${DB}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
  await admin.end();
  await migrate();
  const pool = await connect(dbUrl);
  await seedUsers(pool, 1);
  await seedMeasuredUsers(pool, 1_000, 100);
  const sessions = await seedSessions(pool, [SMALL_USER_ID]);
  await pool.end();
  const token = await new AccessTokensService(new JwtService(), { getOrThrow: () => auth }).sign(
    SMALL_USER_ID,
    sessions.get(SMALL_USER_ID),
  );
  process.stdout.write(
    `GET ${ROUTE}, ${CONNECTIONS} connection(s), ${DURATION} s measured, Node ${process.version}; per scavenge: mean / largest\n\n` +
      '| server | requests | scavenges | pause ms | survived MB | promoted MB | promoted KB/request | pause µs/request |\n' +
      '| --- | --- | --- | --- | --- | --- | --- | --- |\n',
  );
  for (const name of SERVERS) {
    const r = await measure(name, token);
    process.stdout.write(
      `| ${r.name} | ${r.requests} | ${r.scavenges} | ${r.pauseMs} | ${r.survivedMb} | ` +
        `${r.promotedMb} | ${r.promotedKbPerRequest.toFixed(1)} | ${r.pauseUsPerRequest.toFixed(1)} |\n`,
    );
  }
}
