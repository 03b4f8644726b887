import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { Redis } from 'ioredis';
import { User } from '../src/users/user.entity.js';
import { auditEvents, logIn, PASSWORD, signUp } from './support/accounts.js';
import { createThrowawayDatabase, type ThrowawayDatabase } from './support/database.js';
import { uniqueEmail } from './support/factories.js';
import { SmtpCapture } from './support/smtp-capture.js';
import { TcpProxy } from './support/tcp-proxy.js';
import { type ApiResponse, TestApp } from './support/test-app.js';

describe('password hashing', () => {
  let capture: SmtpCapture;

  beforeAll(async () => {
    capture = await SmtpCapture.start();
  });

  afterAll(async () => {
    await capture.stop();
  });

  it('re-hashes a password made at a lower cost on the next successful login', async () => {
    const database = await createThrowawayDatabase();
    const env = { MAIL_URL: capture.url, MAIL_POLL_INTERVAL: '50ms' };
    const cheap = await TestApp.start({ ...env, BCRYPT_COST: '4' }, [], { database });
    const account = await signUp(cheap, capture);
    await cheap.close();

    const stronger = await TestApp.start({ ...env, BCRYPT_COST: '5' }, [], { database });
    try {
      const hashOf = async () =>
        (
          await stronger.dataSource
            .getRepository(User)
            .createQueryBuilder('u')
            .addSelect('u.passwordHash')
            .where('u.id = :id', { id: account.id })
            .getOneOrFail()
        ).passwordHash;
      expect(await hashOf()).toMatch(/^\$2[ab]\$04\$/);
      await logIn(stronger, account);
      expect(await hashOf()).toMatch(/^\$2[ab]\$05\$/);
      await logIn(stronger, account);
      const logins = await auditEvents(stronger, { event: 'auth.login_succeeded', userId: account.id });
      expect(logins.map((e) => e.metadata?.rehashed ?? false)).toEqual([true, false]);
    } finally {
      await stronger.close();
      await database.drop();
    }
  });

  it('answers 503 AUTH_BUSY beyond the hashing queue and keeps serving other routes', async () => {
    const t = await TestApp.start({ BCRYPT_COST: '11', HASH_QUEUE_LIMIT: '2' });
    try {
      const started = Date.now();
      const logins = Promise.all(
        Array.from({ length: 12 }, () =>
          t.request('/api/v1/auth/login', {
            method: 'POST',
            body: { email: uniqueEmail('flood'), password: PASSWORD },
          }),
        ),
      );
      const live = await t.request('/health/live');
      const liveMs = Date.now() - started;
      const statuses = (await logins).map((r) => r.status);
      expect(statuses.filter((s) => s === 503).length).toBeGreaterThan(0);
      expect(statuses.every((s) => s === 401 || s === 503)).toBe(true);
      expect(live.status).toBe(200);
      expect(liveMs).toBeLessThan(1000);
      const busy = (await logins).find((r) => r.status === 503)!;
      expect(busy.body.code).toBe('AUTH_BUSY');
      expect(busy.headers.get('retry-after')).toBe('1');
    } finally {
      await t.close();
    }
  });
});

const redisUrl = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

