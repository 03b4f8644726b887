// Instructions per request, Gatehouse against the same-work raw server, counted by valgrind's
// callgrind: a figure that does not drift with the machine's speed the way req/s and CPU time do on a
// shared VM (the same build measured twice in a row differed by up to 40% in CPU per request), so a
// change of a few percent can be seen in one run. Each server runs under callgrind with its
// instrumentation off, is warmed up, and then counts only while `IC_REQUESTS` requests of a route are
// served (10 connections). The count is split into V8's garbage collector, its compilers and the rest
// (the mutator: what the request itself runs). Under valgrind everything runs ~50x slower, so requests
// live longer and more of them survive a scavenge: the GC figure is inflated; compare mutators.
//
//   npm run build && node bench/instructions.mjs            # needs valgrind (apt-get install valgrind)
//
// Environment: BENCH_MYSQL (default mysql://root@127.0.0.1:3306), IC_REQUESTS (default 1000),
// IC_WARMUP (default 8000), IC_ROUTES (default /api/v1/todos,/api/v1/users/me), BENCH_APP_FLAGS.
import { execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { JwtService } from '@nestjs/jwt';
import autocannon from 'autocannon';
import mysql from 'mysql2/promise';
import { AccessTokensService } from '../dist/src/auth/access-tokens.service.js';
import { loadConfig } from '../dist/src/config/config.js';
import { nodeFlags } from './app-env.mjs';
import { SMALL_USER_ID, connect, seedMeasuredUsers, seedSessions, seedUsers } from './seed.mjs';

const SERVER_URL = process.env.BENCH_MYSQL ?? 'mysql://root@127.0.0.1:3306';
const DB = 'gatehouse_instructions';
const REQUESTS = Number(process.env.IC_REQUESTS ?? 1000);
const WARMUP = Number(process.env.IC_WARMUP ?? 8000);
const ROUTES = (process.env.IC_ROUTES ?? '/api/v1/todos,/api/v1/users/me').split(',');
const APP_FLAGS = nodeFlags(process.env.BENCH_APP_FLAGS);
const APP_PORT = 3920;
const RAW_PORT = 3921;
const out = mkdtempSync(join(tmpdir(), 'gatehouse-instructions-'));
// callgrind_control finds a process by user and host names; a container may have neither set.
const valgrindEnv = {
  USER: process.env.USER || 'root',
  LOGNAME: process.env.LOGNAME || 'root',
  HOST: '127.0.0.1',
};
const env = {
  ...process.env,
  ...valgrindEnv,
  NODE_ENV: 'production',
  HOST: '127.0.0.1',
  APP_PUBLIC_URL: `http://127.0.0.1:${APP_PORT}`,
  DATABASE_URL: `${SERVER_URL}/${DB}`,
  DB_MIGRATE_ON_START: 'true',
  JWT_SECRET: randomBytes(48).toString('base64url'),
  MAIL_URL: 'smtp://127.0.0.1:2525',
  MAIL_PAYLOAD_KEY: randomBytes(32).toString('base64'),
  METRICS_TOKEN: randomBytes(24).toString('base64url'),
  LOG_LEVEL: process.env.LOG_LEVEL ?? 'info',
};
const { auth } = loadConfig(env);

/** V8's own frames, by what they are; everything else is the mutator. */
const GC =
  /Scaveng|Marking|Sweep|Evacuat|MarkCompact|Heap::|SizeFromMap|MemoryChunk|BodyDescriptor|RememberedSet|SlotSet|GCTracer|ObjectCache|RecordWrite|heap::base|cppgc|PagedSpace|FreeList|ArrayBufferSweeper|MinorMC|WeakObjects|Evacuation/;
const COMPILER =
  /compiler::|maglev|Maglev|interpreter::|Parser|BytecodeGenerator|Zone::|Scanner|baseline::|CodeGenerator|Assembler|InstructionSelector|RegisterAllocat|Deoptimiz|OptimizedCompilationJob|Compiler::|PipelineImpl|LiveRange/;

/** Thousands of instructions per request in a callgrind dump: total, GC, compilers, mutator. */
function split(file, requests) {
  const lines = execFileSync('callgrind_annotate', ['--threshold=100', file], { maxBuffer: 1 << 28 })
    .toString()
    .split('\n');
  const sums = { total: 0, gc: 0, compiler: 0, mutator: 0 };
  for (const line of lines) {
    const match = /^\s*([\d,]+) \(\s*[\d.]+%\)\s+(.*)$/.exec(line);
    if (!match) continue;
    const count = Number(match[1].replaceAll(',', ''));
    if (match[2].startsWith('PROGRAM TOTALS')) sums.total = count;
    else if (GC.test(match[2])) sums.gc += count;
    else if (COMPILER.test(match[2])) sums.compiler += count;
    else sums.mutator += count;
  }
  return Object.fromEntries(Object.entries(sums).map(([k, v]) => [k, Math.round(v / requests / 1000)]));
}

async function underCallgrind(name, args, port, readyPath, extraEnv = {}) {
  const child = spawn(
    'valgrind',
    [
      '--tool=callgrind',
      '--instr-atstart=no',
      `--callgrind-out-file=${out}/${name}.%p`,
      process.execPath,
      ...args,
    ],
    { env: { ...env, ...extraEnv, PORT: String(port) }, stdio: 'ignore' },
  );
  for (let i = 0; i < 600; i += 1) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}${readyPath}`)).status < 500) return child;
    } catch {
      // not listening yet
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  child.kill('SIGKILL');
  throw new Error(`${name} did not start under valgrind`);
}

const load = (port, route, token, amount) =>
  new Promise((resolve, reject) =>
    autocannon(
      {
        url: `http://127.0.0.1:${port}${route}`,
        connections: 10,
        amount,
        headers: { authorization: `Bearer ${token}` },
      },
      (error, result) =>
        error ? reject(error) : result.non2xx > 0 ? reject(new Error(`${route}: non-2xx`)) : resolve(result),
    ),
  );

