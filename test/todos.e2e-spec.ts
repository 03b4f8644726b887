import { AuditEvent } from '../src/audit/audit-event.entity.js';
import { encodeCursor } from '../src/common/pagination.js';
import { Todo } from '../src/todos/todo.entity.js';
import { User } from '../src/users/user.entity.js';
import { newTodo, newUser, type SeededUser } from './support/factories.js';
import type { ApiResponse } from './support/test-app.js';
import { sweepOwnedRoutes } from './support/idor-sweep.js';
import { TestApp } from './support/test-app.js';

const TODOS = '/api/v1/todos';

/** A problem body without its per-request id, to compare two answers for equality. */

describe('todos', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await TestApp.start();
  });

  afterAll(async () => {
    await t.close();
  });

  const todoRows = (userId: number) =>
    t.dataSource.getRepository(Todo).find({ where: { userId }, order: { id: 'ASC' } });

  const auditRows = async (userId: number) =>
    t.dataSource.getRepository(AuditEvent).find({ where: { userId }, order: { id: 'ASC' } });

  const expectValidation = (res: ApiResponse, field: string) => {
    expect(res.status).toBe(400);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(res.body.code).toBe('VALIDATION_FAILED');
    expect(res.body.errors.map((e: { field: string }) => e.field)).toContain(field);
  };

  /** Walks a list to its end, asserting the page sizes on the way; returns every id in order. */
  const walk = async (user: SeededUser, query: string, expectedSizes: number[]) => {
    const ids: number[] = [];
    const sizes: number[] = [];
    let cursor: string | null = null;
    do {
      const sep = query ? '&' : '';
      const path: string = `${TODOS}?${query}${cursor ? `${sep}cursor=${cursor}` : ''}`;
      const res: ApiResponse = await t.request(path, { token: user.accessToken });
      expect(res.status).toBe(200);
      sizes.push(res.body.items.length);
      ids.push(...res.body.items.map((item: { id: number }) => item.id));
      cursor = res.body.nextCursor;
    } while (cursor !== null && sizes.length < 20);
    expect(sizes).toEqual(expectedSizes);
    return ids;
  };

  describe('CRUD', () => {
    it('creates, reads, lists, updates and deletes a todo of the caller', async () => {
      const user = await newUser(t);
      const created = await t.request(TODOS, {
        method: 'POST',
        token: user.accessToken,
        body: {
          title: '  Write the report  ',
          description: 'Q3 numbers',
          dueAt: '2030-01-31T17:00:00+01:00',
        },
      });
      expect(created.status).toBe(201);
      expect(created.body).toEqual({
        id: expect.any(Number),
        title: 'Write the report',
        description: 'Q3 numbers',
        completed: false,
        dueAt: '2030-01-31T16:00:00.000Z',
        createdAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
        updatedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
      });
      const { id } = created.body;
      const [row] = await todoRows(user.id);
      expect(row).toMatchObject({ id, userId: user.id, title: 'Write the report' });

      const read = await t.request(`${TODOS}/${id}`, { token: user.accessToken });
      expect(read.status).toBe(200);
      expect(read.body).toEqual(created.body);

      const list = await t.request(TODOS, { token: user.accessToken });
      expect(list.status).toBe(200);
      expect(list.body).toEqual({ items: [created.body], nextCursor: null });

      const toggled = await t.request(`${TODOS}/${id}`, {
        method: 'PATCH',
        token: user.accessToken,
        body: { completed: true },
      });
      expect(toggled.status).toBe(200);
      expect(toggled.body).toMatchObject({ id, title: 'Write the report', completed: true });
      // Stamped to the millisecond like createdAt, so never before it (TypeORM's own stamp is whole seconds).
      expect(Date.parse(toggled.body.updatedAt)).toBeGreaterThanOrEqual(Date.parse(created.body.createdAt));

      const edited = await t.request(`${TODOS}/${id}`, {
        method: 'PATCH',
        token: user.accessToken,
        body: { title: 'Send the report', description: null, dueAt: null },
      });
      expect(edited.status).toBe(200);
      expect(edited.body).toMatchObject({
        id,
        title: 'Send the report',
        description: null,
        dueAt: null,
        completed: true,
        createdAt: created.body.createdAt,
      });

      const unchanged = await t.request(`${TODOS}/${id}`, {
        method: 'PATCH',
        token: user.accessToken,
        body: {},
      });
      expect(unchanged.status).toBe(200);
      expect(unchanged.body).toEqual(edited.body);

      const deleted = await t.request(`${TODOS}/${id}`, { method: 'DELETE', token: user.accessToken });
      expect(deleted.status).toBe(204);
      expect(deleted.text).toBe('');
      expect(await todoRows(user.id)).toEqual([]);
      expect((await t.request(`${TODOS}/${id}`, { token: user.accessToken })).status).toBe(404);
      expect((await t.request(`${TODOS}/${id}`, { method: 'DELETE', token: user.accessToken })).status).toBe(
        404,
      );
    });

    it('accepts the boundaries: a 200-character title, a 2,000-character description, completed on create', async () => {
      const user = await newUser(t);
      const res = await t.request(TODOS, {
        method: 'POST',
        token: user.accessToken,
        body: { title: 'x'.repeat(200), description: 'd'.repeat(2000), completed: true, dueAt: '2030-01-31' },
      });
      expect(res.status).toBe(201);
      expect(res.body).toMatchObject({ completed: true, dueAt: '2030-01-31T00:00:00.000Z' });
      expect(res.body.title).toHaveLength(200);
      expect(res.headers.get('cache-control')).toBe('no-store');
    });

    it('needs an access token', async () => {
      const res = await t.request(TODOS);
      expect(res.status).toBe(401);
      expect(res.body.code).toBe('UNAUTHENTICATED');
    });
  });

  describe('validation', () => {
    let user: SeededUser;
    let todoId: number;

    beforeAll(async () => {
      user = await newUser(t);
      todoId = (await newTodo(t, { ownerId: user.id })).id;
    });

    it.each([
      ['a missing title', {}, 'title'],
      ['an empty title', { title: '' }, 'title'],
      ['a whitespace-only title', { title: ' \t\n ' }, 'title'],
      ['an over-long title', { title: 'x'.repeat(201) }, 'title'],
      ['a numeric title', { title: 123 }, 'title'],
      ['a null title', { title: null }, 'title'],
      ['an over-long description', { title: 'ok', description: 'x'.repeat(2001) }, 'description'],
      ['a numeric description', { title: 'ok', description: 5 }, 'description'],
      ['a string completed', { title: 'ok', completed: 'yes' }, 'completed'],
      ['a null completed', { title: 'ok', completed: null }, 'completed'],
      ['a word as dueAt', { title: 'ok', dueAt: 'tomorrow' }, 'dueAt'],
      ['an impossible dueAt', { title: 'ok', dueAt: '2030-02-30T10:00:00Z' }, 'dueAt'],
      ['a dueAt outside DATETIME', { title: 'ok', dueAt: '0999-12-31T00:00:00Z' }, 'dueAt'],
      ['a numeric dueAt', { title: 'ok', dueAt: 1700000000000 }, 'dueAt'],
      // Read in the server's time zone, it was a different instant on every host.
      ['a dueAt without its offset', { title: 'ok', dueAt: '2030-01-31T17:00:00' }, 'dueAt'],
      ['a dueAt in minutes without its offset', { title: 'ok', dueAt: '2030-01-31T17:00' }, 'dueAt'],
      ['a dueAt with a signed year', { title: 'ok', dueAt: '+2030-01-31' }, 'dueAt'],
      ['a userId', { title: 'ok', userId: 1 }, 'userId'],
      ['an id', { title: 'ok', id: 1 }, 'id'],
      ['a createdAt', { title: 'ok', createdAt: '2030-01-01T00:00:00Z' }, 'createdAt'],
      ['an updatedAt', { title: 'ok', updatedAt: '2030-01-01T00:00:00Z' }, 'updatedAt'],
      ['an unknown field', { title: 'ok', priority: 'high' }, 'priority'],
    ])('refuses to create with %s', async (_label, body, field) => {
      const res = await t.request(TODOS, { method: 'POST', token: user.accessToken, body });
      expectValidation(res, field);
    });

    it.each([
      ['a null title', { title: null }, 'title'],
      ['a whitespace-only title', { title: '   ' }, 'title'],
      ['an over-long title', { title: 'x'.repeat(201) }, 'title'],
      ['a string completed', { completed: 'true' }, 'completed'],
      ['a null completed', { completed: null }, 'completed'],
      ['a bad dueAt', { dueAt: '31/01/2030' }, 'dueAt'],
      ['a userId', { userId: 1 }, 'userId'],
      ['an id', { id: 2 }, 'id'],
      ['a createdAt', { createdAt: '2030-01-01T00:00:00Z' }, 'createdAt'],
      ['an updatedAt', { updatedAt: '2030-01-01T00:00:00Z' }, 'updatedAt'],
    ])('refuses to update with %s and leaves the row alone', async (_label, body, field) => {
      const before = await todoRows(user.id);
      const res = await t.request(`${TODOS}/${todoId}`, { method: 'PATCH', token: user.accessToken, body });
      expectValidation(res, field);
      expect(await todoRows(user.id)).toEqual(before);
    });

    it.each(['abc', '0', '-1', '1.5', '1e3', '0x10', '4294967296', '99999999999999999999', '%20'])(
      'answers 400 (never 500) for the id %s on every route',
      async (id) => {
        for (const method of ['GET', 'PATCH', 'DELETE']) {
          const res = await t.request(`${TODOS}/${id}`, {
            method,
            token: user.accessToken,
            body: method === 'PATCH' ? { completed: true } : undefined,
          });
          expectValidation(res, 'id');
        }
      },
    );

    it.each([
      ['limit=0', 'limit'],
      ['limit=101', 'limit'],
      ['limit=abc', 'limit'],
      ['limit=1.5', 'limit'],
      ['limit=1e1', 'limit'],
      ['limit=010', 'limit'],
      ['completed=yes', 'completed'],
      ['completed=1', 'completed'],
      ['userId=1', 'userId'],
      ['foo=bar', 'foo'],
    ])('refuses the list query %s', async (query, field) => {
      expectValidation(await t.request(`${TODOS}?${query}`, { token: user.accessToken }), field);
    });
  });

  describe('pagination', () => {
    let user: SeededUser;
    let all: number[];
    let done: number[];
    let open: number[];

    beforeAll(async () => {
      user = await newUser(t);
      const other = await newUser(t);
      all = [];
      for (let i = 0; i < 45; i += 1) {
        all.push((await newTodo(t, { ownerId: user.id, completed: i % 3 === 0 })).id);
        // Another user's todos interleave with the caller's ids: they must never show or shift a page.
        await newTodo(t, { ownerId: other.id, completed: i % 3 === 0 });
      }
      all.reverse();
      done = all.filter((_id, i) => (44 - i) % 3 === 0);
      open = all.filter((_id, i) => (44 - i) % 3 !== 0);
      expect(done).toHaveLength(15);
    });

    it('walks 45 todos in pages of 20, newest first, with no gap or duplicate', async () => {
      expect(await walk(user, 'limit=20', [20, 20, 5])).toEqual(all);
      expect(await walk(user, '', [20, 20, 5])).toEqual(all);
    });

    it('ends with a null cursor when the last page is exactly full', async () => {
      expect(await walk(user, 'limit=15', [15, 15, 15])).toEqual(all);
      expect(await walk(user, 'limit=100', [45])).toEqual(all);
    });

    it('walks with the completed filter', async () => {
      expect(await walk(user, 'completed=false&limit=20', [20, 10])).toEqual(open);
      expect(await walk(user, 'completed=true&limit=20', [15])).toEqual(done);
      expect(await walk(user, 'completed=true&limit=4', [4, 4, 4, 3])).toEqual(done);
    });

    it.each([
      ['garbage', 'not a cursor!'],
      ['base64 of garbage', Buffer.from('garbage').toString('base64url')],
      ['base64 of a JSON array', Buffer.from('[1]').toString('base64url')],
      ['a negative id', Buffer.from('{"id":"-5"}').toString('base64url')],
      ['a numeric id', Buffer.from('{"id":5}').toString('base64url')],
      ['an exponent', Buffer.from('{"id":"1e9"}').toString('base64url')],
      ['extra keys', Buffer.from('{"id":"5","userId":"1"}').toString('base64url')],
      ['SQL', Buffer.from('{"id":"1 OR 1=1"}').toString('base64url')],
      ['an over-long cursor', 'A'.repeat(500)],
    ])('refuses a tampered cursor (%s) with 400 CURSOR_INVALID', async (_label, cursor) => {
      const res = await t.request(`${TODOS}?cursor=${encodeURIComponent(cursor)}`, {
        token: user.accessToken,
      });
      expect(res.status).toBe(400);
      expect(res.body.code).toBe(cursor.length > 128 ? 'VALIDATION_FAILED' : 'CURSOR_INVALID');
    });

    it('gives a cursor crafted to point into another user’s ids only the caller’s own rows', async () => {
      const intruder = await newUser(t);
      const own = [(await newTodo(t, { ownerId: intruder.id })).id];
      const crafted = encodeCursor(Math.max(...all) + 1_000);
      const res = await t.request(`${TODOS}?cursor=${crafted}`, { token: intruder.accessToken });
      expect(res.status).toBe(200);
      expect(res.body.items.map((item: { id: number }) => item.id)).toEqual(own);
      for (const id of all.slice(0, 3)) {
        const inside = await t.request(`${TODOS}?cursor=${encodeCursor(id)}`, {
          token: intruder.accessToken,
        });
        expect(inside.status).toBe(200);
        expect(inside.body.items.every((item: { id: number }) => !all.includes(item.id))).toBe(true);
      }
    });
  });

  describe('ownership (IDOR sweep)', () => {
    it('answers a second account on every owned route exactly as for a missing todo, and changes nothing', async () => {
      const auditBefore = await t.dataSource.getRepository(AuditEvent).count();
      const result = await sweepOwnedRoutes(t);
      expect(result.collections).toEqual([TODOS]);
      expect(result.attacked).toEqual([
        `DELETE ${TODOS}/{id}`,
        `GET ${TODOS}`,
        `GET ${TODOS}/{id}`,
        `PATCH ${TODOS}/{id}`,
        `POST ${TODOS}`,
      ]);
      // The only trail the sweep leaves: the rows each account created, never an update or delete.
      const events = (await t.dataSource.getRepository(AuditEvent).find({ order: { id: 'ASC' } }))
        .slice(auditBefore)
        .map((row) => row.event);
      expect(new Set(events)).toEqual(new Set(['todo.created']));
    });
  });

  describe('verified email', () => {
    it('refuses an unverified user on every route with 403 EMAIL_NOT_VERIFIED', async () => {
      const owner = await newUser(t, { verified: false });
      const todo = await newTodo(t, { ownerId: owner.id });
      const attempts: [string, string, unknown][] = [
        ['POST', TODOS, { title: 'x' }],
        ['GET', TODOS, undefined],
        ['GET', `${TODOS}/${todo.id}`, undefined],
        ['PATCH', `${TODOS}/${todo.id}`, { completed: true }],
        ['DELETE', `${TODOS}/${todo.id}`, undefined],
      ];
      for (const [method, path, body] of attempts) {
        const res = await t.request(path, { method, token: owner.accessToken, body });
        expect(res.status).toBe(403);
        expect(res.body.code).toBe('EMAIL_NOT_VERIFIED');
      }
      expect(await todoRows(owner.id)).toEqual([expect.objectContaining({ id: todo.id, completed: false })]);
    });
  });

  describe('account deletion', () => {
    it('removes a deleted user’s todos with the account', async () => {
      const user = await newUser(t);
      const keeper = await newUser(t);
      for (let i = 0; i < 3; i += 1) {
        await newTodo(t, { ownerId: user.id });
      }
      const kept = await newTodo(t, { ownerId: keeper.id });
      await t.dataSource.getRepository(User).delete({ id: user.id });
      expect(await todoRows(user.id)).toEqual([]);
      expect((await todoRows(keeper.id)).map((row) => row.id)).toEqual([kept.id]);
    });
  });

  describe('concurrency', () => {
    it('leaves no row after a PATCH and a DELETE race, and never a 500', async () => {
      const user = await newUser(t);
      for (let round = 0; round < 10; round += 1) {
        const todo = await newTodo(t, { ownerId: user.id });
        const path = `${TODOS}/${todo.id}`;
        const [patched, deleted] = await Promise.all([
          t.request(path, {
            method: 'PATCH',
            token: user.accessToken,
            body: { title: `round ${round}`, completed: true },
          }),
          t.request(path, { method: 'DELETE', token: user.accessToken }),
        ]);
        expect(deleted.status).toBe(204);
        expect([200, 404]).toContain(patched.status);
        expect(await t.dataSource.getRepository(Todo).findOneBy({ id: todo.id })).toBeNull();
        const events = (await auditRows(user.id)).filter((row) => row.metadata?.todoId === todo.id);
        expect(events.map((row) => row.event)).toEqual(
          patched.status === 200 ? ['todo.updated', 'todo.deleted'] : ['todo.deleted'],
        );
      }
    });

    it('leaves one whole version of the row after two PATCHes race', async () => {
      const user = await newUser(t);
      for (let round = 0; round < 10; round += 1) {
        const todo = await newTodo(t, { ownerId: user.id });
        const path = `${TODOS}/${todo.id}`;
        const results = await Promise.all([
          t.request(path, {
            method: 'PATCH',
            token: user.accessToken,
            body: { title: 'a', completed: true },
          }),
          t.request(path, {
            method: 'PATCH',
            token: user.accessToken,
            body: { title: 'b', completed: false },
          }),
          t.request(path, { token: user.accessToken }),
        ]);
        expect(results.map((res) => res.status)).toEqual([200, 200, 200]);
        const row = await t.dataSource.getRepository(Todo).findOneByOrFail({ id: todo.id });
        expect([
          { title: 'a', completed: true },
          { title: 'b', completed: false },
        ]).toContainEqual({ title: row.title, completed: row.completed });
      }
    });
  });

  describe('audit', () => {
    it('records todo.created, todo.updated and todo.deleted with the todo id and never the title', async () => {
      const user = await newUser(t);
      const title = `secret-plan-${Date.now()}`;
      const description = `hidden-detail-${Date.now()}`;
      const created = await t.request(TODOS, {
        method: 'POST',
        token: user.accessToken,
        body: { title, description },
        headers: { 'user-agent': 'todo-audit-test', 'x-request-id': 'todo-audit-1' },
      });
      const { id } = created.body;
      await t.request(`${TODOS}/${id}`, {
        method: 'PATCH',
        token: user.accessToken,
        body: { title: `${title}-renamed`, completed: true },
      });
      await t.request(`${TODOS}/${id}`, { method: 'DELETE', token: user.accessToken });

      const rows = await auditRows(user.id);
      expect(rows.map((row) => [row.event, row.outcome, row.metadata?.todoId])).toEqual([
        ['todo.created', 'success', id],
        ['todo.updated', 'success', id],
        ['todo.deleted', 'success', id],
      ]);
      expect(rows[0]).toMatchObject({ userAgent: 'todo-audit-test', requestId: 'todo-audit-1' });
      expect(rows[1].metadata).toEqual({ todoId: id, fields: ['title', 'completed'] });
      const raw = JSON.stringify(await t.dataSource.query('SELECT * FROM audit_events'));
      expect(raw).not.toContain(title);
      expect(raw).not.toContain(description);
    });

    it('records nothing for a refused or missing todo', async () => {
      const user = await newUser(t);
      await t.request(TODOS, { method: 'POST', token: user.accessToken, body: { title: '' } });
      await t.request(`${TODOS}/999999`, {
        method: 'PATCH',
        token: user.accessToken,
        body: { completed: true },
      });
      await t.request(`${TODOS}/999999`, { method: 'DELETE', token: user.accessToken });
      expect(await auditRows(user.id)).toEqual([]);
    });
  });
});

describe('todos with AUTH_REQUIRE_VERIFIED_EMAIL=false', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await TestApp.start({ AUTH_REQUIRE_VERIFIED_EMAIL: 'false' });
  });

  afterAll(async () => {
    await t.close();
  });

  it('lets an unverified user use their todos', async () => {
    const user = await newUser(t, { verified: false });
    const created = await t.request(TODOS, { method: 'POST', token: user.accessToken, body: { title: 'x' } });
    expect(created.status).toBe(201);
    const list = await t.request(TODOS, { token: user.accessToken });
    expect(list.body.items).toEqual([created.body]);
  });
});
