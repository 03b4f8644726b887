import { Redis } from 'ioredis';
import mysql from 'mysql2/promise';
import { AppProcess, sharedSecrets } from './support/app-process.js';
import { createThrowawayDatabase, type ThrowawayDatabase, usingMysql } from './support/database.js';
import { uniqueEmail } from './support/factories.js';
import { RoundRobinProxy } from './support/round-robin-proxy.js';
import { recipientsOf, SmtpCapture, tokenFrom } from './support/smtp-capture.js';

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
const onMysql = usingMysql() ? describe : describe.skip;
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
        expect(
          (await call(proxy.url, '/api/v1/auth/register', { body: { email, password: PASSWORD } })).status,
        ).toBe(202);
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
