// The yardstick (DESIGN §7): one command that measures P1–P5 and writes a dated report.
//  P1 authenticated GET /todos and GET /users/me against a same-work raw server
//     (bench/raw-same-work.mjs) on the same MariaDB database with the same token, in alternating
//     rounds (Gatehouse, raw, Gatehouse, raw …) so both see the same machine. Before measuring, both
//     answers are compared byte for byte: the raw server must do the same work.
//  P2 correct-password logins at cost 12 against raw bcrypt.compare at the same parallelism, and GET
//     /todos p99 during the flood against idle (bench/login-flood.mjs).
//  P3 a page at a random depth of a 100,000-todo user against a 100-todo user's first page.
//  P4 the app's RSS before and after 100,000 mixed requests.
//  P5 ready time of a built app on SQLite and of `npm start` on a fresh clone (bench/startup.mjs).
// The app runs with production defaults (request logging at info, helmet, validation, the
// per-request session check); the only change is AUTH_THROTTLE_IP_LIMIT, since every bench client
// shares one loopback address that in production would be many clients.
//
//   npm run build && node bench/yardstick.mjs                 # writes bench/results/<date>-yardstick.md
//   BENCH_SMOKE=1 node bench/yardstick.mjs                    # 1 s per scenario, small data, no report
//   BENCH_ONLY=p1 node bench/yardstick.mjs                    # P1 only, no report (for trying a change)
//   BENCH_ONLY=p3 node bench/yardstick.mjs                    # P3 only, no report
//   BENCH_ONLY=p4 node bench/yardstick.mjs                    # P4 only, on a fresh process, no report
//
// Environment: BENCH_MYSQL (default mysql://root@127.0.0.1:3306), BENCH_DB (default
// gatehouse_yardstick; dropped and recreated), BENCH_DURATION (seconds per round, default 10),
// BENCH_ROUNDS (rounds per side, default 3), BENCH_CONNECTIONS (default 50), BENCH_PROFILE=<dir>
// (Gatehouse runs with --cpu-prof into that directory, the raw server into <dir>/raw;
// `node bench/profile-top.mjs <dir>` reads a profile).
import 'reflect-metadata';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { JwtService } from '@nestjs/jwt';
import autocannon from 'autocannon';
import { AccessTokensService } from '../dist/src/auth/access-tokens.service.js';
import { loadConfig } from '../dist/src/config/config.js';
import { encodeCursor } from '../dist/src/common/pagination.js';
import { benchDatabase, nodeFlags, productionEnv, withAdmin } from './app-env.mjs';
import { measureLoginFlood, seedFloodAccounts } from './login-flood.mjs';
import { cpuSeconds, rssMb } from './proc.mjs';
import { BIG_USER_ID, SMALL_USER_ID, connect, seedMeasuredUsers, seedSessions, seedUsers } from './seed.mjs';
import { measureStartup } from './startup.mjs';

const SMOKE = process.env.BENCH_SMOKE === '1';
const { server: SERVER_URL, name: DB, url: dbUrl } = benchDatabase('gatehouse_yardstick');
const DURATION = SMOKE ? 1 : Number(process.env.BENCH_DURATION ?? 10);
const ROUNDS = SMOKE ? 1 : Number(process.env.BENCH_ROUNDS ?? 3);
const CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 50);
const APP_PORT = 3910;
const RAW_PORT = 3911;
const ROUTES = ['/api/v1/todos', '/api/v1/users/me'];
const BIG_USER_TODOS = SMOKE ? 2_000 : 100_000;
const MIXED_REQUESTS = Number(process.env.BENCH_MIXED ?? (SMOKE ? 2_000 : 100_000));
/**
 * Node flags for the Gatehouse process only: production's, i.e. the Docker image's NODE_OPTIONS (its
 * heap limit), unless BENCH_APP_FLAGS names others ('' for none, `--optimize-for-size` …).
 */
const APP_NODE_FLAGS = nodeFlags(process.env.BENCH_APP_FLAGS);

const env = {
  ...productionEnv({ databaseUrl: dbUrl, port: APP_PORT }),
  // P4 reads the heap figures from /metrics (process-level gauges, read once, after the load).
  METRICS_TOKEN: randomBytes(24).toString('base64url'),
};
const { auth } = loadConfig(env);
const log = (line) => process.stderr.write(`${line}\n`);

