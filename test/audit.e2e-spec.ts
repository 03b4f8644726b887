import { randomBytes } from 'node:crypto';
import { AuditEvent } from '../src/audit/audit-event.entity.js';
import { AuditRetentionService } from '../src/audit/audit-retention.service.js';
import { AuditService } from '../src/audit/audit.service.js';
import { newUser, type SeededUser } from './support/factories.js';
import type { ApiResponse } from './support/test-app.js';
import { TestApp } from './support/test-app.js';

const OWN = '/api/v1/users/me/audit-events';
const SEARCH = '/api/v1/admin/audit-events';
const DAY_MS = 24 * 3600 * 1000;

/** An event name no other test uses, so each test can count exactly its own rows. */
const uniqueEvent = (prefix = 'test') => `${prefix}.seeded_${randomBytes(4).toString('hex')}`;

describe('audit trail', () => {
  let t: TestApp;
  let admin: SeededUser;

  beforeAll(async () => {
    t = await TestApp.start();
    admin = await newUser(t, { role: 'admin' });
  });

  afterAll(async () => {
    await t.close();
  });

  const audit = () => t.app.get(AuditService);
  const events = () => t.dataSource.getRepository(AuditEvent);

  /** Inserts a row as it would have been recorded at `occurredAt`. */
  const seedAt = async (occurredAt: Date, row: Partial<Pick<AuditEvent, 'event' | 'userId'>>) => {
    await events().insert({ outcome: 'success', event: 'test.seeded', ...row, occurredAt });
  };

  /** Follows nextCursor to the end; returns every item in order. */
  const walk = async (path: string, token: string) => {
    const items: any[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const sep = path.includes('?') ? '&' : '?';
      const res: ApiResponse = await t.request(`${path}${cursor ? `${sep}cursor=${cursor}` : ''}`, { token });
      expect(res.status).toBe(200);
      items.push(...res.body.items);
      cursor = res.body.nextCursor;
      pages += 1;
    } while (cursor !== null && pages < 50);
    return { items, pages };
  };

  describe('GET /users/me/audit-events', () => {
    it('shows the caller only their own events, newest first, without anyone’s user id', async () => {
      const alice = await newUser(t);
      const bob = await newUser(t);
      const created = await t.request('/api/v1/todos', {
        method: 'POST',
        token: alice.accessToken,
        body: { title: 'Alice’s secret plans' },
        headers: { 'user-agent': 'alice-agent/1.0', 'x-request-id': 'alice-req-1' },
      });
      expect(created.status).toBe(201);
      await t.request('/api/v1/todos', { method: 'POST', token: bob.accessToken, body: { title: 'Bob’s' } });
      await audit().record('auth.login_failed', {
        userId: alice.id,
        outcome: 'failure',
        metadata: { reason: 'wrong_password' },
      });
      await audit().record('auth.login_failed', { userId: bob.id, outcome: 'failure' });

      const mine = await t.request(OWN, { token: alice.accessToken });
      expect(mine.status).toBe(200);
      expect(mine.body.nextCursor).toBeNull();
      expect(mine.body.items.map((e: { event: string }) => e.event)).toEqual([
        'auth.login_failed',
        'todo.created',
      ]);
      const [failed, todo] = mine.body.items;
      expect(failed).toEqual({
        id: expect.stringMatching(/^\d+$/),
        event: 'auth.login_failed',
        outcome: 'failure',
        occurredAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
        ip: null,
        userAgent: null,
        requestId: null,
        metadata: { reason: 'wrong_password' },
      });
      expect(todo).toMatchObject({
        event: 'todo.created',
        outcome: 'success',
        ip: '127.0.0.1',
        userAgent: 'alice-agent/1.0',
        requestId: 'alice-req-1',
        metadata: { todoId: created.body.id },
      });
      expect(JSON.stringify(mine.body)).not.toContain('Alice’s secret plans');
      expect(Object.keys(todo)).not.toContain('userId');
      expect(Object.keys(todo)).not.toContain('actorUserId');

      const theirs = await t.request(OWN, { token: bob.accessToken });
      expect(theirs.body.items).toHaveLength(2);
      const aliceIds = new Set(mine.body.items.map((e: { id: string }) => e.id));
      expect(theirs.body.items.some((e: { id: string }) => aliceIds.has(e.id))).toBe(false);
    });

    it('filters by event and pages through the trail with a cursor, no row twice', async () => {
      const user = await newUser(t);
      const other = await newUser(t);
      for (let i = 0; i < 5; i += 1) {
        await audit().record('auth.login_succeeded', { userId: user.id, metadata: { n: i } });
        await audit().record('auth.login_succeeded', { userId: other.id });
      }
      await audit().record('auth.logout', { userId: user.id });

      const { items, pages } = await walk(`${OWN}?limit=2&event=auth.login_succeeded`, user.accessToken);
      expect(pages).toBe(3);
      expect(items.map((e) => e.metadata.n)).toEqual([4, 3, 2, 1, 0]);
      const ids = items.map((e) => BigInt(e.id));
      expect([...ids].sort((a, b) => (a > b ? -1 : 1))).toEqual(ids);

      const all = await t.request(`${OWN}?limit=100`, { token: user.accessToken });
      expect(all.body.items).toHaveLength(6);
      expect(all.body.items[0].event).toBe('auth.logout');
    });

    it('refuses a bad event filter, limit or cursor with 400', async () => {
      const user = await newUser(t);
      for (const query of ['event=DROP%20TABLE', 'limit=0', 'limit=101', 'cursor=not-a-cursor!']) {
        const res = await t.request(`${OWN}?${query}`, { token: user.accessToken });
        expect(res.status).toBe(400);
        expect(['VALIDATION_FAILED', 'CURSOR_INVALID']).toContain(res.body.code);
      }
    });

    it('needs an access token', async () => {
      const res = await t.request(OWN);
      expect(res.status).toBe(401);
      expect(res.body.code).toBe('UNAUTHENTICATED');
    });
  });

  describe('GET /admin/audit-events', () => {
    it('filters by userId', async () => {
      const user = await newUser(t);
      const other = await newUser(t);
      await audit().record('auth.login_succeeded', { userId: user.id });
      await audit().record('auth.login_succeeded', { userId: other.id });
      const res = await t.request(`${SEARCH}?userId=${user.id}`, { token: admin.accessToken });
      expect(res.status).toBe(200);
      expect(res.body.items).toHaveLength(1);
      expect(res.body.items[0]).toMatchObject({ userId: user.id, event: 'auth.login_succeeded' });
    });

    it('filters by event and by outcome, alone and combined', async () => {
      const event = uniqueEvent();
      const user = await newUser(t);
      await audit().record(event, { userId: user.id, outcome: 'failure' });
      await audit().record(event, { userId: user.id, outcome: 'success' });
      await audit().record(event, { outcome: 'failure' });
      await audit().record(uniqueEvent(), { userId: user.id, outcome: 'failure' });

      const byEvent = await t.request(`${SEARCH}?event=${event}`, { token: admin.accessToken });
      expect(byEvent.body.items).toHaveLength(3);
      expect(byEvent.body.items.every((e: { event: string }) => e.event === event)).toBe(true);

      const byBoth = await t.request(`${SEARCH}?event=${event}&outcome=failure`, {
        token: admin.accessToken,
      });
      expect(byBoth.body.items.map((e: { userId: number | null }) => e.userId)).toEqual([null, user.id]);

      const byUserAndOutcome = await t.request(`${SEARCH}?userId=${user.id}&outcome=failure`, {
        token: admin.accessToken,
      });
      expect(byUserAndOutcome.body.items).toHaveLength(2);

      const byOutcome = await t.request(`${SEARCH}?outcome=failure&limit=100`, { token: admin.accessToken });
      expect(byOutcome.status).toBe(200);
      expect(byOutcome.body.items.length).toBeGreaterThanOrEqual(3);
      expect(byOutcome.body.items.every((e: { outcome: string }) => e.outcome === 'failure')).toBe(true);
    });

    it('filters by the time window [from, to)', async () => {
      const event = uniqueEvent();
      const days = ['2030-01-01T12:00:00.000Z', '2030-01-02T12:00:00.000Z', '2030-01-03T12:00:00.000Z'];
      for (const day of days) {
        await seedAt(new Date(day), { event });
      }
      const at = async (query: string) => {
        const res = await t.request(`${SEARCH}?event=${event}&${query}`, { token: admin.accessToken });
        expect(res.status).toBe(200);
        return res.body.items.map((e: { occurredAt: string }) => e.occurredAt);
      };
      await expect(at('from=2030-01-02T00:00:00Z')).resolves.toEqual([days[2], days[1]]);
      await expect(at('to=2030-01-02T12:00:00.000Z')).resolves.toEqual([days[0]]);
      await expect(at('from=2030-01-01T12:00:00Z&to=2030-01-03T00:00:00%2B01:00')).resolves.toEqual([
        days[1],
        days[0],
      ]);
      // A time window alone (no equality filter) works too.
      const windowOnly = await t.request(`${SEARCH}?from=2030-01-02T00:00:00Z&to=2030-01-03T00:00:00Z`, {
        token: admin.accessToken,
      });
      expect(windowOnly.body.items.map((e: { event: string }) => e.event)).toEqual([event]);
    });

    it('pages through results with a cursor', async () => {
      const event = uniqueEvent();
      for (let i = 0; i < 7; i += 1) {
        await audit().record(event, { metadata: { n: i } });
      }
      const { items, pages } = await walk(`${SEARCH}?event=${event}&limit=3`, admin.accessToken);
      expect(pages).toBe(3);
      expect(items.map((e) => e.metadata.n)).toEqual([6, 5, 4, 3, 2, 1, 0]);
    });

    it('validates every filter with 400 VALIDATION_FAILED naming the field', async () => {
      const cases: [string, string][] = [
        ['from=yesterday', 'from'],
        ['to=2030-13-01T00:00:00Z', 'to'],
        ['from=2030-01-02T00:00:00Z&to=2030-01-01T00:00:00Z', 'to'],
        ['userId=abc', 'userId'],
        ['userId=1e3', 'userId'],
        ['userId=0', 'userId'],
        ['userId=4294967296', 'userId'],
        ['from=2030-01-01T00:00:00', 'from'],
        ['outcome=maybe', 'outcome'],
        ['event=no%20spaces', 'event'],
        ['sort=id', 'sort'],
      ];
      for (const [query, field] of cases) {
        const res = await t.request(`${SEARCH}?${query}`, { token: admin.accessToken });
        expect({ query, status: res.status, code: res.body.code }).toEqual({
          query,
          status: 400,
          code: 'VALIDATION_FAILED',
        });
        expect(res.body.errors.map((e: { field: string }) => e.field)).toContain(field);
      }
    });

    it('is for admins only', async () => {
      const user = await newUser(t);
      const res = await t.request(SEARCH, { token: user.accessToken });
      expect(res.status).toBe(403);
      expect(res.body.code).toBe('ADMIN_REQUIRED');
    });
  });

  describe('append-only', () => {
    it('no route of the API writes audit rows directly: every audit path is GET only', async () => {
      const doc = (await t.request('/docs/openapi.json')).body;
      const auditPaths = Object.entries(doc.paths as Record<string, object>).filter(([path]) =>
        path.includes('audit'),
      );
      expect(auditPaths.length).toBeGreaterThanOrEqual(2);
      for (const [path, operations] of auditPaths) {
        expect({ path, methods: Object.keys(operations) }).toEqual({ path, methods: ['get'] });
      }
    });
  });

  describe('retention purge', () => {
    it('deletes events older than AUDIT_RETENTION_DAYS, keeps newer ones and records audit.purged', async () => {
      const retention = t.app.get(AuditRetentionService);
      // Anything older that other tests left behind goes first, so the count below is exact.
      await retention.purgeExpired();
      const event = uniqueEvent('retention');
      const now = Date.now();
      const user = await newUser(t);
      await seedAt(new Date(now - 400 * DAY_MS), { event, userId: user.id });
      await seedAt(new Date(now - 366 * DAY_MS), { event, userId: user.id });
      await seedAt(new Date(now - 364 * DAY_MS), { event, userId: user.id });
      await seedAt(new Date(now - DAY_MS), { event, userId: user.id });

      await expect(retention.purgeExpired()).resolves.toBe(2);

      const left = await events().find({ where: { event }, order: { occurredAt: 'ASC' } });
      expect(left.map((e) => Math.round((now - e.occurredAt.getTime()) / DAY_MS))).toEqual([364, 1]);
      const purged = await events().find({ where: { event: 'audit.purged' }, order: { id: 'DESC' } });
      expect(purged[0]).toMatchObject({
        outcome: 'success',
        userId: null,
        metadata: { deleted: 2, retentionDays: 365 },
      });

      // Nothing left to purge: no rows go and no empty audit.purged is written.
      await expect(retention.purgeExpired()).resolves.toBe(0);
      await expect(events().countBy({ event: 'audit.purged' })).resolves.toBe(purged.length);
    });

    it('purges in batches larger than one statement', async () => {
      const event = uniqueEvent('retention');
      const old = new Date(Date.now() - 1000 * DAY_MS);
      const rows = Array.from({ length: 2100 }, () => ({
        event,
        outcome: 'success' as const,
        occurredAt: old,
      }));
      for (let i = 0; i < rows.length; i += 500) {
        await events().insert(rows.slice(i, i + 500));
      }
      await expect(t.app.get(AuditRetentionService).purgeExpired()).resolves.toBe(2100);
      await expect(events().countBy({ event })).resolves.toBe(0);
    });
  });
});
