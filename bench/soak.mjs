// Soak (issue 13, not in CI): a steady, modest mixed load against one built instance on its own
// MariaDB/MySQL database for SOAK_DURATION, sampling the app's memory, event-loop lag and database
// pool wait from /metrics (and RSS from /proc) every SOAK_SAMPLE seconds. Prints a Markdown report on
// stdout: status counts per operation (5xx must be 0), latency, and RSS/heap start, peak and end.
// Loopback only; bounded in time and request count.
//
//   npm run build && node bench/soak.mjs > bench/results/$(date -u +%F)-soak.md
//   SOAK_DURATION=60 SOAK_RATE=40 node bench/soak.mjs      # a short try
//
// Environment: SOAK_DURATION (seconds, default 600), SOAK_RATE (requests/s, default 30), SOAK_USERS
// (signed-in users the load cycles through, default 40), SOAK_SAMPLE (seconds, default 10),
// BENCH_MYSQL (server, default mysql://root@127.0.0.1:3306), SOAK_DB (default gatehouse_soak, dropped
// and recreated), SOAK_PORT (default 3960), SOAK_APP (the built entry, default dist/src/main.js),
// SOAK_NODE_FLAGS (the app's Node flags; default the Docker image's NODE_OPTIONS, '' for none). The app
// also gets the image's MALLOC_ARENA_MAX, as every bench does (app-env.mjs).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createWriteStream, readFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import mysql from 'mysql2/promise';
import { SMTPServer } from 'smtp-server';
import { imageLibcEnv, nodeFlags } from './app-env.mjs';

const DURATION_S = Number(process.env.SOAK_DURATION ?? 600);
const RATE = Number(process.env.SOAK_RATE ?? 30);
const USERS = Number(process.env.SOAK_USERS ?? 40);
const SAMPLE_S = Number(process.env.SOAK_SAMPLE ?? 10);
const SERVER_URL = (process.env.BENCH_MYSQL ?? 'mysql://root@127.0.0.1:3306').replace(/\/+$/, '');
const DB = process.env.SOAK_DB ?? 'gatehouse_soak';
const PORT = Number(process.env.SOAK_PORT ?? 3960);
const APP = process.env.SOAK_APP ?? 'dist/src/main.js';
const MAX_IN_FLIGHT = 200;
const PASSWORD = 'soak passphrase of a steady afternoon';

if (!/^[A-Za-z0-9_]+$/.test(DB)) {
  throw new Error('SOAK_DB must be letters, digits and underscores');
}
const base = `http://127.0.0.1:${PORT}`;
const log = (line) => process.stderr.write(`[soak ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// --- mail: a real SMTP server that keeps each recipient's latest link token ---------------------------
const tokens = new Map();
const mailWaiters = new Map();
let mailsReceived = 0;
const smtp = new SMTPServer({
  authOptional: true,
  disabledCommands: ['STARTTLS', 'AUTH'],
  disableReverseLookup: true,
  logger: false,
  onData(stream, session, callback) {
    const chunks = [];
    stream.on('data', (c) => chunks.push(c));
    stream.on('end', () => {
      mailsReceived += 1;
      const text = Buffer.concat(chunks)
        .toString('utf8')
        .replace(/=\r?\n/g, '')
        .replace(/=3D/g, '=');
      const token = /token=([A-Za-z0-9_-]+)/.exec(text)?.[1];
      for (const rcpt of session.envelope.rcptTo) {
        const to = rcpt.address.toLowerCase();
        if (token) tokens.set(to, token);
        mailWaiters.get(to)?.();
      }
      callback();
    });
  },
});
smtp.on('error', () => undefined);
await new Promise((resolve) => smtp.listen(0, '127.0.0.1', resolve));
const smtpPort = smtp.server.address().port;

async function mailTokenFor(email, timeoutMs = 15_000) {
  const to = email.toLowerCase();
  if (!tokens.has(to)) {
    await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no mail for ${email}`)), timeoutMs);
      mailWaiters.set(to, () => {
        clearTimeout(timer);
        resolve();
      });
    });
  }
  mailWaiters.delete(to);
  const token = tokens.get(to);
  tokens.delete(to);
  return token;
}

