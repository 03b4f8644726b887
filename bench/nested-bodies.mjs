// Issue 12, item 1: one account sends deeply nested JSON bodies (90 kB, 45,000 nested `[`) to
// POST /api/v1/todos at full speed; other users' GET /api/v1/todos latency is measured while it does,
// and idle, against the built app (NODE_ENV=development only for the file mail transport; request
// logging on at the production level) on a temporary SQLite file, or MariaDB with BENCH_DATABASE_URL.
//
//   npm run build && node bench/nested-bodies.mjs > report.md
//   BENCH_DURATION=10 BENCH_ATTACK_CONNECTIONS=40 BENCH_DATABASE_URL=mysql://root@127.0.0.1:3306/gatehouse_nested node bench/nested-bodies.mjs
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';

const DURATION = Number(process.env.BENCH_DURATION ?? 10);
const VICTIM_CONNECTIONS = Number(process.env.BENCH_CONNECTIONS ?? 10);
const ATTACK_CONNECTIONS = Number(process.env.BENCH_ATTACK_CONNECTIONS ?? 40);
const PORT = Number(process.env.BENCH_PORT ?? 3960);
const base = `http://127.0.0.1:${PORT}`;
const password = 'a bench passphrase to time';
const NESTED = `{"title":${'['.repeat(45_000)}${']'.repeat(45_000)}}`;

async function waitUp() {
  for (let i = 0; i < 200; i += 1) {
    try {
      if ((await fetch(`${base}/health/live`)).ok) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('app did not start');
}

const post = (path, body, token) =>
  fetch(`${base}/api/v1${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}) },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });

/** Registers, verifies (link from the .eml the dev transport wrote) and signs in; the access token. */
async function account(dir, email) {
  await post('/auth/register', { email, password });
  let token;
  for (let i = 0; i < 100 && !token; i += 1) {
    await new Promise((r) => setTimeout(r, 100));
    let files = [];
    try {
      files = readdirSync(join(dir, 'mail'));
    } catch {
      continue; // the worker has not written its first mail yet
    }
    const text = files
      .filter((f) => f.endsWith('.eml'))
      .map((f) => readFileSync(join(dir, 'mail', f), 'utf8'))
      .filter((t) => t.includes(email))
      .join('')
      .replace(/=\r?\n/g, '')
      .replace(/=3D/g, '=');
    token = /verify-email\?token=([A-Za-z0-9_-]+)/.exec(text)?.[1];
  }
  if ((await post('/auth/verify-email', { token })).status !== 200) throw new Error('verification failed');
  const login = await post('/auth/login', { email, password });
  if (login.status !== 200) throw new Error(`login answered ${login.status}`);
  return (await login.json()).accessToken;
}

function cannon(options) {
  return autocannon({ duration: DURATION, ...options });
}

const victimLoad = (token) =>
  cannon({
    url: `${base}/api/v1/todos`,
    connections: VICTIM_CONNECTIONS,
    headers: { authorization: `Bearer ${token}` },
  });

const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-nested-'));
const databaseUrl = process.env.BENCH_DATABASE_URL ?? `sqlite:${join(dir, 'db.sqlite')}`;
const app = spawn('node', ['dist/src/main.js'], {
  env: {
    ...process.env,
    NODE_ENV: 'development',
    PORT: String(PORT),
    HOST: '127.0.0.1',
    DATABASE_URL: databaseUrl,
    MAIL_DIR: join(dir, 'mail'),
    MAIL_POLL_INTERVAL: '100ms',
    BCRYPT_COST: '4',
    AUTH_THROTTLE_IP_LIMIT: '1000000',
    AUTH_THROTTLE_EMAIL_LIMIT: '1000000',
    LOG_LEVEL: 'info',
  },
  stdio: 'ignore',
});
try {
  await waitUp();
  const victim = await account(dir, `victim-${Date.now()}@example.test`);
  const attacker = await account(dir, `attacker-${Date.now()}@example.test`);
  for (let i = 0; i < 30; i += 1) {
    await post('/todos', { title: `todo ${i}` }, victim);
  }
  const probe = await post('/todos', NESTED, attacker);
  const probeBody = await probe.json();
  if (probe.status !== 400 || probeBody.code !== 'BODY_TOO_DEEP') {
    throw new Error(`the nested body answered ${probe.status} ${probeBody.code}`);
  }

  await cannon({
    url: `${base}/api/v1/todos`,
    connections: 2,
    duration: 3,
    headers: { authorization: `Bearer ${victim}` },
  });
  const idle = await victimLoad(victim);
  const [attacked, attack] = await Promise.all([
    victimLoad(victim),
    cannon({
      url: `${base}/api/v1/todos`,
      method: 'POST',
      connections: ATTACK_CONNECTIONS,
      headers: { authorization: `Bearer ${attacker}`, 'content-type': 'application/json' },
      body: NESTED,
    }),
  ]);
  const ready = await fetch(`${base}/health/ready`);

  const row = (name, r) =>
    `| ${name} | ${r.requests.average.toFixed(0)} | ${r.latency.p50} | ${r.latency.p99} | ${r.non2xx} | ${r.errors} |`;
  console.log(`# Nested-body flood vs other users' GET /todos (${new Date().toISOString().slice(0, 10)})

App: built (\`dist/src/main.js\`), ${databaseUrl.startsWith('sqlite') ? 'SQLite (temporary file)' : 'MariaDB'}, request logging at info.
Machine: ${cpus().length} cores, load average before the run ${loadavg()[0].toFixed(2)}. Load generator in the same machine.
Victim: GET /api/v1/todos (a page of 20), ${VICTIM_CONNECTIONS} connections, ${DURATION} s.
Attack: one account, POST /api/v1/todos with ${NESTED.length} bytes (45,000 nested \`[\`), ${ATTACK_CONNECTIONS} connections, at full speed, same ${DURATION} s.

| run | req/s | p50 ms | p99 ms | non-2xx | errors |
| --- | ---: | ---: | ---: | ---: | ---: |
${row('victim, idle', idle)}
${row('victim, under attack', attacked)}
${row('attack (400 BODY_TOO_DEEP; 429 TOO_MANY_BODIES past the client’s body budget)', attack)}

Victim p99 under attack / idle: **${(attacked.latency.p99 / idle.latency.p99).toFixed(2)}×** (target ≤ 2×);
p50 ${(attacked.latency.p50 / Math.max(idle.latency.p50, 1)).toFixed(2)}×. Attack answers: ${JSON.stringify(attack.statusCodeStats)}.
/health/ready after the attack: ${ready.status}.`);
} finally {
  app.kill();
  rmSync(dir, { recursive: true, force: true });
}
