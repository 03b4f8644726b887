import { MailService } from '../src/mail/mail.service.js';
import { OutboxMessage } from '../src/mail/outbox-message.entity.js';
import { MetricsService } from '../src/metrics/metrics.service.js';
import { usingMysql } from './support/database.js';
import { newUser, uniqueEmail } from './support/factories.js';
import { TestApp } from './support/test-app.js';

/** The value of one sample line (`name{labels} value`) in Prometheus text, or undefined. */
function sample(text: string, name: string, labels: Record<string, string> = {}): number | undefined {
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) {
      continue;
    }
    const match = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!match || match[1] !== name) {
      continue;
    }
    const given = Object.fromEntries(
      [...(match[2] ?? '').matchAll(/([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"/g)].map((m) => [m[1], m[2]]),
    );
    if (Object.entries(labels).every(([k, v]) => given[k] === v)) {
      return Number(match[3]);
    }
  }
  return undefined;
}

describe('/metrics', () => {
  describe('without METRICS_TOKEN', () => {
    let t: TestApp;

    beforeAll(async () => {
      t = await TestApp.start();
    });

    afterAll(async () => {
      await t.close();
    });

    it('is public, unprefixed Prometheus text with every named series', async () => {
      const res = await t.request('/metrics');
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
      for (const [name, type] of [
        ['gatehouse_http_request_duration_seconds', 'histogram'],
        ['gatehouse_login_attempts_total', 'counter'],
        ['gatehouse_throttle_hits_total', 'counter'],
        ['gatehouse_mail_outbox_messages', 'gauge'],
        ['gatehouse_db_pool_connections_in_use', 'gauge'],
        ['gatehouse_db_pool_waiting', 'gauge'],
        ['gatehouse_db_pool_acquire_seconds', 'histogram'],
        ['nodejs_eventloop_lag_p99_seconds', 'gauge'],
        ['process_cpu_user_seconds_total', 'counter'],
      ]) {
        expect(res.text).toContain(`# TYPE ${name} ${type}\n`);
      }
      expect(sample(res.text, 'gatehouse_login_attempts_total', { outcome: 'success' })).toBe(0);
      expect(sample(res.text, 'gatehouse_db_pool_connections_in_use')).toBeGreaterThanOrEqual(0);
      await expect(t.request('/api/v1/metrics')).resolves.toMatchObject({ status: 404 });
    });

    it('times requests by route template and status, never by raw URL', async () => {
      const unmatchedBefore =
        sample((await t.request('/metrics')).text, 'gatehouse_http_request_duration_seconds_count', {
          route: '(unmatched)',
          status: '404',
        }) ?? 0;
      const user = await newUser(t);
      for (const id of [424242, 434343]) {
        const res = await t.request(`/api/v1/todos/${id}`, { token: user.accessToken });
        expect(res.status).toBe(404);
      }
      await t.request('/api/v1/todos/1');
      await t.request('/no/such/route/31337');

      const text = (await t.request('/metrics')).text;
      const count = (route: string, status: string) =>
        sample(text, 'gatehouse_http_request_duration_seconds_count', { method: 'GET', route, status });
      expect(count('/api/v1/todos/:id', '404')).toBe(2);
      expect(count('/api/v1/todos/:id', '401')).toBe(1);
      expect(count('(unmatched)', '404')).toBe(unmatchedBefore + 1);
      expect(
        sample(text, 'gatehouse_http_request_duration_seconds_bucket', {
          route: '/api/v1/todos/:id',
          status: '404',
          le: '+Inf',
        }),
      ).toBe(2);
      expect(text).not.toContain('424242');
      expect(text).not.toContain('31337');
    });

    it('counts login outcomes and throttle hits reported through MetricsService', async () => {
      const metrics = t.app.get(MetricsService);
      metrics.loginAttempt('success');
      metrics.loginAttempt('invalid_credentials');
      metrics.loginAttempt('invalid_credentials');
      metrics.throttleHit('/api/v1/auth/login');
      const text = (await t.request('/metrics')).text;
      expect(sample(text, 'gatehouse_login_attempts_total', { outcome: 'success' })).toBe(1);
      expect(sample(text, 'gatehouse_login_attempts_total', { outcome: 'invalid_credentials' })).toBe(2);
      expect(sample(text, 'gatehouse_login_attempts_total', { outcome: 'locked' })).toBe(0);
      expect(sample(text, 'gatehouse_throttle_hits_total', { route: '/api/v1/auth/login' })).toBe(1);
    });

    it('reports the mail outbox backlog and dead letters', async () => {
      const recipient = uniqueEmail('dead');
      // Inserted dead, so the outbox worker never races the assertion.
      await t.dataSource.getRepository(OutboxMessage).insert({
        template: 'password-changed',
        recipient,
        payload: '{}',
        status: 'dead',
        attempts: 8,
        nextAttemptAt: new Date(),
      });
      const stats = await t.app.get(MailService).outboxStats();
      const text = (await t.request('/metrics')).text;
      expect(sample(text, 'gatehouse_mail_outbox_messages', { status: 'dead' })).toBe(stats.dead);
      expect(stats.dead).toBeGreaterThanOrEqual(1);
      expect(sample(text, 'gatehouse_mail_outbox_messages', { status: 'pending' })).toBe(stats.pending);
    });

    it('counts a database connection held by an open transaction as in use', async () => {
      const runner = t.dataSource.createQueryRunner();
      await runner.connect();
      await runner.startTransaction();
      try {
        await runner.query('SELECT 1');
        const text = (await t.request('/metrics')).text;
        expect(sample(text, 'gatehouse_db_pool_connections_in_use')).toBeGreaterThanOrEqual(1);
      } finally {
        await runner.rollbackTransaction();
        await runner.release();
      }
    });
  });

  // mysql2's pool: SQLite has one connection and no queue.
  (usingMysql() ? describe : describe.skip)('database pool wait (MySQL)', () => {
    let t: TestApp;

    beforeAll(async () => {
      t = await TestApp.start({ DB_POOL_SIZE: '2' });
    });

    afterAll(async () => {
      await t.close();
    });

    it('times every checkout, and shows a query queued for a connection and how long it waited', async () => {
      const user = await newUser(t);
      const before = (await t.request('/metrics')).text;
      const slowBefore =
        sample(before, 'gatehouse_db_pool_acquire_seconds_count')! -
        sample(before, 'gatehouse_db_pool_acquire_seconds_bucket', { le: '0.1' })!;
      // Both connections held elsewhere: the request's queries queue until one is released.
      const held = [t.dataSource.createQueryRunner(), t.dataSource.createQueryRunner()];
      await Promise.all(held.map((runner) => runner.connect()));
      const waiting = t.request('/api/v1/todos', { token: user.accessToken });
      await new Promise((resolve) => setTimeout(resolve, 150));
      // Read without a scrape: a scrape also reads the outbox, and would queue behind the held pair.
      const { registry } = t.app.get(MetricsService);
      const text = [
        await registry.getSingleMetricAsString('gatehouse_db_pool_waiting'),
        await registry.getSingleMetricAsString('gatehouse_db_pool_connections_in_use'),
      ].join('\n');
      expect(sample(text, 'gatehouse_db_pool_waiting')).toBeGreaterThanOrEqual(1);
      expect(sample(text, 'gatehouse_db_pool_connections_in_use')).toBe(2);
      await Promise.all(held.map((runner) => runner.release()));
      expect((await waiting).status).toBe(200);

      const after = (await t.request('/metrics')).text;
      expect(sample(after, 'gatehouse_db_pool_acquire_seconds_count')!).toBeGreaterThan(
        sample(before, 'gatehouse_db_pool_acquire_seconds_count')!,
      );
      const slowAfter =
        sample(after, 'gatehouse_db_pool_acquire_seconds_count')! -
        sample(after, 'gatehouse_db_pool_acquire_seconds_bucket', { le: '0.1' })!;
      expect(slowAfter).toBeGreaterThan(slowBefore);
      expect(sample(after, 'gatehouse_db_pool_waiting')).toBe(0);
    });
  });

  describe('with METRICS_TOKEN', () => {
    const token = 'metrics-scrape-token-for-the-e2e-suite';
    let t: TestApp;

    beforeAll(async () => {
      t = await TestApp.start({ METRICS_TOKEN: token });
    });

    afterAll(async () => {
      await t.close();
    });

    it('answers 401 without the bearer token or with a wrong one, and 200 with it', async () => {
      const missing = await t.request('/metrics');
      expect(missing.status).toBe(401);
      expect(missing.headers.get('content-type')).toMatch(/^application\/problem\+json/);
      expect(missing.body.code).toBe('UNAUTHENTICATED');
      expect(missing.headers.get('www-authenticate')).toContain('Bearer');

      const user = await newUser(t, { role: 'admin' });
      for (const wrong of [`${token}x`, 'x', user.accessToken]) {
        const res = await t.request('/metrics', { token: wrong });
        expect(res.status).toBe(401);
        expect(res.text).not.toContain('gatehouse_');
      }
      const ok = await t.request('/metrics', { token });
      expect(ok.status).toBe(200);
      expect(ok.text).toContain('# TYPE gatehouse_login_attempts_total counter');
      // The scheme in any case and any number of spaces before the token, as the API's bearer takes it.
      for (const header of [`bearer ${token}`, `Bearer   ${token}`]) {
        const res = await t.request('/metrics', { headers: { authorization: header } });
        expect({ header, status: res.status }).toEqual({ header, status: 200 });
      }
    });

    it('keeps a registry per app: another app’s counts never show here', async () => {
      const text = (await t.request('/metrics', { token })).text;
      expect(sample(text, 'gatehouse_login_attempts_total', { outcome: 'success' })).toBe(0);
      expect(sample(text, 'gatehouse_throttle_hits_total', { route: '/api/v1/auth/login' })).toBeUndefined();
    });
  });
});

describe('/metrics fed by the real flows', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await TestApp.start({ AUTH_THROTTLE_IP_LIMIT: '2' });
  });

  afterAll(async () => {
    await t.close();
  });

  it('counts real login outcomes and real throttle hits', async () => {
    const email = uniqueEmail('metered');
    for (let i = 0; i < 3; i += 1) {
      await t.request('/api/v1/auth/login', {
        method: 'POST',
        body: { email, password: 'not a real password' },
      });
    }
    const text = (await t.request('/metrics')).text;
    expect(sample(text, 'gatehouse_login_attempts_total', { outcome: 'invalid_credentials' })).toBe(2);
    expect(sample(text, 'gatehouse_throttle_hits_total', { route: '/api/v1/auth/login' })).toBe(1);
  });
});
