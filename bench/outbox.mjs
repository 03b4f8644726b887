// Outbox bench: median enqueue cost over 1,000 enqueues, and the drain rate against a local SMTP sink.
//   npm run build && node bench/outbox.mjs                      (SQLite in a temp file)
//   npm run build && BENCH_DATABASE_URL=mysql://root@127.0.0.1:3306 node bench/outbox.mjs
// Runs the built app (dist), the same code `npm start` runs.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import mysql from 'mysql2/promise';
import { SMTPServer } from 'smtp-server';

const { createApp } = await import('../dist/src/app.factory.js');
const { validateConfig } = await import('../dist/src/config/config.module.js');
const { MailService } = await import('../dist/src/mail/mail.service.js');
const { OutboxWorker } = await import('../dist/src/mail/outbox.worker.js');

const N = Number(process.env.BENCH_MESSAGES ?? 1000);
const scratch = mkdtempSync(join(tmpdir(), 'gatehouse-bench-'));

let received = 0;
const smtp = new SMTPServer({
  authOptional: true,
  disabledCommands: ['STARTTLS', 'AUTH'],
  logger: false,
  onData(stream, _session, callback) {
    stream.on('data', () => undefined);
    stream.on('end', () => {
      received += 1;
      callback();
    });
  },
});
await new Promise((resolve) => smtp.listen(0, '127.0.0.1', resolve));
const smtpPort = smtp.server.address().port;

let databaseUrl = `sqlite:${join(scratch, 'bench.sqlite')}`;
let dropDatabase = async () => undefined;
if (process.env.BENCH_DATABASE_URL) {
  const url = new URL(process.env.BENCH_DATABASE_URL);
  url.pathname = '';
  const server = url.toString().replace(/\/$/, '');
  const name = `gatehouse_bench_${randomBytes(4).toString('hex')}`;
  const admin = await mysql.createConnection({ uri: server });
  await admin.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
  await admin.end();
  databaseUrl = `${server}/${name}`;
  dropDatabase = async () => {
    const c = await mysql.createConnection({ uri: server });
    await c.query(`DROP DATABASE \`${name}\``);
    await c.end();
  };
}

const config = await validateConfig({
  NODE_ENV: 'test',
  DATABASE_URL: databaseUrl,
  APP_PUBLIC_URL: 'http://gatehouse.bench',
  MAIL_URL: `smtp://127.0.0.1:${smtpPort}`,
  MAIL_POLL_INTERVAL: '1h', // parked: the bench drives the worker itself
  LOG_LEVEL: 'warn',
});
const app = await createApp({ config, logDestination: new Writable({ write: (_c, _e, cb) => cb() }) });
await app.init();
const mail = app.get(MailService);
const worker = app.get(OutboxWorker);

try {
  // Warm up JIT and the connection pool.
  for (let i = 0; i < 20; i += 1) {
    await mail.enqueue('verify-email', `warm-${i}@example.test`, {
      token: randomBytes(32).toString('base64url'),
    });
  }
  await worker.drainOnce();
  received = 0;

  const costs = [];
  for (let i = 0; i < N; i += 1) {
    const token = randomBytes(32).toString('base64url');
    const started = performance.now();
    await mail.enqueue('verify-email', `bench-${i}@example.test`, { token });
    costs.push(performance.now() - started);
  }
  costs.sort((a, b) => a - b);
  const pct = (p) => costs[Math.min(costs.length - 1, Math.floor((p / 100) * costs.length))];

  const started = performance.now();
  let handled = 0;
  while (handled < N) {
    handled += await worker.drainOnce();
  }
  const seconds = (performance.now() - started) / 1000;

  console.log(
    JSON.stringify(
      {
        database: databaseUrl.startsWith('sqlite:') ? 'sqlite' : 'mysql',
        messages: N,
        enqueueMs: { median: +pct(50).toFixed(3), p95: +pct(95).toFixed(3), p99: +pct(99).toFixed(3) },
        drain: { seconds: +seconds.toFixed(2), messagesPerSecond: Math.round(N / seconds), received },
      },
      null,
      2,
    ),
  );
} finally {
  await app.close();
  await dropDatabase();
  await new Promise((resolve) => smtp.close(resolve));
  rmSync(scratch, { recursive: true, force: true });
}
