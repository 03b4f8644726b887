// The authenticated request path (DESIGN §7: one JWT check, one session lookup, the handler's query):
// GET /api/v1/users/me against /health/live in the same run, on a temporary SQLite app, loopback only,
// fixed durations. PROFILE=1 writes a CPU profile to /tmp/gatehouse-prof.
//
//   npm run build && node bench/auth-path.mjs
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import autocannon from 'autocannon';
const base = 'http://127.0.0.1:3960';
const dir = mkdtempSync(join(tmpdir(), 'gatehouse-bench-auth-'));
const app = spawn(
  'node',
  [...(process.env.PROFILE ? ['--cpu-prof', '--cpu-prof-dir=/tmp/gatehouse-prof'] : []), 'dist/src/main.js'],
  {
    env: {
      ...process.env,
      NODE_ENV: 'development',
      PORT: '3960',
      HOST: '127.0.0.1',
      DATABASE_URL: `sqlite:${dir}/db.sqlite`,
      MAIL_DIR: `${dir}/mail`,
      LOG_LEVEL: process.env.LOG_LEVEL ?? 'info',
      BCRYPT_COST: '4',
      AUTH_THROTTLE_IP_LIMIT: '100000',
    },
    stdio: ['ignore', 'ignore', 'inherit'],
  },
);
for (let i = 0; i < 100; i++) {
  try {
    if ((await fetch(base + '/health/live')).ok) break;
  } catch {}
  await new Promise((r) => setTimeout(r, 100));
}
const post = (p, b) =>
  fetch(base + '/api/v1' + p, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(b),
  });
await post('/auth/register', { email: 'p@example.test', password: 'profile passphrase x' });
let token;
for (let i = 0; i < 50 && !token; i++) {
  await new Promise((r) => setTimeout(r, 100));
  try {
    const t = readdirSync(`${dir}/mail`)
      .map((f) => readFileSync(`${dir}/mail/${f}`, 'utf8'))
      .join('')
      .replace(/=\r?\n/g, '')
      .replace(/=3D/g, '=');
    token = /token=([A-Za-z0-9_-]+)/.exec(t)?.[1];
  } catch {}
}
await post('/auth/verify-email', { token });
const login = await (
  await post('/auth/login', { email: 'p@example.test', password: 'profile passphrase x' })
).json();
const r = await autocannon({
  url: base + '/api/v1/users/me',
  connections: 10,
  duration: 6,
  headers: { authorization: 'Bearer ' + login.accessToken },
});
console.log('users/me req/s', r.requests.average, 'p50', r.latency.p50, 'non2xx', r.non2xx);
const h = await autocannon({ url: base + '/health/live', connections: 10, duration: 3 });
console.log('health req/s', h.requests.average);
app.kill('SIGINT');
await new Promise((r) => app.on('exit', r));
rmSync(dir, { recursive: true, force: true });