// --- the app ----------------------------------------------------------------------------------------
const admin = await mysql.createConnection({ uri: SERVER_URL });
await admin.query(`DROP DATABASE IF EXISTS \`${DB}\``);
await admin.query(`CREATE DATABASE \`${DB}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
const [[{ version }]] = await admin.query('SELECT VERSION() AS version');

const APP_FLAGS = nodeFlags(process.env.SOAK_NODE_FLAGS);
const APP_LIBC = imageLibcEnv();
const app = spawn(process.execPath, [...APP_FLAGS, APP], {
  env: {
    ...APP_LIBC,
    PATH: process.env.PATH,
    NODE_ENV: 'production',
    HOST: '127.0.0.1',
    PORT: String(PORT),
    APP_PUBLIC_URL: base,
    DATABASE_URL: `${SERVER_URL}/${DB}`,
    JWT_SECRET: randomBytes(48).toString('base64url'),
    MAIL_PAYLOAD_KEY: randomBytes(32).toString('base64'),
    MAIL_URL: `smtp://127.0.0.1:${smtpPort}`,
    MAIL_POLL_INTERVAL: '200ms',
    BCRYPT_COST: '10', // production's floor: the soak is about the service, not bcrypt
    METRICS_PUBLIC: 'true',
    // One client (this script) on loopback: the limits would refuse it within seconds.
    AUTH_THROTTLE_IP_LIMIT: '1000000',
    AUTH_THROTTLE_EMAIL_LIMIT: '1000000',
    LOG_LEVEL: 'warn',
  },
  stdio: ['ignore', 'pipe', 'pipe'],
});
// The app's own log (LOG_LEVEL=warn: warnings and errors only) is kept whole in SOAK_APP_LOG.
const APP_LOG = process.env.SOAK_APP_LOG ?? `${tmpdir()}/gatehouse-soak-app.log`;
const appLog = createWriteStream(APP_LOG);
let appStderr = '';
for (const stream of [app.stdout, app.stderr]) {
  stream.pipe(appLog, { end: false });
  stream.on('data', (chunk) => (appStderr = (appStderr + chunk).slice(-4000)));
}
let stopping = false;
const appExited = new Promise((resolve) =>
  app.once('exit', (code, signal) => {
    if (!stopping) {
      log(`the app exited on its own (code ${code}, signal ${signal}); last output:\n${appStderr}`);
    }
    resolve({ code, signal, unexpected: !stopping, at: new Date().toISOString() });
  }),
);

for (let i = 0; ; i += 1) {
  try {
    if ((await fetch(`${base}/health/ready`)).ok) break;
  } catch {}
  if (i > 300) throw new Error(`the app did not become ready: ${appStderr}`);
  await sleep(200);
}

// --- requests ---------------------------------------------------------------------------------------
const stats = new Map(); // op -> { statuses: Map, ms: [] }
const fivexx = [];
let inFlight = 0;
let skipped = 0;
let sent = 0;

