// Same-run A/B: two instances on the same database with the same token, differing only in the Node
// flags each is started with or in the build each runs, measured in alternating rounds (A, B, B, A …)
// so that a busy host slows both alike. Prints each round and the medians of per-round ratios B/A of
// req/s, p99 and CPU per request (user + system, all threads, from /proc).
//
//   npm run build
//   AB_A='--max-semi-space-size=8' AB_B='--max-semi-space-size=16' node bench/ab.mjs
//   cp -r dist node_modules/.cache/before && npm run build && AB_A_MAIN=node_modules/.cache/before/src/main.js node bench/ab.mjs
//
// Environment: AB_A and AB_B (flags; default: the Docker image's NODE_OPTIONS for both), AB_A_MAIN and
// AB_B_MAIN (the script each side runs; default dist/src/main.js), AB_A_ENV and AB_B_ENV (NAME=value
// pairs, space-separated, added to that side's environment: AB_B_ENV='MALLOC_ARENA_MAX=16'), AB_ROUTES
// (comma-separated, default /api/v1/todos,/api/v1/users/me), AB_ROUNDS (per side, default 6),
// AB_DURATION (seconds per round, default 5), AB_CONNECTIONS (default 50), BENCH_MYSQL and BENCH_DB
// as for the yardstick (default database gatehouse_ab, **dropped and recreated**). Both instances run
// on the Node that runs this script, with the yardstick's production settings.
import { spawn } from 'node:child_process';
import { JwtService } from '@nestjs/jwt';
import autocannon from 'autocannon';
import mysql from 'mysql2/promise';
import { AccessTokensService } from '../dist/src/auth/access-tokens.service.js';
import { loadConfig } from '../dist/src/config/config.js';
import { benchDatabase, nodeFlags, productionEnv } from './app-env.mjs';
import { cpuSeconds } from './proc.mjs';
import { SMALL_USER_ID, connect, seedMeasuredUsers, seedSessions, seedUsers } from './seed.mjs';

const { server: SERVER_URL, name: DB, url: dbUrl } = benchDatabase('gatehouse_ab');
const ROUTES = (process.env.AB_ROUTES ?? '/api/v1/todos,/api/v1/users/me').split(',');
const ROUNDS = Number(process.env.AB_ROUNDS ?? 6);
const DURATION = Number(process.env.AB_DURATION ?? 5);
const CONNECTIONS = Number(process.env.AB_CONNECTIONS ?? 50);
/** `NAME=value NAME=value` as an object; a word without `=` is refused rather than guessed at. */
function sideEnv(pairs = '') {
  return Object.fromEntries(
    pairs
      .split(/\s+/)
      .filter(Boolean)
      .map((pair) => {
        const at = pair.indexOf('=');
        if (at < 1) {
          throw new Error(`AB_A_ENV and AB_B_ENV take NAME=value pairs, not "${pair}"`);
        }
        return [pair.slice(0, at), pair.slice(at + 1)];
      }),
  );
}

const SIDES = {
  A: {
    port: 3920,
    flags: nodeFlags(process.env.AB_A),
    main: process.env.AB_A_MAIN ?? 'dist/src/main.js',
    env: sideEnv(process.env.AB_A_ENV),
  },
  B: {
    port: 3921,
    flags: nodeFlags(process.env.AB_B),
    main: process.env.AB_B_MAIN ?? 'dist/src/main.js',
    env: sideEnv(process.env.AB_B_ENV),
  },
};

const env = productionEnv({ databaseUrl: dbUrl, port: SIDES.A.port });
const { auth } = loadConfig(env);
const median = (values) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];

async function start(side) {
  const { port, flags, main, env: own } = SIDES[side];
  const child = spawn(process.execPath, [...flags, main], {
    env: { ...env, ...own, PORT: String(port), APP_PUBLIC_URL: `http://127.0.0.1:${port}` },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  const exited = new Promise((resolve) => child.once('exit', resolve));
  for (let i = 0; i < 300; i += 1) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/health/ready`)).status === 200) {
        return { pid: child.pid, stop: async () => (child.kill('SIGTERM'), await exited) };
      }
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  child.kill('SIGKILL');
  throw new Error(`side ${side} did not become ready`);
}

function measure(port, route, token) {
  return new Promise((resolve, reject) => {
    autocannon(
      {
        url: `http://127.0.0.1:${port}${route}`,
        connections: CONNECTIONS,
        duration: DURATION,
        headers: { authorization: `Bearer ${token}` },
      },
      (error, result) => (error ? reject(error) : resolve(result)),
    );
  }).then((result) => {
    if (result.non2xx + result.errors + result.timeouts > 0) {
      throw new Error(
        `${route} on ${port}: ${result.non2xx} non-2xx, ${result.errors + result.timeouts} errors`,
      );
    }
    return { rps: result.requests.average, p99: result.latency.p99, total: result.requests.total };
  });
}

const admin = await mysql.createConnection({ uri: SERVER_URL });
await admin.query(`DROP DATABASE IF EXISTS \`${DB}\``);
await admin.query(`CREATE DATABASE \`${DB}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
await admin.end();
// One after the other: the first runs the migrations.
const servers = { A: await start('A'), B: await start('B') };
try {
  const pool = await connect(dbUrl);
  await seedUsers(pool, 1);
  await seedMeasuredUsers(pool, 1_000, 100);
  const sessions = await seedSessions(pool, [SMALL_USER_ID]);
  await pool.end();
  const signer = new AccessTokensService(new JwtService(), { getOrThrow: () => auth });
  const token = await signer.sign(SMALL_USER_ID, sessions.get(SMALL_USER_ID));
  for (const side of ['A', 'B']) {
    process.stderr.write(
      `${side}: ${Object.entries(SIDES[side].env)
        .map(([name, value]) => `${name}=${value} `)
        .join('')}${SIDES[side].flags.join(' ')} ${SIDES[side].main}\n`,
    );
  }
  for (const route of ROUTES) {
    for (const side of ['A', 'B']) {
      await measure(SIDES[side].port, route, token); // warm-up
    }
    const ratios = { rps: [], p99: [], cpu: [] };
    for (let i = 1; i <= ROUNDS; i += 1) {
      // Alternate which side goes first, so neither always follows the other.
      const order = i % 2 === 1 ? ['A', 'B'] : ['B', 'A'];
      const results = {};
      for (const side of order) {
        const before = cpuSeconds(servers[side].pid).total;
        const result = await measure(SIDES[side].port, route, token);
        results[side] = {
          ...result,
          cpuMs: ((cpuSeconds(servers[side].pid).total - before) * 1000) / result.total,
        };
      }
      const { A, B } = results;
      ratios.rps.push(B.rps / A.rps);
      ratios.p99.push(B.p99 / A.p99);
      ratios.cpu.push(B.cpuMs / A.cpuMs);
      process.stderr.write(
        `${route} round ${i}: A ${Math.round(A.rps)} req/s p99 ${A.p99} ms ${A.cpuMs.toFixed(3)} CPU ms/req · ` +
          `B ${Math.round(B.rps)} req/s p99 ${B.p99} ms ${B.cpuMs.toFixed(3)} CPU ms/req\n`,
      );
    }
    const range = (values) =>
      `${median(values).toFixed(2)} (${Math.min(...values).toFixed(2)}–${Math.max(...values).toFixed(2)})`;
    process.stdout.write(
      `${route}: B/A req/s ${range(ratios.rps)}, p99 ${range(ratios.p99)}, CPU per request ${range(ratios.cpu)}\n`,
    );
  }
} finally {
  await Promise.all(Object.values(servers).map((server) => server.stop()));
}
