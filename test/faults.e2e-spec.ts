import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import { AppProcess, sharedSecrets } from './support/app-process.js';
import { createThrowawayDatabase, type ThrowawayDatabase, usingMysql } from './support/database.js';
import { newUser, type SeededUser, uniqueEmail } from './support/factories.js';
import { classify, type Outcome } from './support/http-outcome.js';
import { RoundRobinProxy } from './support/round-robin-proxy.js';
import { recipientsOf, SmtpCapture, tokenFrom } from './support/smtp-capture.js';
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

// A test that fails halfway leaves the apps it started running; they must not outlive the file.
afterAll(() => AppProcess.killAll());

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

// A real process and a real signal; MySQL so that a second instance can finish the mail on the same
// database (SQLite is one process's file).
onMysql('graceful shutdown (the built app, production mode, SIGTERM)', () => {
  let database: ThrowawayDatabase;
  let capture: SmtpCapture;

  beforeAll(async () => {
    database = await createThrowawayDatabase();
    capture = await SmtpCapture.start();
  });

  afterAll(async () => {
    await capture.stop();
    await database.drop();
  });

  it('refuses new connections, answers every request in flight, releases unsent mail, and a second instance sends each mail exactly once', async () => {
    const env = {
      ...sharedSecrets(),
      DATABASE_URL: database.url,
      MAIL_URL: capture.url,
      MAIL_POLL_INTERVAL: '100ms',
      SHUTDOWN_GRACE: '5s',
      AUTH_THROTTLE_IP_LIMIT: '100000',
    };
    const t0 = Date.now();
    const phase: string[] = [];
    const mark = (name: string) => phase.push(`${name} ${Date.now() - t0}`);
    const first = await AppProcess.start(env);
    mark('booted');
    // A slow SMTP server (each reply 150 ms late): the outbox drain is still running at SIGTERM.
    capture.setReplyDelay(150);
    // The burst: 6 clients in a loop until the process is gone, half on kept-alive connections (as a
    // balancer holds them), half on a new connection each; a large body (the OpenAPI document), a slow
    // one (a login spends a bcrypt comparison) and the cheapest route.
    const outcomes: Outcome[] = [];
    let exited = false;
    const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 3 });
    const clients = Array.from({ length: 6 }, async (_, c) => {
      for (let i = 0; !exited; i++) {
        const kind = (c + i) % 3;
        const outcome = await classify(
          first.url,
          kind === 0 ? '/docs/openapi.json' : kind === 1 ? '/api/v1/auth/login' : '/health/live',
          c % 2 === 0 ? keepAlive : false,
          kind === 1 ? { email: uniqueEmail('burst'), password: 'not the right one at all' } : undefined,
          () => first.now(),
        );
        outcomes.push({
          ...outcome,
          what: `client ${c} (${c % 2 === 0 ? 'kept alive' : 'new connection'}), route ${kind}`,
        });
        if (outcome.kind === 'refused') {
          await new Promise((resolve) => setTimeout(resolve, 20));
        }
      }
    });
    const MAILS = 15;
    const emails = Array.from({ length: MAILS }, (_, i) => uniqueEmail(`drain${i}`));
    const db = await mysql.createConnection({ uri: database.url });
    const registered = await Promise.all(
      emails.map((email) =>
        fetch(`${first.url}/api/v1/auth/register`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ email, password: 'violet kettle drifts at noon' }),
        }).then((res) => res.status),
      ),
    );
    expect(registered).toEqual(Array(MAILS).fill(202));
    mark('registered');
    // SIGTERM while the worker holds more claimed rows than it sends at once (5): some are being sent,
    // at least one is not started yet.
    const claimed = async () => {
      const [[row]] = await db.query<mysql.RowDataPacket[]>(
        "SELECT COUNT(*) AS n FROM mail_outbox WHERE status = 'pending' AND locked_by IS NOT NULL",
      );
      return Number(row.n);
    };
    for (const deadline = Date.now() + 15_000; (await claimed()) < 6;) {
      expect(Date.now()).toBeLessThan(deadline);
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    mark('claimed');
    const sigtermAt = first.now();
    const exit = await first.stop('SIGTERM');
    exited = true;
    await Promise.all(clients);
    keepAlive.destroy();

    // Exit 0 (the shutdown hooks ran and the logs were flushed), well within the grace.
    expect({ code: exit.code, signal: exit.signal }).toEqual({ code: 0, signal: null });
    const after = outcomes.filter((o) => o.endedAt >= sigtermAt);
    // Never a reset during an answer, nor on a kept-alive connection (a request on one is answered in
    // full, with Connection: close). A new connection still in the kernel's accept queue when the
    // listener closes is reset before the app ever reads it: that is a refusal in all but the errno
    // (the request was not seen; safe to retry), so it counts as one, and only after the signal.
    const midBody = outcomes.filter((o) => o.kind === 'reset-mid-body');
    const resets = outcomes.filter((o) => o.kind === 'reset-before-response');
    expect(midBody).toEqual([]);
    expect(resets.filter((o) => o.what?.includes('kept alive'))).toEqual([]);
    expect(resets.filter((o) => o.endedAt < sigtermAt)).toEqual([]);
    expect(outcomes.filter((o) => o.kind === 'complete' && o.status >= 500)).toEqual([]);
    const refused = after.filter((o) => o.kind === 'refused' || o.kind === 'reset-before-response');
    expect(refused.length).toBeGreaterThan(0);
    // Requests started before the signal and still running at it got their answer.
    const inFlight = outcomes.filter((o) => o.startedAt < sigtermAt && o.endedAt > sigtermAt);
    expect(inFlight.length).toBeGreaterThan(0);
    expect(inFlight.every((o) => o.kind === 'complete')).toBe(true);
    // The listener closed at once: refused while the process was still finishing its work.
    const firstRefusal = Math.min(...refused.map((o) => o.endedAt)) - sigtermAt;
    const lastAnswer =
      Math.max(...after.filter((o) => o.kind === 'complete').map((o) => o.endedAt)) - sigtermAt;
    expect(firstRefusal).toBeLessThan(exit.at - sigtermAt);
    const stopping = first.logged(/^Stopping: new connections are refused/);
    const httpClosed = first.logged(/^HTTP server closed after \d+ ms: every request answered/);
    const stopped = first.logged(/^Stopped \d+ ms after SIGTERM/);
    expect([stopping.length, httpClosed.length, stopped.length]).toEqual([1, 1, 1]);
    expect(first.lines.filter((l) => l.json.notJson)).toEqual([]);

    // Nothing is left claimed by the stopped instance: sent, or released with the attempt un-counted.
    const [rowsAtExit] = await db.query<mysql.RowDataPacket[]>(
      'SELECT id, status, attempts, locked_by FROM mail_outbox ORDER BY id',
    );
    expect(rowsAtExit).toHaveLength(MAILS);
    expect(rowsAtExit.filter((r) => r.locked_by !== null)).toEqual([]);
    const sentByFirst = rowsAtExit.filter((r) => r.status === 'sent').length;
    const released = first.logged(/released: not attempted: the instance is stopping/).length;
    expect(released).toBeGreaterThan(0);
    expect(sentByFirst).toBe(capture.messages.length);

    // A second instance finishes the drain: every address gets its mail exactly once.
    capture.setReplyDelay(0);
    mark('exited');
    const second = await AppProcess.start(env);
    mark('second booted');
    try {
      await capture.waitForCount(MAILS, 15_000);
      await new Promise((resolve) => setTimeout(resolve, 300));
      const [rows] = await db.query<mysql.RowDataPacket[]>('SELECT status, attempts FROM mail_outbox');
      expect(rows.map((r) => `${r.status}/${r.attempts}`)).toEqual(Array(MAILS).fill('sent/1'));
      const delivered = capture.messages.flatMap(recipientsOf).sort();
      expect(delivered).toEqual([...emails].map((e) => e.toLowerCase()).sort());
      expect(capture.abandoned).toBe(0);
    } finally {
      await second.stop();
      await db.end();
    }

    const counts = (kind: Outcome['kind']) => outcomes.filter((o) => o.kind === kind).length;
    process.stdout.write(
      `shutdown: SIGTERM -> first refusal ${firstRefusal} ms, last answer ${lastAnswer} ms, exit ${exit.at - sigtermAt} ms ` +
        `(code ${exit.code}); ${inFlight.length} requests in flight at SIGTERM all answered; ` +
        `${counts('complete')} complete, ${counts('refused')} refused + ${resets.length} reset in the accept queue, 0 mid-body; mail: ${sentByFirst} sent before exit, ` +
        `${released} released, ${MAILS - sentByFirst} sent by the second instance, each once (${phase.join(', ')} ms)\n`,
    );
  }, 90_000);
});