async function call(op, method, path, { body, token } = {}) {
  const headers = {};
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (token) headers.authorization = `Bearer ${token}`;
  const started = performance.now();
  let status;
  let json;
  inFlight += 1;
  sent += 1;
  try {
    const res = await fetch(`${base}${path}`, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    status = res.status;
    const text = await res.text();
    json = text && (res.headers.get('content-type') ?? '').includes('json') ? JSON.parse(text) : undefined;
    if (status >= 500) fivexx.push({ op, status, body: text.slice(0, 300) });
  } catch (error) {
    status = `error ${error.cause?.code ?? error.message}`;
  } finally {
    inFlight -= 1;
  }
  const entry = stats.get(op) ?? { statuses: new Map(), ms: [] };
  entry.statuses.set(status, (entry.statuses.get(status) ?? 0) + 1);
  entry.ms.push(performance.now() - started);
  stats.set(op, entry);
  return { status, json };
}

const run = randomBytes(3).toString('hex');
let registered = 0;
const newEmail = () => `soak-${run}-${(registered += 1)}@example.test`;

/** Register, verify through the mailed link, sign in: a user the load can act as. */
async function signUp() {
  const email = newEmail();
  await call('register', 'POST', '/api/v1/auth/register', { body: { email, password: PASSWORD } });
  const token = await mailTokenFor(email);
  await call('verify-email', 'POST', '/api/v1/auth/verify-email', { body: { token } });
  const user = { email, todos: [] };
  await signIn(user);
  return user;
}

async function signIn(user) {
  const { status, json } = await call('login', 'POST', '/api/v1/auth/login', {
    body: { email: user.email, password: PASSWORD },
  });
  if (status === 200) {
    user.access = json.accessToken;
    user.refresh = json.refreshToken;
  }
}

const users = [];
log(`app up on ${base} (MariaDB/MySQL ${version}); signing up ${USERS} users`);
for (let i = 0; i < USERS; i += 1) {
  users.push(await signUp());
}
const pick = (list) => list[Math.floor(Math.random() * list.length)];

/** One operation of the mix; weights add up to 100. */
const MIX = [
  [26, 'list todos', (u) => call('list todos', 'GET', '/api/v1/todos?limit=20', { token: u.access })],
  [
    14,
    'create todo',
    async (u) => {
      const { status, json } = await call('create todo', 'POST', '/api/v1/todos', {
        token: u.access,
        body: { title: `soak ${sent}` },
      });
      if (status === 201) u.todos.push(json.id);
    },
  ],
  [
    8,
    'update todo',
    (u) =>
      u.todos.length
        ? call('update todo', 'PATCH', `/api/v1/todos/${pick(u.todos)}`, {
            token: u.access,
            body: { completed: true },
          })
        : undefined,
  ],
  [
    6,
    'delete todo',
    async (u) => {
      const id = u.todos.shift();
      if (id !== undefined) await call('delete todo', 'DELETE', `/api/v1/todos/${id}`, { token: u.access });
    },
  ],
  [14, 'me', (u) => call('me', 'GET', '/api/v1/users/me', { token: u.access })],
  [
    8,
    'refresh',
    async (u) => {
      const { status, json } = await call('refresh', 'POST', '/api/v1/auth/refresh', {
        body: { refreshToken: u.refresh },
      });
      if (status === 200) {
        u.access = json.accessToken;
        u.refresh = json.refreshToken;
      }
    },
  ],
  [3, 'login', (u) => signIn(u)],
  [
    2,
    'logout + login',
    async (u) => {
      await call('logout', 'POST', '/api/v1/auth/logout', { token: u.access });
      await signIn(u);
    },
  ],
  [
    3,
    'wrong password',
    () =>
      call('wrong password', 'POST', '/api/v1/auth/login', {
        body: { email: `nobody-${run}@example.test`, password: 'not the soak passphrase at all' },
      }),
  ],
  [
    1,
    'sign-up (register, mail, verify, login)',
    async () => {
      // The new user replaces a random one, so the working set stays USERS big.
      const user = await signUp();
      users[Math.floor(Math.random() * users.length)] = user;
    },
  ],
  [4, 'health/ready', () => call('health/ready', 'GET', '/health/ready')],
  [
    11,
    'todos by page 2',
    (u) => call('todos by page 2', 'GET', '/api/v1/todos?limit=5&completed=true', { token: u.access }),
  ],
];
const TOTAL_WEIGHT = MIX.reduce((sum, [w]) => sum + w, 0);
function nextOp() {
  let r = Math.random() * TOTAL_WEIGHT;
  for (const [weight, , fn] of MIX) {
    if ((r -= weight) < 0) return fn;
  }
  return MIX[0][2];
}

// --- sampling ---------------------------------------------------------------------------------------
const samples = [];
function metric(text, name) {
  const match = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'm').exec(text);
  return match ? Number(match[1]) : NaN;
}
function rssFromProc() {
  try {
    const kb = /VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${app.pid}/status`, 'utf8'))?.[1];
    return kb ? Number(kb) * 1024 : NaN;
  } catch {
    return NaN;
  }
}
let lastAcquire = { sum: 0, count: 0 };
async function sample(t0) {
  const res = await fetch(`${base}/metrics`);
  const text = await res.text();
  const sum = metric(text, 'gatehouse_db_pool_acquire_seconds_sum');
  const count = metric(text, 'gatehouse_db_pool_acquire_seconds_count');
  const waitMean = count > lastAcquire.count ? (sum - lastAcquire.sum) / (count - lastAcquire.count) : 0;
  // Checkouts that waited longer than 5 ms in this interval (bucket counts are cumulative).
  const over5 = (le) => metric(text, `gatehouse_db_pool_acquire_seconds_bucket\\{le="${le}"\\}`);
  lastAcquire = { sum, count };
  samples.push({
    t: Math.round((performance.now() - t0) / 1000),
    rss: rssFromProc(),
    heapUsed: metric(text, 'nodejs_heap_size_used_bytes'),
    heapTotal: metric(text, 'nodejs_heap_size_total_bytes'),
    lagP99: metric(text, 'nodejs_eventloop_lag_p99_seconds'),
    lagMax: metric(text, 'nodejs_eventloop_lag_max_seconds'),
    poolInUse: metric(text, 'gatehouse_db_pool_connections_in_use'),
    poolWaiting: metric(text, 'gatehouse_db_pool_waiting'),
    waitMeanMs: waitMean * 1000,
    checkouts: count,
    checkoutsOver5ms: count - over5('0.005'),
    pending: metric(text, 'gatehouse_mail_outbox_messages\\{status="pending"\\}'),
    inFlight,
  });
}

// --- the soak ---------------------------------------------------------------------------------------
log(`soaking for ${DURATION_S} s at ${RATE} req/s`);
const loadStart = loadavg()[0];
const t0 = performance.now();
await sample(t0);
const sampler = setInterval(
  () => void sample(t0).catch((e) => log(`sample failed: ${e.message}`)),
  SAMPLE_S * 1000,
);
const running = new Set();
const end = t0 + DURATION_S * 1000;
let ticks = 0;
let appGone = false;
void appExited.then(() => (appGone = true));
while (performance.now() < end && !appGone) {
  // Open loop: requests are started on schedule whether or not earlier ones have finished.
  const due = Math.floor(((performance.now() - t0) / 1000) * RATE);
  while (ticks < due) {
    ticks += 1;
    // Each user does one thing at a time, as a client would (a refresh racing the same user's
    // logout would only test the load generator); a tick with every user busy is skipped.
    const user =
      users.find((u, i) => !u.busy && i >= Math.floor(Math.random() * users.length)) ??
      users.find((u) => !u.busy);
    if (inFlight >= MAX_IN_FLIGHT || !user) {
      skipped += 1;
      continue;
    }
    user.busy = true;
    const p = Promise.resolve(nextOp()(user))
      .catch((e) => log(`op failed: ${e.message}`))
      .finally(() => (user.busy = false));
    running.add(p);
    void p.finally(() => running.delete(p));
  }
  if (ticks % (RATE * 60) === 0 && ticks > 0) log(`${ticks} ops started, ${fivexx.length} 5xx so far`);
  await sleep(5);
}
await Promise.all(running);
clearInterval(sampler);
await sample(t0).catch((e) => log(`last sample failed: ${e.message}`));
const elapsedS = (performance.now() - t0) / 1000;
const loadEnd = loadavg()[0];
stopping = !appGone;
app.kill('SIGTERM');
const exit = await appExited;
smtp.close();
if (process.env.SOAK_KEEP !== '1') await admin.query(`DROP DATABASE IF EXISTS \`${DB}\``);
await admin.end();

// --- report -----------------------------------------------------------------------------------------
const mb = (b) => (b / 1024 / 1024).toFixed(1);
const pct = (sorted, p) => sorted[Math.min(sorted.length - 1, Math.floor((sorted.length * p) / 100))] ?? NaN;
const peak = (key) => samples.reduce((a, s) => (s[key] > a[key] ? s : a), samples[0]);
const first = samples[0];
const last = samples.at(-1);
const totalRequests = [...stats.values()].reduce((n, e) => n + e.ms.length, 0);
const all5xx = fivexx.length;
const allMs = [...stats.values()].flatMap((e) => e.ms).sort((a, b) => a - b);
const lagP99s = samples
  .slice(1)
  .map((s) => s.lagP99)
  .sort((a, b) => a - b);
// Heap trend over the second half (after warm-up), MB per minute, least squares.
const half = samples.filter((s) => s.t >= DURATION_S / 2);
const slope = (() => {
  const n = half.length;
  if (n < 2) return NaN;
  const mx = half.reduce((a, s) => a + s.t, 0) / n;
  const my = half.reduce((a, s) => a + s.heapUsed, 0) / n;
  const num = half.reduce((a, s) => a + (s.t - mx) * (s.heapUsed - my), 0);
  const den = half.reduce((a, s) => a + (s.t - mx) ** 2, 0);
  return ((num / den) * 60) / 1024 / 1024;
})();
const waits = samples.slice(1).map((s) => s.waitMeanMs);

const out = [];
out.push(`# Soak: ${Math.round(elapsedS)} s of mixed load at ${RATE} req/s, one instance on MariaDB/MySQL`);
out.push('');
out.push(
  `Command: \`SOAK_DURATION=${DURATION_S} SOAK_RATE=${RATE} SOAK_USERS=${USERS} node bench/soak.mjs\` ` +
    `(built app \`${APP}\`, NODE_ENV=production, BCRYPT_COST=10, LOG_LEVEL=warn, DB_POOL_SIZE default 10; ` +
    `Node flags \`${APP_FLAGS.join(' ') || 'none'}\`, MALLOC_ARENA_MAX ${APP_LIBC.MALLOC_ARENA_MAX ?? 'unset'}). ` +
    `${cpus().length} cores, node ${process.version}, database ${version}; load average ${loadStart.toFixed(1)} at ` +
    `start, ${loadEnd.toFixed(1)} at end (the machine is shared). ` +
    (exit.unexpected
      ? `**The app exited on its own at ${exit.at} (code ${exit.code}, signal ${exit.signal}); see ${APP_LOG}.**`
      : `App exit after SIGTERM: ${exit.signal ?? `code ${exit.code}`}.`),
);
out.push('');
out.push('## Verdict');
out.push('');
out.push(
  `- requests: **${totalRequests}** (${(totalRequests / elapsedS).toFixed(1)} req/s); ${skipped} ticks skipped (every user busy, or ${MAX_IN_FLIGHT} in flight)`,
);
out.push(
  `- **5xx: ${all5xx}**; transport errors: ${[...stats.values()].reduce((n, e) => n + [...e.statuses].filter(([s]) => typeof s === 'string').reduce((m, [, c]) => m + c, 0), 0)}`,
);
out.push(
  `- latency over all requests: p50 ${pct(allMs, 50).toFixed(1)} ms, p99 ${pct(allMs, 99).toFixed(1)} ms`,
);
out.push(
  `- RSS start ${mb(first.rss)} MB, peak ${mb(peak('rss').rss)} MB (at ${peak('rss').t} s), end ${mb(last.rss)} MB`,
);
out.push(
  `- heap used start ${mb(first.heapUsed)} MB, peak ${mb(peak('heapUsed').heapUsed)} MB (at ${peak('heapUsed').t} s), ` +
    `end ${mb(last.heapUsed)} MB; trend over the second half ${slope.toFixed(2)} MB/min`,
);
out.push(
  `- event-loop lag p99 (per ${SAMPLE_S} s interval, \`nodejs_eventloop_lag_p99_seconds\`): median ` +
    `${(pct(lagP99s, 50) * 1000).toFixed(1)} ms, worst ${(lagP99s.at(-1) * 1000).toFixed(1)} ms`,
);
out.push(
  `- DB pool wait (\`gatehouse_db_pool_acquire_seconds\`): ${last.checkouts} checkouts, mean wait per interval ` +
    `median ${pct(
      [...waits].sort((a, b) => a - b),
      50,
    ).toFixed(2)} ms, worst ${Math.max(...waits).toFixed(2)} ms; ` +
    `${last.checkoutsOver5ms} checkouts waited over 5 ms; queue (\`gatehouse_db_pool_waiting\`) max ` +
    `${Math.max(...samples.map((s) => s.poolWaiting))}`,
);
out.push(
  `- mail: ${registered} sign-ups, ${mailsReceived} mails received; outbox pending at end ${last.pending}`,
);
out.push('');
out.push('## Per operation');
out.push('');
out.push('| operation | requests | statuses | p50 ms | p99 ms |');
out.push('| --- | ---: | --- | ---: | ---: |');
for (const [op, entry] of [...stats].sort((a, b) => b[1].ms.length - a[1].ms.length)) {
  const sorted = [...entry.ms].sort((a, b) => a - b);
  const statuses = [...entry.statuses].map(([s, n]) => `${s}: ${n}`).join(', ');
  out.push(
    `| ${op} | ${sorted.length} | ${statuses} | ${pct(sorted, 50).toFixed(1)} | ${pct(sorted, 99).toFixed(1)} |`,
  );
}
out.push('');
out.push(`## Samples (every ${SAMPLE_S * 3} s of the ${SAMPLE_S} s samples)`);
out.push('');
out.push(
  '| t s | RSS MB | heap used MB | heap total MB | loop lag p99 ms | loop lag max ms | pool in use | pool waiting | mean pool wait ms | outbox pending |',
);
out.push('| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
samples.forEach((s, i) => {
  if (i % 3 === 0 || i === samples.length - 1) {
    out.push(
      `| ${s.t} | ${mb(s.rss)} | ${mb(s.heapUsed)} | ${mb(s.heapTotal)} | ${(s.lagP99 * 1000).toFixed(1)} | ` +
        `${(s.lagMax * 1000).toFixed(1)} | ${s.poolInUse} | ${s.poolWaiting} | ${s.waitMeanMs.toFixed(2)} | ${s.pending} |`,
    );
  }
});
if (fivexx.length) {
  out.push('');
  out.push('## First 5xx bodies');
  out.push('');
  fivexx.slice(0, 10).forEach((f) => out.push(`- ${f.op} ${f.status}: \`${f.body}\``));
}
process.stdout.write(`${out.join('\n')}\n`);
process.exit(all5xx === 0 ? 0 : 1);
