// Login latency at two bcrypt costs, next to /health/live measured in the same run, each against a
// fresh built app on a temporary SQLite file. Sequential requests (one connection) so the figure is
// the latency one person sees; loopback only, a fixed number of requests.
//
//   npm run build && node bench/login.mjs            # BENCH_LOGINS=40 by default
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const LOGINS = Number(process.env.BENCH_LOGINS ?? 40);
const PORT = Number(process.env.BENCH_PORT ?? 3950);
const base = `http://127.0.0.1:${PORT}`;
const email = 'bench@example.test';
const password = 'a bench passphrase to time';

async function waitUp() {
  for (let i = 0; i < 100; i += 1) {
    try {
      if ((await fetch(`${base}/health/live`)).ok) return;
    } catch {}
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error('app did not start');
}

async function post(path, body) {
  return fetch(`${base}/api/v1${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

async function time(n, fn) {
  const samples = [];
  for (let i = 0; i < n; i += 1) {
    const start = performance.now();
    await fn();
    samples.push(performance.now() - start);
  }
  samples.sort((a, b) => a - b);
  return { p50: samples[Math.floor(n / 2)], p90: samples[Math.floor(n * 0.9)] };
}

async function measure(cost) {
  const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-login-'));
  const app = spawn('node', ['dist/src/main.js'], {
    env: {
      ...process.env,
      NODE_ENV: 'development',
      PORT: String(PORT),
      HOST: '127.0.0.1',
      DATABASE_URL: `sqlite:${join(dir, 'db.sqlite')}`,
      MAIL_DIR: join(dir, 'mail'),
      MAIL_POLL_INTERVAL: '100ms',
      BCRYPT_COST: String(cost),
      AUTH_THROTTLE_IP_LIMIT: '1000000',
      AUTH_THROTTLE_EMAIL_LIMIT: '1000000',
      LOG_LEVEL: 'warn',
    },
    stdio: 'ignore',
  });
  try {
    await waitUp();
    await post('/auth/register', { email, password });
    let token;
    for (let i = 0; i < 50 && !token; i += 1) {
      await new Promise((r) => setTimeout(r, 100));
      const files = readdirSync(join(dir, 'mail')).filter((f) => f.endsWith('.eml'));
      const text = files
        .map((f) => readFileSync(join(dir, 'mail', f), 'utf8'))
        .join('')
        .replace(/=\r?\n/g, '')
        .replace(/=3D/g, '=');
      token = /verify-email\?token=([A-Za-z0-9_-]+)/.exec(text)?.[1];
    }
    if ((await post('/auth/verify-email', { token })).status !== 200) throw new Error('verification failed');
    const health = await time(LOGINS, () => fetch(`${base}/health/live`).then((r) => r.text()));
    const login = await time(LOGINS, async () => {
      const res = await post('/auth/login', { email, password });
      if (res.status !== 200) throw new Error(`login answered ${res.status}`);
      await res.text();
    });
    return { cost, login, health };
  } finally {
    app.kill();
    rmSync(dir, { recursive: true, force: true });
  }
}

const results = [];
for (const cost of [4, 12]) {
  results.push(await measure(cost));
}
console.log(`login latency, ${LOGINS} sequential logins per cost (ms):`);
for (const { cost, login, health } of results) {
  console.log(
    `  BCRYPT_COST=${cost}: login p50 ${login.p50.toFixed(1)}  p90 ${login.p90.toFixed(1)}   ` +
      `/health/live p50 ${health.p50.toFixed(2)}   login/health ${(login.p50 / health.p50).toFixed(0)}x`,
  );
}
