// Stalled uploads (not in CI): STALL_CLIENTS connections each send the headers and all but 1,000 bytes
// of a 100,000-byte body to POST /api/v1/todos (no token: the body is read before authentication),
// then stall; when the app has closed them all, the next wave comes. Samples the app's RSS, external
// memory and how fast /health/live answers every second, and prints a Markdown table per wave: the
// peak and end RSS, the answers and when the last came. Production settings and the image's Node flags
// (app-env.mjs), its own MySQL database.
//
//   npm run build && node bench/stalled-uploads.mjs
//   STALL_CLIENTS=1500 STALL_TIMEOUT=10s node bench/stalled-uploads.mjs
//
// Environment: STALL_CLIENTS (default 900), STALL_SOURCES (how many addresses they come from, default
// one each), STALL_WAVES (one after another, default 3), STALL_TIMEOUT
// (the app's REQUEST_TIMEOUT, default its own), STALL_SECONDS (the most a wave is sampled, default
// 120), BENCH_MYSQL, BENCH_DB (default
// gatehouse_stalled, dropped and recreated), BENCH_APP_FLAGS (the app's Node flags, default the image's).
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { benchDatabase, nodeFlags, productionEnv, withAdmin } from './app-env.mjs';
import { rssMb } from './proc.mjs';

const CLIENTS = Number(process.env.STALL_CLIENTS ?? 900);
const SECONDS = Number(process.env.STALL_SECONDS ?? 120);
const WAVES = Number(process.env.STALL_WAVES ?? 3);
const SOURCES = Number(process.env.STALL_SOURCES ?? CLIENTS);
const PORT = 3970;
const BODY = 100_000;
const SENT = BODY - 1_000;
const { server, name, url } = benchDatabase('gatehouse_stalled');
const log = (line) => process.stderr.write(`[stalled ${new Date().toISOString().slice(11, 19)}] ${line}\n`);
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * The loopback address client `index` connects from: STALL_SOURCES addresses in 127.1.0.0/16 (Linux
 * routes all of 127/8 to the loopback), so the app sees that many clients, as it would a botnet.
 */
function sourceAddress(index) {
  const n = index % SOURCES;
  return `127.1.${Math.floor(n / 250)}.${(n % 250) + 1}`;
}