async function requireRedis(): Promise<void> {
  const probe = new Redis(redisUrl, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await probe.connect(); // fails the suite, with the reason, when Redis is not running
  await probe.quit();
}

/** A window of 60-89 s: counters from earlier runs (same IP, same routes) cannot leak into this one. */
function freshWindow(): string {
  return `${60 + (randomBytes(1)[0] % 30)}s`;
}

const resend = (app: TestApp, email: string): Promise<ApiResponse> =>
  app.request('/api/v1/auth/resend-verification', { method: 'POST', body: { email } });

describe('rate limits shared through Redis', () => {
  const apps: TestApp[] = [];
  let database: ThrowawayDatabase;

  beforeAll(async () => {
    await requireRedis();
    const window = freshWindow();
    // Instances of one deployment share its database (where lockout counters live) and its Redis.
    database = await createThrowawayDatabase();
    for (let i = 0; i < 2; i += 1) {
      apps.push(
        await TestApp.start(
          {
            REDIS_URL: redisUrl,
            AUTH_THROTTLE_EMAIL_LIMIT: '3',
            AUTH_THROTTLE_WINDOW: window,
            AUTH_LOCKOUT_THRESHOLD: '2',
          },
          [],
          { database },
        ),
      );
    }
  });

  afterAll(async () => {
    for (const app of apps) {
      await app.close();
    }
    await database.drop();
  });

  it('counts one address across two app instances', async () => {
    const email = uniqueEmail('shared');
    const statuses = [];
    for (let i = 0; i < 4; i += 1) {
      const app = apps[i % 2];
      statuses.push(
        (await app.request('/api/v1/auth/resend-verification', { method: 'POST', body: { email } })).status,
      );
    }
    expect(statuses).toEqual([202, 202, 202, 429]);
  });

  it('locks an unknown address across two app instances (the lockout counts in the shared database)', async () => {
    const email = uniqueEmail('shared-lockout');
    const answers = [];
    for (let i = 0; i < 3; i += 1) {
      const res = await apps[i % 2].request('/api/v1/auth/login', {
        method: 'POST',
        body: { email, password: 'wrong wrong wrong' },
      });
      answers.push(`${res.status} ${res.body.code}`);
    }
    expect(answers).toEqual(['401 INVALID_CREDENTIALS', '401 INVALID_CREDENTIALS', '429 ACCOUNT_LOCKED']);
  });
});

describe('a Redis that goes away (REDIS_URL set)', () => {
  const unavailable = /Redis unavailable/g;
  const backAgain = /Redis is reachable again/g;
  // Nest's Logger is process-wide: every app's lines land in the newest app's log, so count across all.
  const mentions = (apps: TestApp[], pattern: RegExp) =>
    apps
      .map((app) => app.logs.join(''))
      .join('')
      .match(pattern)?.length ?? 0;

  it('boots and keeps limiting per process when nothing listens at REDIS_URL: no 500', async () => {
    const closedPort = await new Promise<number>((resolve) => {
      const server = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = server.address() as net.AddressInfo;
        server.close(() => resolve(port));
      });
    });
    const t = await TestApp.start({
      REDIS_URL: `redis://127.0.0.1:${closedPort}`,
      AUTH_THROTTLE_EMAIL_LIMIT: '2',
      AUTH_LOCKOUT_THRESHOLD: '1',
    });
    try {
      const email = uniqueEmail('no-redis');
      const statuses = [];
      for (let i = 0; i < 3; i += 1) {
        statuses.push((await resend(t, email)).status);
      }
      expect(statuses).toEqual([202, 202, 429]);
      const lockout = [];
      const unknown = uniqueEmail('no-redis-lockout');
      for (let i = 0; i < 2; i += 1) {
        const res = await t.request('/api/v1/auth/login', {
          method: 'POST',
          body: { email: unknown, password: 'wrong wrong wrong' },
        });
        lockout.push(`${res.status} ${res.body.code}`);
      }
      expect(lockout).toEqual(['401 INVALID_CREDENTIALS', '429 ACCOUNT_LOCKED']);
      // Said once, not once per reconnect attempt or per request.
      expect(mentions([t], unavailable)).toBe(1);
    } finally {
      await t.close();
    }
  });

  it('falls back to memory when Redis is cut, and shares counters again once it returns', async () => {
    await requireRedis();
    const target = new URL(redisUrl);
    const proxy = await TcpProxy.start(target.hostname, Number(target.port || 6379));
    const env = {
      REDIS_URL: `redis://127.0.0.1:${proxy.port}`,
      AUTH_THROTTLE_EMAIL_LIMIT: '3',
      AUTH_THROTTLE_WINDOW: freshWindow(),
    };
    const apps = [await TestApp.start(env), await TestApp.start(env)];
    const alternating = async (email: string) => {
      const statuses = [];
      for (let i = 0; i < 4; i += 1) {
        statuses.push((await resend(apps[i % 2], email)).status);
      }
      return statuses;
    };
    try {
      expect(await alternating(uniqueEmail('before-cut'))).toEqual([202, 202, 202, 429]);

      await proxy.cut();
      // Each instance counts alone: two hits each stay under the limit of 3, and nothing is a 500.
      expect(await alternating(uniqueEmail('during-cut'))).toEqual([202, 202, 202, 202]);
      const alone = uniqueEmail('during-cut-alone');
      const statuses = [];
      for (let i = 0; i < 4; i += 1) {
        statuses.push((await resend(apps[0], alone)).status);
      }
      expect(statuses).toEqual([202, 202, 202, 429]);
      // Once per instance, not once per reconnect attempt or per request.
      expect(mentions(apps, unavailable)).toBe(2);

      await proxy.restore();
      const deadline = Date.now() + 10_000;
      while (mentions(apps, backAgain) < 2 && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      expect(mentions(apps, backAgain)).toBe(2);
      expect(await alternating(uniqueEmail('after-restore'))).toEqual([202, 202, 202, 429]);
    } finally {
      for (const app of apps) {
        await app.close();
      }
      await proxy.stop();
    }
  });
});

describe('X-Forwarded-For and TRUST_PROXY', () => {
  const login = (t: TestApp, forwardedFor: string) =>
    t.request('/api/v1/auth/login', {
      method: 'POST',
      body: { email: uniqueEmail('proxy'), password: 'whatever it is' },
      headers: { 'x-forwarded-for': forwardedFor },
    });
  const lastFailureIp = async (t: TestApp) => {
    const rows = await auditEvents(t, { event: 'auth.login_failed' });
    return rows.at(-1)?.ip;
  };

  it('counts and records the forwarded client when TRUST_PROXY is true', async () => {
    const t = await TestApp.start({ TRUST_PROXY: 'true', AUTH_THROTTLE_IP_LIMIT: '2' });
    try {
      expect([(await login(t, '203.0.113.5')).status, (await login(t, '203.0.113.5')).status]).toEqual([
        401, 401,
      ]);
      expect(await lastFailureIp(t)).toBe('203.0.113.5');
      expect((await login(t, '203.0.113.5')).status).toBe(429);
      // Another client behind the same proxy has its own counter.
      expect((await login(t, '198.51.100.7')).status).toBe(401);
    } finally {
      await t.close();
    }
  });

  it('ignores the header from a client that is not a trusted proxy', async () => {
    const t = await TestApp.start({ TRUST_PROXY: '10.9.9.9', AUTH_THROTTLE_IP_LIMIT: '2' });
    try {
      await login(t, '203.0.113.5');
      expect(await lastFailureIp(t)).toBe('127.0.0.1');
      await login(t, '198.51.100.7');
      // Spoofed addresses do not buy a fresh counter: the caller is still 127.0.0.1.
      expect((await login(t, '192.0.2.1')).status).toBe(429);
    } finally {
      await t.close();
    }
  });
});
