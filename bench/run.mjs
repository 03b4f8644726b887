// The todo list benchmark: seeds MySQL/MariaDB, starts the built app (`node dist/src/main.js`) in
// production mode, and measures GET /api/v1/todos with autocannon on a small table and on the full
// one (1,000,000 todos across 10,000 users plus one user with 100,000), next to a raw node:http
// baseline and /health/live measured in the same run. Loopback only; fixed durations.
//
//   npm run bench                          # builds, then runs this file
//   BENCH_DURATION=10 BENCH_KEEP=1 node bench/run.mjs
//
// Environment: BENCH_MYSQL (server URL, default mysql://root@127.0.0.1:3306), BENCH_DB (default
// gatehouse_bench, dropped and recreated), BENCH_DURATION (seconds per scenario, default 10),
// BENCH_PORT (default 3900), BENCH_KEEP=1 keeps the database afterwards.
import 'reflect-metadata';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import { JwtService } from '@nestjs/jwt';
import autocannon from 'autocannon';
import mysql from 'mysql2/promise';
import { AccessTokensService } from '../dist/src/auth/access-tokens.service.js';
import { encodeCursor } from '../dist/src/common/pagination.js';
import { loadConfig } from '../dist/src/config/config.js';
import { createDataSource } from '../dist/src/database/data-source.js';
import { appSchema } from '../dist/src/features.js';
import { TodosRepository } from '../dist/src/todos/todos.repository.js';
import { startBaseline } from './baseline.mjs';
import {
  BIG_USER_ID,
  SMALL_USER_ID,
  connect,
  seedEveryoneElse,
  seedMeasuredUsers,
  seedSessions,
  seedUsers,
} from './seed.mjs';

const SERVER_URL = process.env.BENCH_MYSQL ?? 'mysql://root@127.0.0.1:3306';
const DB = process.env.BENCH_DB ?? 'gatehouse_bench';
const DURATION = Number(process.env.BENCH_DURATION ?? 10);
const PORT = Number(process.env.BENCH_PORT ?? 3900);
const REGULAR_USERS = 10_000;
const PER_USER = 100;
const BIG_USER_TODOS = 100_000;
const LATENCY_CONNECTIONS = 10;
const THROUGHPUT_CONNECTIONS = 50;

if (!/^[A-Za-z0-9_]+$/.test(DB)) {
  throw new Error('BENCH_DB must be letters, digits and underscores');
}
const dbUrl = `${SERVER_URL.replace(/\/+$/, '')}/${DB}`;
const appUrl = `http://127.0.0.1:${PORT}`;
const env = {
  ...process.env,
  NODE_ENV: 'production',
  PORT: String(PORT),
  HOST: '127.0.0.1',
  APP_PUBLIC_URL: appUrl,
  DATABASE_URL: dbUrl,
  DB_MIGRATE_ON_START: 'true',
  // A fresh secret per run, given to the server and to the token signer below.
  JWT_SECRET: randomBytes(48).toString('base64url'),
  // Required in production; nothing in these scenarios sends mail.
  MAIL_URL: 'smtp://127.0.0.1:2525',
  MAIL_PAYLOAD_KEY: randomBytes(32).toString('base64'),
  LOG_LEVEL: process.env.LOG_LEVEL ?? 'info',
};

const log = (line) => process.stderr.write(`${line}\n`);

async function recreateDatabase() {
  const admin = await mysql.createConnection({ uri: SERVER_URL });
  await admin.query(`DROP DATABASE IF EXISTS \`${DB}\``);
  await admin.query(`CREATE DATABASE \`${DB}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
  const [[{ version }]] = await admin.query('SELECT VERSION() AS version');
  await admin.end();
  return version;
}

async function dropDatabase() {
  const admin = await mysql.createConnection({ uri: SERVER_URL });
  await admin.query(`DROP DATABASE IF EXISTS \`${DB}\``);
  await admin.end();
}