/** One client that sends all but the last 1,000 bytes of its body and waits; resolves with its answer. */
function stall(started, index) {
  return new Promise((resolve) => {
    const socket = net.connect({ port: PORT, host: '127.0.0.1', localAddress: sourceAddress(index) });
    let status = 'none';
    socket.on('data', (chunk) => {
      status = /^HTTP\/1\.1 (\d{3})/.exec(chunk.toString('latin1'))?.[1] ?? status;
    });
    socket.on('error', () => undefined);
    socket.on('close', () => resolve({ status, at: (performance.now() - started) / 1000 }));
    socket.on('connect', () => {
      socket.write(
        `POST /api/v1/todos HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
          `Content-Length: ${BODY}\r\n\r\n{"title":"${'x'.repeat(SENT - 11)}`,
      );
    });
  });
}

await withAdmin(server, async (admin) => {
  await admin.query(`DROP DATABASE IF EXISTS \`${name}\``);
  await admin.query(`CREATE DATABASE \`${name}\` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci`);
});
const env = {
  ...productionEnv({ databaseUrl: url, port: PORT }),
  METRICS_TOKEN: randomBytes(24).toString('base64url'),
};
if (process.env.STALL_TIMEOUT) {
  env.REQUEST_TIMEOUT = process.env.STALL_TIMEOUT;
}
const flags = nodeFlags(process.env.BENCH_APP_FLAGS);
const app = spawn(process.execPath, [...flags, 'dist/src/main.js'], {
  env,
  stdio: ['ignore', 'ignore', 'inherit'],
});
const exited = new Promise((resolve) => app.once('exit', resolve));

/** The V8 heap's used size and the external memory (buffers), in MB, from the app's /metrics. */
async function heap() {
  const text = await fetch(`http://127.0.0.1:${PORT}/metrics`, {
    headers: { authorization: `Bearer ${env.METRICS_TOKEN}` },
  }).then((r) => r.text());
  const gauge = (metric) =>
    Number(new RegExp(`^${metric} ([0-9.e+]+)$`, 'm').exec(text)?.[1] ?? NaN) / 2 ** 20;
  return { used: gauge('nodejs_heap_size_used_bytes'), external: gauge('nodejs_external_memory_bytes') };
}

/** One wave: CLIENTS stalled uploads, sampled every second until they are all closed and 5 s more. */
async function wave() {
  const started = performance.now();
  const clients = [];
  for (let i = 0; i < CLIENTS; i += 1) {
    clients.push(stall(started, i));
    if (i % 50 === 49) await sleep(50);
  }
  let open = CLIENTS;
  const answers = [];
  for (const client of clients) void client.then((answer) => (answers.push(answer), (open -= 1)));
  const samples = [];
  let quiet = 0;
  for (let s = 1; s <= SECONDS && quiet < 5; s += 1) {
    await sleep(1000);
    const asked = performance.now();
    const live = await fetch(`http://127.0.0.1:${PORT}/health/live`).then(
      (r) => r.status,
      () => 'refused',
    );
    const liveMs = performance.now() - asked;
    samples.push({ s, rss: rssMb(app.pid), open, live, liveMs, ...(await heap()) });
    quiet = open === 0 ? quiet + 1 : 0;
  }
  return { samples, answers };
}

try {
  for (let i = 0; ; i += 1) {
    if (i === 150) throw new Error('Gatehouse did not become ready');
    if (
      await fetch(`http://127.0.0.1:${PORT}/health/ready`).then(
        (r) => r.ok,
        () => false,
      )
    )
      break;
    await sleep(200);
  }
  await sleep(2000);
  const before = { rss: rssMb(app.pid), ...(await heap()) };
  const lines = [
    `# Stalled uploads: ${WAVES} × ${CLIENTS}, REQUEST_TIMEOUT ${process.env.STALL_TIMEOUT ?? 'default (30s)'} (${new Date().toISOString()})`,
    '',
    `Node ${process.version}, flags \`${flags.join(' ')}\`, MALLOC_ARENA_MAX=${env.MALLOC_ARENA_MAX ?? 'unset'}. ` +
      `Each client sent ${SENT.toLocaleString('en')} of ${BODY.toLocaleString('en')} bytes to POST /api/v1/todos ` +
      `from one of ${SOURCES} loopback addresses, ` +
      'no token, and stalled; a wave starts when the last one is closed.',
    '',
    `Before: RSS ${before.rss.toFixed(0)} MB, heap ${before.used.toFixed(0)} MB, external ${before.external.toFixed(0)} MB.`,
    '',
    '| wave | peak RSS MB (at s) | RSS at the end | external MB, peak → end | answers | last closed at | /health/live |',
    '| ---: | ---: | ---: | ---: | --- | ---: | --- |',
  ];
  for (let w = 1; w <= WAVES; w += 1) {
    log(`wave ${w}: opening ${CLIENTS} stalled uploads`);
    const { samples, answers } = await wave();
    const peak = samples.reduce((x, y) => (y.rss > x.rss ? y : x));
    const statuses = {};
    for (const { status } of answers) statuses[status] = (statuses[status] ?? 0) + 1;
    const answered = Object.entries(statuses)
      .map(([status, n]) => `${n} × ${status}`)
      .join(', ');
    const stillOpen = CLIENTS - answers.length;
    lines.push(
      `| ${w} | ${peak.rss.toFixed(0)} (${peak.s}) | ${samples.at(-1).rss.toFixed(0)} | ` +
        `${Math.max(...samples.map((x) => x.external)).toFixed(0)} → ${samples.at(-1).external.toFixed(0)} | ` +
        `${answered || 'none'}${stillOpen ? `, ${stillOpen} still open` : ''} | ` +
        `${answers.length ? `${Math.max(...answers.map((x) => x.at)).toFixed(1)} s` : '—'} | ` +
        `${samples.filter((x) => x.live === 200).length} of ${samples.length} × 200, slowest ${Math.max(...samples.map((x) => x.liveMs)).toFixed(0)} ms |`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
} finally {
  app.kill('SIGTERM');
  await exited;
  await withAdmin(server, (admin) => admin.query(`DROP DATABASE IF EXISTS \`${name}\``));
}
