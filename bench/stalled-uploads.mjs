// Stalled uploads (not in CI): STALL_CLIENTS connections each send the headers and all but 1,000 bytes
// of a 100,000-byte body to POST /api/v1/todos (no token: the body is read before authentication),
// then stall; when the app has closed them all, the next wave comes. With STALL_KIND=unread they
// instead pipeline STALL_PIPELINE requests for STALL_PATH (default /docs/openapi.json) in one write
// and never read an answer; a wave then lasts until the app has dropped them all
// (gatehouse_connections_dropped_total) or STALL_SECONDS have passed. Samples the app's RSS, external
// memory and how fast /health/live answers every second, and prints a Markdown table per wave: the
// peak and end RSS, the answers and when the last came. Production settings and the image's Node flags
// (app-env.mjs), its own MySQL database.
//
//   npm run build && node bench/stalled-uploads.mjs
//   STALL_CLIENTS=1500 STALL_TIMEOUT=10s node bench/stalled-uploads.mjs
//   STALL_KIND=unread STALL_CLIENTS=4 STALL_PIPELINE=3000 STALL_WAVES=1 node bench/stalled-uploads.mjs
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
const UNREAD = process.env.STALL_KIND === 'unread';
const PIPELINE = Number(process.env.STALL_PIPELINE ?? 100);
const PATH = process.env.STALL_PATH ?? '/docs/openapi.json';
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

/** What one client writes before it waits: most of an upload, or a pipelined batch it will not read. */
function stalledRequest() {
  return UNREAD
    ? `GET ${PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`.repeat(PIPELINE)
    : `POST /api/v1/todos HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n` +
        `Content-Length: ${BODY}\r\n\r\n{"title":"${'x'.repeat(SENT - 11)}`;
}

/** One client that writes its stalled request and waits; resolves with its answer. */
function stall(started, index, sockets) {
  return new Promise((resolve) => {
    const socket = net.connect({ port: PORT, host: '127.0.0.1', localAddress: sourceAddress(index) });
    sockets.push(socket);
    if (UNREAD) {
      socket.pause();
    }
    let status = 'none';
    socket.on('data', (chunk) => {
      status = /^HTTP\/1\.1 (\d{3})/.exec(chunk.toString('latin1'))?.[1] ?? status;
    });
    socket.on('error', () => undefined);
    socket.on('close', () => resolve({ status, at: (performance.now() - started) / 1000 }));
    socket.on('connect', () => socket.write(stalledRequest()));
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
/** The second of the wave at which the app was found gone (out of memory, on the builds before 2026-12-07). */
let died;

/**
 * The V8 heap's used size and the external memory (buffers), in MB, and the connections the app has
 * dropped for pipelining or unread answers (0 on a build without that metric), from its /metrics.
 */
async function heap() {
  const text = await fetch(`http://127.0.0.1:${PORT}/metrics`, {
    headers: { authorization: `Bearer ${env.METRICS_TOKEN}` },
  }).then((r) => r.text());
  const gauge = (metric) =>
    Number(new RegExp(`^${metric} ([0-9.e+]+)$`, 'm').exec(text)?.[1] ?? NaN) / 2 ** 20;
  const dropped = [...text.matchAll(/^gatehouse_connections_dropped_total\{[^}]*\} (\d+)$/gm)].reduce(
    (sum, [, count]) => sum + Number(count),
    0,
  );
  return {
    used: gauge('nodejs_heap_size_used_bytes'),
    external: gauge('nodejs_external_memory_bytes'),
    dropped,
  };
}

/**
 * One wave: CLIENTS stalled clients, sampled every second until they are all closed (unread: dropped by
 * the app) and 5 s more. A client that does not read cannot see its connection close.
 */
async function wave() {
  const started = performance.now();
  const droppedBefore = (await heap()).dropped;
  const clients = [];
  const sockets = [];
  for (let i = 0; i < CLIENTS; i += 1) {
    clients.push(stall(started, i, sockets));
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
    let sample;
    try {
      sample = { s, rss: rssMb(app.pid), live, liveMs, ...(await heap()) };
    } catch (error) {
      // A process that has just died is still in /proc, without its memory, until it is reaped.
      await Promise.race([exited, sleep(2000)]);
      if (app.exitCode === null && app.signalCode === null) throw error;
      died = s;
      break;
    }
    if (UNREAD) {
      open = CLIENTS - (sample.dropped - droppedBefore);
    }
    samples.push({ ...sample, open });
    quiet = open === 0 ? quiet + 1 : 0;
  }
  for (const socket of sockets) socket.destroy();
  await Promise.all(clients);
  return { samples, answers, dropped: (samples.at(-1)?.dropped ?? droppedBefore) - droppedBefore };
}

/** When the last client was closed: its answer's time, or (unread) the first sample with none left. */
function closedAt(samples, answers) {
  if (UNREAD) {
    const s = samples.find((x) => x.open === 0)?.s;
    return s === undefined ? 'never' : `by ${s} s`;
  }
  return answers.length ? `${Math.max(...answers.map((x) => x.at)).toFixed(1)} s` : '—';
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
  const what = UNREAD
    ? `Each client pipelined ${PIPELINE} × \`GET ${PATH}\` in one write from one of ${SOURCES} loopback addresses and read nothing.`
    : `Each client sent ${SENT.toLocaleString('en')} of ${BODY.toLocaleString('en')} bytes to POST /api/v1/todos ` +
      `from one of ${SOURCES} loopback addresses, no token, and stalled; a wave starts when the last one is closed.`;
  const lines = [
    `# ${UNREAD ? 'Unread answers' : 'Stalled uploads'}: ${WAVES} × ${CLIENTS}, REQUEST_TIMEOUT ${process.env.STALL_TIMEOUT ?? 'default (30s)'} (${new Date().toISOString()})`,
    '',
    `Node ${process.version}, flags \`${flags.join(' ')}\`, MALLOC_ARENA_MAX=${env.MALLOC_ARENA_MAX ?? 'unset'}. ${what}`,
    '',
    `Before: RSS ${before.rss.toFixed(0)} MB, heap ${before.used.toFixed(0)} MB, external ${before.external.toFixed(0)} MB.`,
    '',
    '| wave | peak RSS MB (at s) | RSS at the end | external MB, peak → end | answers | last closed at | /health/live |',
    '| ---: | ---: | ---: | ---: | --- | ---: | --- |',
  ];
  for (let w = 1; w <= WAVES; w += 1) {
    log(`wave ${w}: opening ${CLIENTS} stalled ${UNREAD ? 'readers' : 'uploads'}`);
    const { samples, answers, dropped } = await wave();
    if (died !== undefined) {
      const last = samples.at(-1);
      lines.push(
        `| ${w} | ${last ? `${last.rss.toFixed(0)} (${last.s})` : '—'} | **the app died** (second ${died}; its stderr says why) | | | | |`,
      );
      break;
    }
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
        `${UNREAD ? `${dropped} dropped by the app` : answered || 'none'}${!UNREAD && stillOpen ? `, ${stillOpen} still open` : ''} | ` +
        `${closedAt(samples, answers)} | ` +
        `${samples.filter((x) => x.live === 200).length} of ${samples.length} × 200, slowest ${Math.max(...samples.map((x) => x.liveMs)).toFixed(0)} ms |`,
    );
  }
  process.stdout.write(`${lines.join('\n')}\n`);
} finally {
  if (died === undefined) app.kill('SIGTERM');
  await exited;
  await withAdmin(server, (admin) => admin.query(`DROP DATABASE IF EXISTS \`${name}\``));
}