async function startApp() {
  // Request logs go to /dev/null at the production level: their cost is part of what is measured.
  const child = spawn(process.execPath, ['dist/src/main.js'], {
    env,
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  for (let i = 0; i < 100; i += 1) {
    try {
      if ((await fetch(`${appUrl}/health/ready`)).ok) {
        return { stop: async () => (child.kill('SIGTERM'), await exited) };
      }
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  child.kill('SIGKILL');
  throw new Error('the app did not become ready');
}

async function signer() {
  const { auth } = loadConfig(env);
  return new AccessTokensService(new JwtService(), { getOrThrow: () => auth });
}

function run(name, options) {
  return new Promise((resolve, reject) => {
    autocannon({ duration: DURATION, ...options }, (error, result) =>
      error ? reject(error) : resolve(result),
    );
  }).then((result) => {
    const row = {
      scenario: name,
      connections: options.connections,
      rps: Math.round(result.requests.average),
      p50: result.latency.p50,
      p99: result.latency.p99,
      non2xx: result.non2xx,
      errors: result.errors + result.timeouts,
    };
    log(`  ${name}: ${row.rps} req/s, p50 ${row.p50} ms, p99 ${row.p99} ms (non-2xx ${row.non2xx})`);
    if (row.non2xx > 0 || row.errors > 0) {
      throw new Error(`${name}: ${row.non2xx} non-2xx responses, ${row.errors} errors`);
    }
    return row;
  });
}

/** The scenarios measured on each table size; every one asks for a 20-item page. */
async function measure(phase, tokens, bigIds, baselineUrl) {
  log(`\n== ${phase}`);
  const auth = (userId) => ({ authorization: `Bearer ${tokens.get(userId)}` });
  const list = `${appUrl}/api/v1/todos`;
  // Warm-up, not recorded: JIT, connection pool, buffer pool.
  await run('warm-up', { url: list, headers: auth(BIG_USER_ID), connections: 10, duration: 3 });
  const randomDepth = {
    setupRequest: (request) => ({
      ...request,
      path: `/api/v1/todos?cursor=${encodeCursor(bigIds.min + Math.floor(Math.random() * (bigIds.max - bigIds.min)))}`,
    }),
  };
  const rows = [
    await run('raw node:http baseline', { url: baselineUrl, connections: THROUGHPUT_CONNECTIONS }),
    await run('GET /health/live', { url: `${appUrl}/health/live`, connections: THROUGHPUT_CONNECTIONS }),
    await run('auth + one todo by id (GET /todos/:id), for comparison', {
      url: `${list}/${bigIds.max}`,
      headers: auth(BIG_USER_ID),
      connections: LATENCY_CONNECTIONS,
    }),
    await run('small user (100 todos), first page', {
      url: list,
      headers: auth(SMALL_USER_ID),
      connections: LATENCY_CONNECTIONS,
    }),
    await run('big user (100,000 todos), first page', {
      url: list,
      headers: auth(BIG_USER_ID),
      connections: LATENCY_CONNECTIONS,
    }),
    await run('big user, page at a random depth (cursor)', {
      url: list,
      headers: auth(BIG_USER_ID),
      connections: LATENCY_CONNECTIONS,
      requests: [randomDepth],
    }),
    await run('big user, completed=false, first page', {
      url: `${list}?completed=false`,
      headers: auth(BIG_USER_ID),
      connections: LATENCY_CONNECTIONS,
    }),
    await run('small user, first page, 50 connections', {
      url: list,
      headers: auth(SMALL_USER_ID),
      connections: THROUGHPUT_CONNECTIONS,
    }),
  ];
  return rows.map((row) => ({ phase, ...row }));
}

/** The exact SQL the app sends for a page (captured from TypeORM), then MySQL's plan for it. */
async function explainListQuery(bigIds) {
  const config = loadConfig(env).database;
  const dataSource = await createDataSource(config, appSchema());
  const captured = [];
  dataSource.setOptions({
    logging: ['query'],
    logger: {
      logQuery: (query, parameters) => captured.push(mysql.format(query, parameters ?? [])),
      logQueryError: () => undefined,
      logQuerySlow: () => undefined,
      logSchemaBuild: () => undefined,
      logMigration: () => undefined,
      log: () => undefined,
    },
  });
  await dataSource.initialize();
  const repository = new TodosRepository(dataSource);
  const cursor = encodeCursor(Math.floor((bigIds.min + bigIds.max) / 2));
  const out = [];
  for (const [label, filter, page] of [
    ['first page', {}, { limit: 20 }],
    ['page after a cursor', {}, { limit: 20, cursor }],
    ['completed=false after a cursor', { completed: false }, { limit: 20, cursor }],
  ]) {
    captured.length = 0;
    await repository.listOwned(BIG_USER_ID, filter, page);
    const sql = captured.find((q) => /FROM `todos`/.test(q));
    const [plan] = await dataSource.query(`EXPLAIN ${sql}`);
    const [analyzed] = await dataSource.query(`ANALYZE ${sql}`).catch(() => [[]]);
    out.push({ label, sql, plan, analyzed });
  }
  await dataSource.destroy();
  return out;
}

function markdown(rows, baselineByPhase) {
  const lines = [
    '| table | scenario | conns | req/s | p50 ms | p99 ms | req/s vs raw baseline |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: |',
  ];
  for (const row of rows) {
    const ratio = (row.rps / baselineByPhase.get(row.phase)).toFixed(2);
    lines.push(
      `| ${row.phase} | ${row.scenario} | ${row.connections} | ${row.rps} | ${row.p50} | ${row.p99} | ${ratio} |`,
    );
  }
  return lines.join('\n');
}

async function main() {
  const started = performance.now();
  const startLoad = loadavg()
    .map((n) => n.toFixed(1))
    .join(' ');
  const version = await recreateDatabase();
  log(`database ${DB} on ${version}`);
  const app = await startApp();
  const baseline = await startBaseline();
  const pool = await connect(dbUrl);
  try {
    log('seeding the small table');
    const seedTimes = {};
    seedTimes.users = await seedUsers(pool, REGULAR_USERS);
    const sessions = await seedSessions(pool, [BIG_USER_ID, SMALL_USER_ID]);
    seedTimes.measured = await seedMeasuredUsers(pool, BIG_USER_TODOS, PER_USER);
    await pool.query('ANALYZE TABLE todos');
    const [[bigIds]] = await pool.query(
      'SELECT MIN(id) AS min, MAX(id) AS max FROM todos WHERE user_id = ?',
      [BIG_USER_ID],
    );

    const tokens = new Map();
    const sign = await signer();
    for (const [userId, sessionId] of sessions) {
      tokens.set(userId, await sign.sign(userId, sessionId));
    }
    const check = await fetch(`${appUrl}/api/v1/todos`, {
      headers: { authorization: `Bearer ${tokens.get(BIG_USER_ID)}` },
    }).then((r) => r.json());
    if (check.items?.length !== 20 || !check.nextCursor) {
      throw new Error(`unexpected list answer: ${JSON.stringify(check).slice(0, 300)}`);
    }

    const [[small]] = await pool.query('SELECT COUNT(*) AS n FROM todos');
    const smallPhase = `small (${Number(small.n).toLocaleString('en')} rows)`;
    const rows = await measure(smallPhase, tokens, bigIds, baseline.url);

    log('\nseeding the rest of the full table');
    seedTimes.everyoneElse = await seedEveryoneElse(pool, REGULAR_USERS, PER_USER);
    await pool.query('ANALYZE TABLE todos');
    const [[full]] = await pool.query('SELECT COUNT(*) AS n FROM todos');
    const fullPhase = `full (${Number(full.n).toLocaleString('en')} rows)`;
    rows.push(...(await measure(fullPhase, tokens, bigIds, baseline.url)));

    const explain = await explainListQuery(bigIds);

    const baselineByPhase = new Map(
      rows.filter((r) => r.scenario.startsWith('raw')).map((r) => [r.phase, r.rps]),
    );
    const ratios = rows
      .filter((r) => r.phase === fullPhase && r.scenario.includes('user'))
      .map((r) => {
        const smallRow = rows.find((s) => s.phase === smallPhase && s.scenario === r.scenario);
        return `| ${r.scenario} | ${(r.p50 / smallRow.p50).toFixed(2)} | ${(r.p99 / smallRow.p99).toFixed(2)} |`;
      });

    console.log(`# Todo list benchmark, ${new Date().toISOString()}\n`);
    console.log(
      `Server: ${version}; node ${process.version}; ${cpus().length} CPUs; ${DURATION} s per scenario; ` +
        `load average at start ${startLoad}, at end ${loadavg()
          .map((n) => n.toFixed(1))
          .join(' ')}.`,
    );
    console.log(
      `Seeding: users ${seedTimes.users.toFixed(1)} s, measured users' todos ${seedTimes.measured.toFixed(1)} s, ` +
        `everyone else's ${seedTimes.everyoneElse.toFixed(1)} s.\n`,
    );
    console.log(markdown(rows, baselineByPhase));
    console.log('\nFull table vs small table (latency ratio; target ≤ 1.3):\n');
    console.log('| scenario | p50 full/small | p99 full/small |\n| --- | ---: | ---: |');
    console.log(ratios.join('\n'));
    for (const { label, sql, plan, analyzed } of explain) {
      console.log(`\n## ${label}\n\n\`\`\`sql\n${sql}\n\`\`\`\n`);
      console.log('```\n' + JSON.stringify(plan) + '\n```');
      if (analyzed && Object.keys(analyzed).length > 0) {
        console.log('ANALYZE: `' + JSON.stringify(analyzed) + '`');
      }
    }
    log(`\ndone in ${Math.round((performance.now() - started) / 1000)} s`);
  } finally {
    await pool.end();
    await baseline.close();
    await app.stop();
    if (process.env.BENCH_KEEP !== '1') {
      await dropDatabase();
      log(`dropped ${DB}`);
    }
  }
}

await main();