async function count(name, child, port, route, token) {
  const control = (...args) =>
    execFileSync('callgrind_control', [...args, String(child.pid)], {
      env: { ...process.env, ...valgrindEnv },
      stdio: 'pipe',
    });
  await load(port, route, token, WARMUP);
  control('-i', 'on');
  control('-z');
  const result = await load(port, route, token, REQUESTS);
  control('-d', `${name}${route.replaceAll('/', '_')}`);
  control('-i', 'off');
  await new Promise((resolve) => setTimeout(resolve, 1000));
  const dump = readdirSync(out)
    .filter((file) => file.startsWith(`${name.toLowerCase()}.${child.pid}.`))
    .sort((a, b) => Number(a.split('.').at(-1)) - Number(b.split('.').at(-1)))
    .at(-1);
  return split(join(out, dump), result.requests.total);
}

const admin = await mysql.createConnection({ uri: SERVER_URL });
await admin.query(`DROP DATABASE IF EXISTS \`${DB}\``);
await admin.query(`CREATE DATABASE \`${DB}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
const servers = [];
try {
  servers.push([
    'Gatehouse',
    await underCallgrind('gatehouse', [...APP_FLAGS, 'dist/src/main.js'], APP_PORT, '/health/ready'),
    APP_PORT,
  ]);
  const pool = await connect(env.DATABASE_URL);
  await seedUsers(pool, 1);
  await seedMeasuredUsers(pool, 200, 100);
  const sessions = new Map(await seedSessions(pool, [SMALL_USER_ID]));
  await pool.end();
  const token = await new AccessTokensService(new JwtService(), { getOrThrow: () => auth }).sign(
    SMALL_USER_ID,
    sessions.get(SMALL_USER_ID),
  );
  servers.push([
    'raw',
    await underCallgrind('raw', ['bench/raw-same-work.mjs'], RAW_PORT, '/api/v1/users/me', {
      JWT_ISSUER: auth.jwtIssuer,
      JWT_AUDIENCE: auth.jwtAudience,
    }),
    RAW_PORT,
  ]);
  console.log(
    `| route | server | k instructions per request | mutator | GC | compilers |\n| --- | --- | --- | --- | --- | --- |`,
  );
  for (const route of ROUTES) {
    for (const [name, child, port] of servers) {
      const k = await count(name, child, port, route, token);
      console.log(`| ${route} | ${name} | ${k.total} | ${k.mutator} | ${k.gc} | ${k.compiler} |`);
    }
  }
  console.log(`\nNode ${process.version}, ${REQUESTS} requests after ${WARMUP} of warm-up, 10 connections.`);
} finally {
  for (const [, child] of servers) child.kill('SIGKILL');
  await admin.query(`DROP DATABASE IF EXISTS \`${DB}\``);
  await admin.end();
  rmSync(out, { recursive: true, force: true });
}
