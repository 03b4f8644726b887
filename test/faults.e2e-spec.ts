import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { usingMysql } from './support/database.js';
import { newUser, type SeededUser, uniqueEmail } from './support/factories.js';
import { TcpProxy } from './support/tcp-proxy.js';
import { type ApiResponse, TestApp } from './support/test-app.js';

const TODOS = '/api/v1/todos';

/** Polls until `check` passes; how long it took, in ms. */
async function timeUntil(check: () => Promise<boolean>, timeoutMs: number): Promise<number> {
  const started = Date.now();
  while (Date.now() - started < timeoutMs) {
    if (await check()) {
      return Date.now() - started;
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(`not within ${timeoutMs} ms`);
}

async function timed(run: () => Promise<ApiResponse>): Promise<{ res: ApiResponse; ms: number }> {
  const started = Date.now();
  const res = await run();
  return { res, ms: Date.now() - started };
}

function expectDependencyUnavailable({ res, ms }: { res: ApiResponse; ms: number }): void {
  expect({ status: res.status, code: res.body?.code }).toEqual({
    status: 503,
    code: 'DEPENDENCY_UNAVAILABLE',
  });
  expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
  expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
  expect(ms).toBeLessThan(2000);
}

// The database goes away through a TCP proxy between the app and the server; SQLite is a file in the
// process and cannot be cut this way (its loss is a disk failure, not a network one).
const onMysql = usingMysql() ? describe : describe.skip;
onMysql('database loss and return (MySQL through a proxy the test cuts)', () => {
  let t: TestApp;
  let proxy: TcpProxy;
  let user: SeededUser;

  beforeAll(async () => {
    proxy = await TcpProxy.start('127.0.0.1', 3306);
    const port = proxy.port;
    t = await TestApp.start({}, [], {
      mapDatabaseUrl: (url) => {
        const u = new URL(url);
        u.hostname = '127.0.0.1';
        u.port = String(port);
        return u.toString();
      },
    });
    user = await newUser(t);
  });

  afterAll(async () => {
    await proxy.stop();
    await t.close();
  });

  it('answers 503 DEPENDENCY_UNAVAILABLE within 2 s while cut (never 401 or 500), serves live and metrics, and recovers within 5 s', async () => {
    // A steady writer across the whole outage: every 2xx it gets must be in the database afterwards.
    const writes: { status: number; id?: number }[] = [];
    let writing = true;
    const writer = (async () => {
      for (let i = 0; writing; i++) {
        const res = await t.request(TODOS, {
          method: 'POST',
          token: user.accessToken,
          body: { title: `w${i}` },
        });
        writes.push({ status: res.status, id: res.body?.id });
        await new Promise((resolve) => setTimeout(resolve, 40));
      }
    })();
    await new Promise((resolve) => setTimeout(resolve, 300));

    await proxy.cut();
    const cutAt = Date.now();

    const read = await timed(() => t.request(TODOS, { token: user.accessToken }));
    expectDependencyUnavailable(read);
    expectDependencyUnavailable(
      await timed(() =>
        t.request(TODOS, { method: 'POST', token: user.accessToken, body: { title: 'cut' } }),
      ),
    );
    expectDependencyUnavailable(
      await timed(() =>
        t.request('/api/v1/auth/login', {
          method: 'POST',
          body: { email: uniqueEmail('cut'), password: 'violet kettle drifts at noon' },
        }),
      ),
    );
    // Several in parallel, as a busy client would send them: still 503 and quick, never a 401.
    const burst = await Promise.all(
      Array.from({ length: 8 }, () => timed(() => t.request(TODOS, { token: user.accessToken }))),
    );
    burst.forEach(expectDependencyUnavailable);

    expect((await t.request('/health/live')).status).toBe(200);
    const ready = await t.request('/health/ready');
    expect(ready.status).toBe(503);
    expect(ready.body).toMatchObject({ code: 'NOT_READY', errors: [{ field: 'database', message: 'down' }] });
    await t.request('/health/ready');
    const downLines = t.logs.filter((line) => line.includes('"Dependency down"'));
    expect(downLines).toHaveLength(1);
    expect(JSON.parse(downLines[0])).toMatchObject({ dependency: 'database', cause: expect.any(String) });
    expect(t.logs.join('')).not.toContain('App Exception');

    const metrics = await timed(() => t.request('/metrics'));
    expect(metrics.res.status).toBe(200);
    expect(metrics.ms).toBeLessThan(2000);
    expect(metrics.res.text).toMatch(/^gatehouse_database_up 0$/m);
    expect(metrics.res.text).not.toMatch(/^gatehouse_mail_outbox_messages\{/m);
    expect(metrics.res.text).toMatch(/^gatehouse_http_request_duration_seconds_count\{/m);
    const outageMs = Date.now() - cutAt;

    await proxy.restore();
    const recoveryMs = await timeUntil(
      async () => (await t.request(TODOS, { token: user.accessToken })).status === 200,
      5000,
    );
    expect((await t.request('/health/ready')).status).toBe(200);
    expect((await t.request('/metrics')).text).toMatch(/^gatehouse_database_up 1$/m);
    expect(t.logs.some((line) => line.includes('"Dependency back"'))).toBe(true);
    await new Promise((resolve) => setTimeout(resolve, 300));
    writing = false;
    await writer;

    const slowest = Math.max(read.ms, ...burst.map((b) => b.ms));
    process.stdout.write(
      `faults: 503 within ${slowest} ms during a ${outageMs} ms cut; recovered ${recoveryMs} ms after restore\n`,
    );

    expect(writes.filter((w) => w.status !== 201 && w.status !== 503)).toEqual([]);
    expect(writes.some((w) => w.status === 503)).toBe(true);
    const acknowledged = writes.filter((w) => w.status === 201).map((w) => Number(w.id));
    expect(acknowledged.length).toBeGreaterThan(1);
    const rows: { id: number }[] = await t.dataSource.query(
      `SELECT id FROM todos WHERE id IN (${acknowledged.map(() => '?').join(',')})`,
      acknowledged,
    );
    expect(rows.map((r) => Number(r.id)).sort((a, b) => a - b)).toEqual(acknowledged.sort((a, b) => a - b));
  });
});

describe('boot without a database (the built app, production mode)', () => {
  it('logs JSON within 2 s saying what it waits for, retries with backoff, then one JSON error and exit 1', async () => {
    const lines: { at: number; text: string }[] = [];
    const started = Date.now();
    const app = spawn(process.execPath, [join(process.cwd(), 'dist/src/main.js')], {
      cwd: mkdtempSync(join(tmpdir(), 'gatehouse-boot-')),
      env: {
        PATH: process.env.PATH,
        NODE_ENV: 'production',
        HOST: '127.0.0.1',
        PORT: '0',
        // Nothing listens on 4299: every attempt is refused.
        DATABASE_URL: 'mysql://root@127.0.0.1:4299/x',
        // Long enough for several attempts even when loading the app's modules (seconds on a busy CI
        // host, overlapping the first backoff) delays the second one.
        DB_CONNECT_DEADLINE: '6s',
        APP_PUBLIC_URL: 'https://gatehouse.example',
        JWT_SECRET: randomBytes(48).toString('base64'),
        MAIL_URL: 'smtp://127.0.0.1:2525',
        MAIL_PAYLOAD_KEY: randomBytes(32).toString('base64'),
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    for (const stream of [app.stdout, app.stderr]) {
      createInterface({ input: stream }).on('line', (text) => lines.push({ at: Date.now() - started, text }));
    }
    const code = await new Promise<number | null>((resolve) => app.once('close', resolve));
    const elapsed = Date.now() - started;

    expect(code).toBe(1);
    const parsed = lines.map(
      ({ text }) => JSON.parse(text) as { msg: string; level: number; attempt?: number; retryInMs?: number },
    );
    expect(lines.length).toBeGreaterThanOrEqual(3);
    expect(lines[0].at).toBeLessThan(2000);
    expect(parsed[0].msg).toBe('Waiting for the database at 127.0.0.1:4299/x');
    const waits = parsed.filter((p) => p.msg.startsWith('Waiting for the database'));
    expect(waits.map((w) => w.attempt)).toEqual(waits.map((_, i) => i + 1));
    // Backoff doubles: 250 ms, then 500 ms.
    expect(waits.slice(0, 2).map((w) => w.retryInMs)).toEqual([250, 500]);
    const last = parsed.at(-1)!;
    expect(last.level).toBe(60);
    expect(last.msg).toMatch(
      /^The database at 127\.0\.0\.1:4299\/x did not accept a connection within 6000 ms/,
    );
    expect(elapsed).toBeGreaterThanOrEqual(6000);
    process.stdout.write(`faults: boot first line at ${lines[0].at} ms, exit 1 after ${elapsed} ms\n`);
  }, 30_000);
});

describe('Redis loss (REDIS_URL through a proxy the test cuts)', () => {
  let t: TestApp;
  let proxy: TcpProxy;

  beforeAll(async () => {
    proxy = await TcpProxy.start('127.0.0.1', 6379);
    t = await TestApp.start({ REDIS_URL: `redis://127.0.0.1:${proxy.port}` });
  });

  afterAll(async () => {
    await proxy.stop();
    await t.close();
  });

  it('stays ready with redis reported down, never answers 500 on a rate-limited route, and reports it back', async () => {
    const up = await t.request('/health/ready');
    expect(up.status).toBe(200);
    expect(up.body.details.redis).toEqual({ status: 'up' });

    await proxy.cut();
    const down = await t.request('/health/ready');
    expect(down.status).toBe(200);
    expect(down.body.details.redis).toEqual({ status: 'down' });
    expect(down.body.info.redis).toBeUndefined();
    const downLines = t.logs.filter((line) => line.includes('"Dependency down"'));
    expect(downLines.map((line) => JSON.parse(line).dependency)).toEqual(['redis']);

    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) {
      const res = await t.request('/api/v1/auth/login', {
        method: 'POST',
        body: { email: 'nobody-redis@example.test', password: 'violet kettle drifts at noon' },
      });
      statuses.push(res.status);
    }
    expect(statuses.filter((s) => s >= 500)).toEqual([]);
    // The limits still hold, counted in this process's memory.
    expect(statuses).toContain(429);

    await proxy.restore();
    const recoveryMs = await timeUntil(
      async () => (await t.request('/health/ready')).body?.details?.redis?.status === 'up',
      5000,
    );
    process.stdout.write(`faults: redis reported up again ${recoveryMs} ms after restore\n`);
  });
});