const PASSWORD = 'violet kettle drifts at noon';
/**
 * A Redis database index of this test's own, emptied first: the other suites share index 0, and the
 * throttle counters are keyed by client IP, which is 127.0.0.1 for every test.
 */
const REDIS_DB = 9;

interface Answer {
  status: number;
  body: any;
  backend: string | null;
}

interface User {
  email: string;
  access: string;
  refresh: string;
}

// Two real processes on one MySQL database (SQLite is one process's file) and one Redis.
onMysql('two instances behind a round-robin proxy (MySQL + Redis)', () => {
  let database: ThrowawayDatabase;
  let capture: SmtpCapture;
  const instances: AppProcess[] = [];
  let proxy: RoundRobinProxy;
  let db: mysql.Connection;
  const answers: Answer[] = [];

  async function call(
    base: string,
    path: string,
    options: { method?: string; body?: unknown; token?: string } = {},
  ): Promise<Answer> {
    const headers: Record<string, string> = {};
    if (options.body !== undefined) {
      headers['content-type'] = 'application/json';
    }
    if (options.token) {
      headers.authorization = `Bearer ${options.token}`;
    }
    const res = await fetch(`${base}${path}`, {
      method: options.method ?? (options.body === undefined ? 'GET' : 'POST'),
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
    });
    const text = await res.text();
    const body: unknown =
      text && (res.headers.get('content-type') ?? '').includes('json') ? JSON.parse(text) : text;
    const answer = { status: res.status, body, backend: res.headers.get('x-backend') };
    answers.push(answer);
    return answer;
  }

  beforeAll(async () => {
    const redisUrl = new URL(process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379');
    redisUrl.pathname = `/${REDIS_DB}`;
    const redis = new Redis(redisUrl.toString());
    await redis.flushdb();
    redis.disconnect();
    database = await createThrowawayDatabase();
    capture = await SmtpCapture.start();
    const env = {
      ...sharedSecrets(),
      DATABASE_URL: database.url,
      REDIS_URL: redisUrl.toString(),
      MAIL_URL: capture.url,
      MAIL_POLL_INTERVAL: '50ms',
      AUTH_THROTTLE_IP_LIMIT: '1000',
      AUTH_THROTTLE_EMAIL_LIMIT: '5',
      AUTH_LOCKOUT_THRESHOLD: '3',
      REFRESH_GRACE: '0',
    };
    // One after the other: the first migrates the fresh database.
    instances.push(await AppProcess.start(env));
    instances.push(await AppProcess.start(env));
    proxy = await RoundRobinProxy.start(instances.map((i) => i.url));
    db = await mysql.createConnection({ uri: database.url });
  }, 90_000);

  afterAll(async () => {
    await db?.end();
    await proxy?.stop();
    await Promise.all(instances.map((i) => i.stop()));
    await capture?.stop();
    await database?.drop();
  });

  it('shares throttles, lockouts, revocations and refresh-reuse detection, and mails each message once, with zero 5xx', async () => {
    const started = Date.now();
    const [a, b] = instances.map((i) => i.url);

    // Sign-up through the proxy, every step possibly on the other instance than the one before.
    const USERS = 6;
    const users: User[] = await Promise.all(
      Array.from({ length: USERS }, async (_, i) => {
        const email = uniqueEmail(`scale${i}`);
        const registered = await call(proxy.url, '/api/v1/auth/register', {
          body: { email, password: PASSWORD },
        });
        expect({
          status: registered.status,
          body: registered.status === 202 ? 'ok' : registered.body,
        }).toEqual({
          status: 202,
          body: 'ok',
        });
        const mail = await capture.waitFor((m) => recipientsOf(m).includes(email), 15_000);
        const verified = await call(proxy.url, '/api/v1/auth/verify-email', {
          body: { token: tokenFrom(mail) },
        });
        expect(verified.status).toBe(200);
        const login = await call(proxy.url, '/api/v1/auth/login', { body: { email, password: PASSWORD } });
        expect(login.status).toBe(200);
        return { email, access: login.body.accessToken, refresh: login.body.refreshToken };
      }),
    );

    // Mixed load: each user creates, lists (what one instance wrote, the other lists), refreshes.
    await Promise.all(
      users.map(async (user) => {
        const ids: number[] = [];
        for (let round = 0; round < 3; round++) {
          const created = await call(proxy.url, '/api/v1/todos', {
            body: { title: `r${round}` },
            token: user.access,
          });
          expect(created.status).toBe(201);
          ids.push(created.body.id);
          const list = await call(proxy.url, '/api/v1/todos?limit=100', { token: user.access });
          expect(list.status).toBe(200);
          expect(list.body.items.map((t: { id: number }) => t.id).sort()).toEqual([...ids].sort());
          const refreshed = await call(proxy.url, '/api/v1/auth/refresh', {
            body: { refreshToken: user.refresh },
          });
          expect(refreshed.status).toBe(200);
          user.access = refreshed.body.accessToken;
          user.refresh = refreshed.body.refreshToken;
          expect((await call(proxy.url, '/api/v1/users/me', { token: user.access })).status).toBe(200);
        }
      }),
    );

    // A throttle counts across both: 5 requests naming one address pass, the 6th is refused, wherever
    // it lands (in-memory counters would let 5 through on each instance).
    const named = uniqueEmail('throttled');
    const forgot: Answer[] = [];
    for (let i = 0; i < 6; i++) {
      forgot.push(await call(proxy.url, '/api/v1/auth/forgot-password', { body: { email: named } }));
    }
    expect(forgot.map((f) => f.status)).toEqual([202, 202, 202, 202, 202, 429]);
    expect(forgot[5].body.code).toBe('RATE_LIMITED');
    expect(new Set(forgot.map((f) => f.backend))).toEqual(new Set(['0', '1']));

    // A lockout counts across both: 3 wrong passwords on alternating instances lock this client out,
    // and the right password is refused on either.
    const victim = users[0];
    for (const base of [a, b, a]) {
      const wrong = await call(base, '/api/v1/auth/login', {
        body: { email: victim.email, password: 'not the password at all' },
      });
      expect(wrong.status).toBe(401);
    }
    const lockedOut = await call(b, '/api/v1/auth/login', {
      body: { email: victim.email, password: PASSWORD },
    });
    expect({ status: lockedOut.status, code: lockedOut.body.code }).toEqual({
      status: 429,
      code: 'ACCOUNT_LOCKED',
    });
    const [lockRows] = await db.query<mysql.RowDataPacket[]>(
      "SELECT COUNT(*) AS n FROM audit_events WHERE event = 'auth.locked' AND user_id = (SELECT id FROM users WHERE email = ?)",
      [victim.email],
    );
    expect(Number(lockRows[0].n)).toBe(1);

    // A logout on one instance kills the token on the other at once.
    const leaver = users[1];
    expect((await call(a, '/api/v1/users/me', { token: leaver.access })).status).toBe(200);
    expect((await call(b, '/api/v1/auth/logout', { method: 'POST', token: leaver.access })).status).toBe(204);
    const afterLogout = await call(a, '/api/v1/users/me', { token: leaver.access });
    expect(afterLogout.status).toBe(401);

    // Refresh reuse is detected across instances: rotate on A, replay the old token on B; the session
    // is revoked, so the newest token dies too.
    const reuser = users[2];
    const rotated = await call(a, '/api/v1/auth/refresh', { body: { refreshToken: reuser.refresh } });
    expect(rotated.status).toBe(200);
    const replay = await call(b, '/api/v1/auth/refresh', { body: { refreshToken: reuser.refresh } });
    expect(replay.status).toBe(401);
    const newest = await call(a, '/api/v1/auth/refresh', {
      body: { refreshToken: rotated.body.refreshToken },
    });
    expect(newest.status).toBe(401);
    expect((await call(b, '/api/v1/users/me', { token: rotated.body.accessToken })).status).toBe(401);
    const [reuseRows] = await db.query<mysql.RowDataPacket[]>(
      "SELECT COUNT(*) AS n FROM audit_events WHERE event = 'auth.refresh_reused' AND user_id = (SELECT id FROM users WHERE email = ?)",
      [reuser.email],
    );
    expect(Number(reuseRows[0].n)).toBe(1);

    // Every mail exactly once: one verification per user (the unknown address got none), each row
    // sent on its first claim, though both workers polled every 50 ms.
    await capture.waitForCount(USERS, 10_000);
    await new Promise((resolve) => setTimeout(resolve, 300));
    const [rows] = await db.query<mysql.RowDataPacket[]>('SELECT status, attempts FROM mail_outbox');
    expect(rows.map((r) => `${r.status}/${r.attempts}`)).toEqual(Array(USERS).fill('sent/1'));
    const delivered = capture.messages.flatMap(recipientsOf).sort();
    expect(delivered).toEqual(users.map((u) => u.email.toLowerCase()).sort());

    expect(answers.filter((answer) => answer.status >= 500)).toEqual([]);
    expect(proxy.served.every((n) => n > 10)).toBe(true);
    const sentBy = instances.map((i) => i.logged(/^Mail #\d+ \(verify-email\) sent by /).length);
    process.stdout.write(
      `scale-out: ${answers.length} requests (proxy split ${proxy.served.join('/')}), 0 5xx; ` +
        `${USERS} mails sent once each (by instance: ${sentBy.join('/')}); ${Date.now() - started} ms\n`,
    );
  }, 90_000);
});