/** Starts a server process and waits until `readyUrl` answers. */
async function startProcess(name, args, extraEnv, readyUrl) {
  const spawned = performance.now();
  const child = spawn(process.execPath, args, {
    env: { ...env, ...extraEnv },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  for (let i = 0; i < 150; i += 1) {
    try {
      if ((await fetch(readyUrl)).status < 500) {
        return {
          pid: child.pid,
          readyMs: performance.now() - spawned,
          stop: async () => (child.kill('SIGTERM'), await exited),
        };
      }
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  child.kill('SIGKILL');
  throw new Error(`${name} did not become ready`);
}

function measure(url, token, options = {}) {
  return new Promise((resolve, reject) => {
    autocannon(
      {
        url,
        connections: CONNECTIONS,
        // A number of requests (`amount`) replaces the duration.
        ...(options.amount === undefined ? { duration: DURATION } : {}),
        headers: { authorization: `Bearer ${token}` },
        ...options,
      },
      (error, result) => (error ? reject(error) : resolve(result)),
    );
  }).then((result) => {
    const errors = result.non2xx + result.errors + result.timeouts;
    if (errors > 0) {
      throw new Error(`${url}: ${result.non2xx} non-2xx, ${result.errors + result.timeouts} errors`);
    }
    return {
      rps: result.requests.average,
      p99: result.latency.p99,
      p50: result.latency.p50,
      total: result.requests.total,
    };
  });
}

const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const ratio = (a, b) => `${(a / b).toFixed(2)}×`;

/** P1: the two routes, Gatehouse against the raw server in alternating rounds; medians. */
async function sameWork(token, pids) {
  const ports = { app: APP_PORT, raw: RAW_PORT };
  // Requests each side served, warm-ups included: bench/profile-budget.mjs divides profiles by them.
  const served = { app: 0, raw: 0 };
  const run = async (side, route) => {
    const result = await measure(`http://127.0.0.1:${ports[side]}${route}`, token);
    served[side] += result.total;
    return result;
  };
  /** One measured round, with the server's CPU time per request (steady under a busy machine). */
  const round = async (side, route) => {
    const before = cpuSeconds(pids[side]);
    const result = await run(side, route);
    const after = cpuSeconds(pids[side]);
    const perRequest = (seconds) => (seconds * 1000) / result.total;
    return {
      ...result,
      cpuMs: perRequest(after.total - before.total),
      helperCpuMs: perRequest(after.total - after.main - (before.total - before.main)),
    };
  };
  const rows = [];
  for (const route of ROUTES) {
    // Warm-up, not recorded: JIT, pools, buffer pool.
    await run('app', route);
    await run('raw', route);
    const ours = [];
    const theirs = [];
    for (let i = 1; i <= ROUNDS; i += 1) {
      ours.push(await round('app', route));
      theirs.push(await round('raw', route));
      log(
        `  ${route} round ${i}: Gatehouse ${Math.round(ours.at(-1).rps)} req/s p99 ${ours.at(-1).p99} ms ` +
          `${ours.at(-1).cpuMs.toFixed(3)} CPU ms/req (${ours.at(-1).helperCpuMs.toFixed(3)} off the main thread) · ` +
          `raw ${Math.round(theirs.at(-1).rps)} req/s p99 ${theirs.at(-1).p99} ms ${theirs.at(-1).cpuMs.toFixed(3)} ` +
          `CPU ms/req (${theirs.at(-1).helperCpuMs.toFixed(3)})`,
      );
    }
    rows.push({
      route,
      rps: median(ours.map((r) => r.rps)),
      rawRps: median(theirs.map((r) => r.rps)),
      p99: median(ours.map((r) => r.p99)),
      rawP99: median(theirs.map((r) => r.p99)),
      cpuMs: median(ours.map((r) => r.cpuMs)),
      rawCpuMs: median(theirs.map((r) => r.cpuMs)),
      helperCpuMs: median(ours.map((r) => r.helperCpuMs)),
      rawHelperCpuMs: median(theirs.map((r) => r.helperCpuMs)),
    });
  }
  return { rows, served };
}

/** P3: the big user's pages at random depths against the small user's first page, 10 connections. */
async function depth(tokens, bigIds) {
  const options = { connections: 10 };
  const small = await measure(
    `http://127.0.0.1:${APP_PORT}/api/v1/todos`,
    tokens.get(SMALL_USER_ID),
    options,
  );
  const deep = await measure(`http://127.0.0.1:${APP_PORT}/api/v1/todos`, tokens.get(BIG_USER_ID), {
    ...options,
    requests: [
      {
        setupRequest: (request) => ({
          ...request,
          path: `/api/v1/todos?cursor=${encodeCursor(bigIds.min + Math.floor(Math.random() * (bigIds.max - bigIds.min)))}`,
        }),
      },
    ],
  });
  log(
    `  small list ${Math.round(small.rps)} req/s p99 ${small.p99} ms · random depth ${Math.round(deep.rps)} req/s p99 ${deep.p99} ms`,
  );
  return { small, deep };
}

/** P4: RSS before and after MIXED_REQUESTS requests cycling through reads and writes of two users. */
async function memory(pid, tokens, bigIds, todoId) {
  const before = rssMb(pid);
  const bearer = (userId) => ({ authorization: `Bearer ${tokens.get(userId)}` });
  const started = performance.now();
  await measure(`http://127.0.0.1:${APP_PORT}/api/v1/users/me`, tokens.get(SMALL_USER_ID), {
    amount: MIXED_REQUESTS,
    requests: [
      { method: 'GET', path: '/api/v1/users/me', headers: bearer(SMALL_USER_ID) },
      { method: 'GET', path: '/api/v1/todos?limit=50', headers: bearer(SMALL_USER_ID) },
      { method: 'GET', path: `/api/v1/todos/${todoId}`, headers: bearer(SMALL_USER_ID) },
      {
        method: 'GET',
        path: `/api/v1/todos?completed=false&cursor=${encodeCursor(Math.floor((bigIds.min + bigIds.max) / 2))}`,
        headers: bearer(BIG_USER_ID),
      },
      {
        method: 'POST',
        path: '/api/v1/todos',
        headers: { ...bearer(BIG_USER_ID), 'content-type': 'application/json' },
        body: JSON.stringify({ title: 'written by the memory scenario', description: 'x'.repeat(200) }),
      },
      { method: 'GET', path: '/api/v1/auth/sessions', headers: bearer(SMALL_USER_ID) },
    ],
  });
  const after = rssMb(pid);
  const seconds = (performance.now() - started) / 1000;
  const heap = await heapFigures();
  log(
    `  RSS ${before.toFixed(0)} MB before, ${after.toFixed(0)} MB after ${MIXED_REQUESTS} mixed requests (${seconds.toFixed(0)} s); ` +
      `V8 heap ${heap.used} MB used of ${heap.total} MB, external ${heap.external} MB`,
  );
  return { before, after, seconds, heap };
}

/** The V8 heap's used and committed size and external memory, in MB, from the app's own /metrics. */
async function heapFigures() {
  const res = await fetch(`http://127.0.0.1:${APP_PORT}/metrics`, {
    headers: { authorization: `Bearer ${env.METRICS_TOKEN}` },
  });
  const text = await res.text();
  const gauge = (name) => {
    const match = new RegExp(`^${name} ([0-9.e+]+)$`, 'm').exec(text);
    return match ? Math.round(Number(match[1]) / 2 ** 20) : NaN;
  };
  return {
    used: gauge('nodejs_heap_size_used_bytes'),
    total: gauge('nodejs_heap_size_total_bytes'),
    external: gauge('nodejs_external_memory_bytes'),
  };
}

function report({ version, p1, p2, p3, p4, p5 }) {
  const ms = (value) => `${Math.round(value)} ms`;
  const loginRatios = p2.app.map((round, i) => round.loginsPerSecond / p2.raw[i]);
  return [
    '## P1: authenticated requests against the same-work raw server (50 connections)',
    '',
    '| route | Gatehouse req/s | raw req/s | ratio (goal ≥ 0.8) | p99 Gatehouse / raw (goal ≤ 1.5) | CPU ms per request Gatehouse / raw | of which off the main thread |',
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...p1.map(
      (r) =>
        `| GET ${r.route} | ${Math.round(r.rps)} | ${Math.round(r.rawRps)} | ${ratio(r.rps, r.rawRps)} | ` +
        `${r.p99} / ${r.rawP99} ms = ${ratio(r.p99, r.rawP99)} | ${r.cpuMs.toFixed(3)} / ${r.rawCpuMs.toFixed(3)} = ${ratio(r.rawCpuMs, r.cpuMs)} | ` +
        `${r.helperCpuMs.toFixed(3)} / ${r.rawHelperCpuMs.toFixed(3)} |`,
    ),
    '',
    `## P2: correct-password logins at cost 12 (${p2.connections} connections, HASH_CONCURRENCY ${p2.parallelism}, UV_THREADPOOL_SIZE ${env.UV_THREADPOOL_SIZE ?? '4 (default)'})`,
    '',
    '| round | logins/s | raw compares/s at the same parallelism | ratio (goal ≥ 0.9) | 429 | 503 |',
    '| --- | --- | --- | --- | --- | --- |',
    ...p2.app.map(
      (round, i) =>
        `| ${i + 1} | ${round.loginsPerSecond.toFixed(2)} | ${p2.raw[i].toFixed(2)} | ${loginRatios[i].toFixed(2)}× | ${round.tooMany} | ${round.busy} |`,
    ),
    '',
    `GET /api/v1/todos (10 connections) p99 idle ${p2.idle.p99} ms, during a login flood ${p2.underFlood.p99} ms: ` +
      `${ratio(p2.underFlood.p99, p2.idle.p99)} (goal ≤ 2×); p50 ${p2.idle.p50} → ${p2.underFlood.p50} ms.`,
    '',
    `## P3: a page at a random depth of a ${BIG_USER_TODOS.toLocaleString('en')}-todo user against a 100-todo user's first page (10 connections)`,
    '',
    '| list | req/s | p50 | p99 |',
    '| --- | --- | --- | --- |',
    `| small user, first page | ${Math.round(p3.small.rps)} | ${p3.small.p50} ms | ${p3.small.p99} ms |`,
    `| big user, random depth | ${Math.round(p3.deep.rps)} | ${p3.deep.p50} ms | ${p3.deep.p99} ms |`,
    '',
    `Random depth / small: req/s ${ratio(p3.deep.rps, p3.small.rps)}, p99 ${ratio(p3.deep.p99, p3.small.p99)} (goal: within 1.3×).`,
    '',
    '## P4: memory',
    '',
    `RSS ${p4.before.toFixed(0)} MB before and **${p4.after.toFixed(0)} MB** after ${MIXED_REQUESTS.toLocaleString('en')} mixed ` +
      `requests (profile, lists, one todo, a deep filtered page, a create, sessions) in ${p4.seconds.toFixed(0)} s (goal ≤ 200 MB); ` +
      `the V8 heap then held ${p4.heap.used} MB in ${p4.heap.total} MB, with ${p4.heap.external} MB external.`,
    '',
    ...(p5.error === undefined
      ? [
          `## P5: ready time (medians of ${p5.runs})`,
          '',
          `Built app on SQLite: ${ms(p5.emptyDb)} on an empty database (migrations run), ${ms(p5.migratedDb)} on a migrated one (goal ≤ 1 s). ` +
            (p5.npmStart === undefined
              ? ''
              : `\`npm start\` on a fresh clone: ${ms(p5.npmStart)} (goal ≤ 5 s).`),
        ]
      : ['## P5: ready time', '', `**Not measured**: ${p5.error}.`]),
    '',
    `Environment: ${version}, ${cpus().length} × ${cpus()[0]?.model}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}` +
      `${APP_NODE_FLAGS.length > 0 ? ` (Gatehouse with ${APP_NODE_FLAGS.join(' ')})` : ''}` +
      `${env.MALLOC_ARENA_MAX === undefined ? '' : `, MALLOC_ARENA_MAX=${env.MALLOC_ARENA_MAX}`}, load average before the run ` +
      `${LOAD_BEFORE}.`,
  ].join('\n');
}

const LOAD_BEFORE = loadavg()
  .map((l) => l.toFixed(2))
  .join(' ');

async function main() {
  const version = await withAdmin(SERVER_URL, async (admin) => {
    await admin.query(`DROP DATABASE IF EXISTS \`${DB}\``);
    await admin.query(`CREATE DATABASE \`${DB}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
    const [[row]] = await admin.query('SELECT VERSION() AS version');
    return row.version;
  });
  const app = await startProcess(
    'Gatehouse',
    [
      ...APP_NODE_FLAGS,
      ...(process.env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE}`] : []),
      'dist/src/main.js',
    ],
    {},
    `http://127.0.0.1:${APP_PORT}/health/ready`,
  );
  const raw = await startProcess(
    'raw',
    [
      ...(process.env.BENCH_PROFILE ? ['--cpu-prof', `--cpu-prof-dir=${process.env.BENCH_PROFILE}/raw`] : []),
      'bench/raw-same-work.mjs',
    ],
    { PORT: String(RAW_PORT), JWT_ISSUER: auth.jwtIssuer, JWT_AUDIENCE: auth.jwtAudience },
    `http://127.0.0.1:${RAW_PORT}/api/v1/users/me`,
  );
  try {
    const pool = await connect(dbUrl);
    await seedUsers(pool, 1);
    await seedMeasuredUsers(pool, BIG_USER_TODOS, 100);
    const sessions = await seedSessions(pool, [BIG_USER_ID, SMALL_USER_ID]);
    const floodHash = await seedFloodAccounts(pool, auth.bcryptCost);
    const [[bigIds]] = await pool.query(
      'SELECT MIN(id) AS min, MAX(id) AS max FROM todos WHERE user_id = ?',
      [BIG_USER_ID],
    );
    const [[{ todoId }]] = await pool.query('SELECT MIN(id) AS todoId FROM todos WHERE user_id = ?', [
      SMALL_USER_ID,
    ]);
    await pool.end();
    const signer = new AccessTokensService(new JwtService(), { getOrThrow: () => auth });
    const tokens = new Map();
    for (const [userId, sessionId] of sessions) {
      tokens.set(userId, await signer.sign(userId, sessionId));
    }
    const token = tokens.get(SMALL_USER_ID);

    // Same work: byte-identical answers, or the ratio would compare different things.
    for (const route of ROUTES) {
      const [ours, theirs] = await Promise.all(
        [APP_PORT, RAW_PORT].map(async (port) => {
          const res = await fetch(`http://127.0.0.1:${port}${route}`, {
            headers: { authorization: `Bearer ${token}` },
          });
          return `${res.status} ${await res.text()}`;
        }),
      );
      if (ours !== theirs) {
        throw new Error(`${route}: the raw server answers differently:\n${ours}\n${theirs}`);
      }
    }
    log(`both servers answer ${ROUTES.join(' and ')} identically`);
    if (process.env.BENCH_ONLY === 'p3') {
      log('P3: page depth');
      await depth(tokens, bigIds);
      return;
    }
    if (process.env.BENCH_ONLY === 'p4') {
      log('P4: memory');
      await memory(app.pid, tokens, bigIds, todoId);
      return;
    }

    log('P1: same-work raw server');
    const { rows: p1, served } = await sameWork(token, { app: app.pid, raw: raw.pid });
    await raw.stop();
    if (process.env.BENCH_PROFILE) {
      writeFileSync(
        `${process.env.BENCH_PROFILE}/served.json`,
        JSON.stringify({
          gatehouse: { requests: served.app, readyMs: Math.round(app.readyMs) },
          raw: { requests: served.raw, readyMs: Math.round(raw.readyMs) },
        }),
      );
    }
    if (process.env.BENCH_ONLY === 'p1') {
      return;
    }
    log('P3: page depth');
    const p3 = await depth(tokens, bigIds);
    log('P2: login flood');
    const p2 = await measureLoginFlood({
      baseUrl: `http://127.0.0.1:${APP_PORT}`,
      hash: floodHash,
      token,
      parallelism: auth.hashConcurrency,
      env,
      duration: DURATION,
      rounds: ROUNDS,
      log,
    });
    if (p2.app.some((round) => round.other > 0) || p2.during.other > 0) {
      throw new Error('the login flood got answers other than 200, 429 and 503');
    }
    log('P4: memory');
    const p4 = await memory(app.pid, tokens, bigIds, todoId);
    await app.stop();
    log('P5: ready time');
    // A P5 that cannot run (Node 24 here cannot load better-sqlite3) still leaves P1-P4's report, and
    // the run fails at the end.
    const p5 = await measureStartup({ runs: SMOKE ? 1 : 3, clone: !SMOKE, log }).catch((error) => {
      log(`P5 failed: ${error.message}`);
      process.exitCode = 1;
      return { error: error.message };
    });

    const body = report({ version, p1, p2, p3, p4, p5 });
    process.stdout.write(`${body}\n`);
    if (!SMOKE) {
      const file = `bench/results/${new Date().toISOString().slice(0, 10)}-yardstick.md`;
      mkdirSync('bench/results', { recursive: true });
      const text =
        `# Yardstick (${new Date().toISOString()})\n\n\`node bench/yardstick.mjs\`: ${ROUNDS} alternating rounds of ` +
        `${DURATION} s per side where there is a raw side (medians shown).\n\n${body}\n`;
      // Formatted as the repository's `prettier --check` (npm run lint) wants it, so it can be committed as is.
      const prettier = await import('prettier');
      writeFileSync(
        file,
        await prettier.format(text, { ...(await prettier.resolveConfig(file)), filepath: file }),
      );
      log(`report: ${file}`);
    }
  } finally {
    await raw.stop();
    await app.stop();
    await withAdmin(SERVER_URL, (admin) => admin.query(`DROP DATABASE IF EXISTS \`${DB}\``));
  }
}

await main();
