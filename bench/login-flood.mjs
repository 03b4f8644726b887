// P2 of the yardstick: correct-password logins at bcrypt cost 12 against raw `bcrypt.compare` with the
// same parallelism (the app's HASH_CONCURRENCY, in a process with the same UV_THREADPOOL_SIZE), in
// alternating rounds; and GET /todos p99 while the flood runs against the same route idle.
import { spawn } from 'node:child_process';
import autocannon from 'autocannon';
import { BcryptPasswordHasher, prehash } from '../dist/src/auth/bcrypt-password-hasher.service.js';

export const FLOOD_PASSWORD = 'a correct horse for the login flood';
const FLOOD_ACCOUNTS = 200;

/** Verified accounts flood-1…flood-200 sharing one cost-12 hash of FLOOD_PASSWORD; returns it. */
export async function seedFloodAccounts(pool, cost) {
  const hasher = new BcryptPasswordHasher({
    getOrThrow: () => ({ bcryptCost: cost, hashConcurrency: 1, hashQueueLimit: 1 }),
  });
  const hash = await hasher.hash(FLOOD_PASSWORD);
  const rows = Array.from({ length: FLOOD_ACCOUNTS }, (_, i) => [
    `flood-${i + 1}@bench.test`,
    hash,
    1,
    'user',
  ]);
  await pool.query('INSERT INTO users (email, password_hash, is_verified, role) VALUES ?', [rows]);
  return hash;
}

function run(options) {
  return new Promise((resolve, reject) =>
    autocannon(options, (error, result) => (error ? reject(error) : resolve(result))),
  );
}

const count = (result, status) => result.statusCodeStats?.[status]?.count ?? 0;

/** One flood: CONNECTIONS clients logging in as the flood accounts in turn, for `duration` seconds. */
async function flood(baseUrl, connections, duration) {
  let next = 0;
  const result = await run({
    url: `${baseUrl}/api/v1/auth/login`,
    connections,
    duration,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    requests: [
      {
        setupRequest: (request) => ({
          ...request,
          body: JSON.stringify({
            email: `flood-${(next++ % FLOOD_ACCOUNTS) + 1}@bench.test`,
            password: FLOOD_PASSWORD,
          }),
        }),
      },
    ],
  });
  return {
    loginsPerSecond: count(result, '200') / duration,
    tooMany: count(result, '429'),
    busy: count(result, '503'),
    other: result.non2xx - count(result, '429') - count(result, '503') + result.errors + result.timeouts,
  };
}

function rawCompares({ hash, parallelism, duration, env }) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['bench/raw-bcrypt.mjs'], {
      env: {
        ...env,
        HASH: hash,
        PREHASHED: prehash(FLOOD_PASSWORD),
        PARALLELISM: String(parallelism),
        DURATION: String(duration),
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (chunk) => (out += chunk));
    child.once('exit', (code) =>
      code === 0
        ? resolve(JSON.parse(out).compares / duration)
        : reject(new Error(`raw-bcrypt exited ${code}`)),
    );
  });
}

function todosLatency(baseUrl, token, duration) {
  return run({
    url: `${baseUrl}/api/v1/todos`,
    connections: 10,
    duration,
    headers: { authorization: `Bearer ${token}` },
  }).then((result) => ({
    p50: result.latency.p50,
    p99: result.latency.p99,
    errors: result.non2xx + result.errors,
  }));
}

/**
 * Alternating rounds of app flood / raw compares; then /todos idle and under a flood. `env` is the
 * app's environment (UV_THREADPOOL_SIZE is passed on to the raw process), `parallelism` its
 * HASH_CONCURRENCY.
 */
export async function measureLoginFlood({
  baseUrl,
  hash,
  token,
  parallelism,
  env,
  duration,
  rounds,
  connections = 8,
  log,
}) {
  const app = [];
  const raw = [];
  for (let round = 1; round <= rounds; round += 1) {
    app.push(await flood(baseUrl, connections, duration));
    raw.push(await rawCompares({ hash, parallelism, duration, env }));
    log(
      `  login flood round ${round}: ${app.at(-1).loginsPerSecond.toFixed(2)} logins/s` +
        ` (429: ${app.at(-1).tooMany}, 503: ${app.at(-1).busy}) · raw ${raw.at(-1).toFixed(2)} compares/s`,
    );
  }
  const idle = await todosLatency(baseUrl, token, duration);
  const [underFlood, during] = await Promise.all([
    todosLatency(baseUrl, token, duration),
    flood(baseUrl, connections, duration),
  ]);
  log(
    `  GET /todos p99 idle ${idle.p99} ms, during a login flood ${underFlood.p99} ms (${during.loginsPerSecond.toFixed(2)} logins/s)`,
  );
  return { app, raw, idle, underFlood, during, parallelism, connections };
}
