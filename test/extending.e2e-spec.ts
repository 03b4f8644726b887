import { Injectable, Module } from '@nestjs/common';
import { OnEvent } from '@nestjs/event-emitter';
import type { AuthUser } from '../src/common/auth/auth-user.js';
import { checkMigrations } from '../src/database/schema-check.js';
import { Transactional, UnitOfWork } from '../src/database/unit-of-work.js';
import { type DomainEventMap, type DomainEventName, DomainEvents } from '../src/events/domain-events.js';
import { appSchema } from '../src/features.js';
import type { OwnedResourceEvent } from '../src/owned/owned-resources.js';
import { Note } from './fixtures/notes/note.entity.js';
import { NOTES_FEATURE } from './fixtures/notes/notes.module.js';
import { NotesService } from './fixtures/notes/notes.service.js';
import { newUser } from './support/factories.js';
import { sweepOwnedRoutes } from './support/idor-sweep.js';
import { TestApp } from './support/test-app.js';

const META = { ip: null, userAgent: null, requestId: null };

/** What the listeners below saw, in order. */
const seen: { event: string; payload: OwnedResourceEvent; rowVisible: boolean }[] = [];

@Injectable()
class NoteListener {
  constructor(private readonly uow: UnitOfWork) {}

  // `satisfies` turns a misspelt name into a compile error: @OnEvent alone takes any string.
  @OnEvent('note.created' satisfies DomainEventName)
  async onCreated(payload: DomainEventMap['note.created']): Promise<void> {
    // After commit, the row is there for anyone to read, outside any transaction.
    const row = await this.uow.tx.getRepository(Note).findOneBy({ id: payload.id });
    seen.push({ event: 'note.created', payload, rowVisible: row !== null });
  }

  @OnEvent('note.deleted' satisfies DomainEventName)
  onDeleted(): void {
    throw new Error('a listener that fails');
  }
}

/** A caller two layers above the repository: NotesService joins this unit of work without being told. */
@Injectable()
class NoteImporter {
  constructor(
    private readonly uow: UnitOfWork,
    private readonly notes: NotesService,
  ) {}

  @Transactional()
  async importThenFail(caller: AuthUser): Promise<void> {
    await this.notes.create(caller, { title: 'first', body: 'kept?' }, META);
    await this.notes.create(caller, { title: 'second', body: 'kept?' }, META);
    throw new Error('the import fails after two writes');
  }
}

@Module({ imports: [NOTES_FEATURE.module], providers: [NoteListener, NoteImporter] })
class NotesProbeModule {}

describe('extending Gatehouse: the notes feature of docs/extending.md', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await TestApp.start({}, [NotesProbeModule], { features: [NOTES_FEATURE] });
  });

  afterAll(async () => {
    await t.close();
  });

  const caller = async (): Promise<AuthUser> => {
    const user = await newUser(t);
    return { id: user.id, sessionId: user.sessionId, email: user.email, role: 'user', isVerified: true };
  };

  it('gets owner scoping by construction: the IDOR sweep finds and attacks every notes route', async () => {
    const result = await sweepOwnedRoutes(t);
    expect(result.collections).toEqual(['/api/v1/notes', '/api/v1/todos']);
    for (const collection of result.collections) {
      expect(result.attacked).toEqual(
        expect.arrayContaining([
          `POST ${collection}`,
          `GET ${collection}`,
          `GET ${collection}/{id}`,
          `PATCH ${collection}/{id}`,
          `DELETE ${collection}/{id}`,
        ]),
      );
    }
  });

  it('has a migration that builds exactly its entity, on this database, down and up again', async () => {
    await expect(checkMigrations(t.config.database, appSchema([NOTES_FEATURE]))).resolves.toEqual([]);
  });

  it('documents the id parameter, the 400 and the 404 of every notes route that takes an id', async () => {
    const doc = await t.request<{ paths: Record<string, Record<string, object>> }>('/docs/openapi.json');
    const byId = doc.body.paths['/api/v1/notes/{id}'];
    expect(Object.keys(byId).sort()).toEqual(['delete', 'get', 'patch']);
    for (const operation of Object.values(byId)) {
      expect(operation).toMatchObject({
        parameters: [expect.objectContaining({ name: 'id', in: 'path', required: true })],
        responses: expect.objectContaining({ '400': expect.anything(), '404': expect.anything() }),
      });
    }
  });

  it('serves, audits and pages notes like todos', async () => {
    const user = await newUser(t);
    const created = await t.request('/api/v1/notes', {
      method: 'POST',
      token: user.accessToken,
      body: { title: '  Standup ', body: 'ship it' },
    });
    expect(created.status).toBe(201);
    expect(created.body).toEqual({
      id: expect.any(Number),
      title: 'Standup',
      body: 'ship it',
      updatedAt: expect.any(String),
    });
    const refused = await t.request('/api/v1/notes', {
      method: 'POST',
      token: user.accessToken,
      body: { title: 'x', body: 'y', userId: 1 },
    });
    expect(refused.status).toBe(400);
    const list = await t.request('/api/v1/notes?limit=1', { token: user.accessToken });
    expect(list.body).toEqual({ items: [created.body], nextCursor: null });
    const trail = await t.dataSource.query(
      'SELECT event, metadata FROM audit_events WHERE user_id = ? ORDER BY id',
      [user.id],
    );
    expect(trail).toEqual([{ event: 'note.created', metadata: JSON.stringify({ noteId: created.body.id }) }]);
  });

  it('publishes note.created after commit, and a failing listener does not fail the request', async () => {
    const user = await newUser(t);
    seen.length = 0;
    const created = await t.request('/api/v1/notes', {
      method: 'POST',
      token: user.accessToken,
      body: { title: 'evented', body: '…' },
    });
    await waitFor(() => seen.length > 0);
    expect(seen).toEqual([
      { event: 'note.created', payload: { userId: user.id, id: created.body.id }, rowVisible: true },
    ]);
    const deleted = await t.request(`/api/v1/notes/${created.body.id}`, {
      method: 'DELETE',
      token: user.accessToken,
    });
    expect(deleted.status).toBe(204);
  });

  it('rolls back every write of a failed unit of work called through three layers, and publishes nothing', async () => {
    const user = await caller();
    seen.length = 0;
    await expect(t.app.get(NoteImporter).importThenFail(user)).rejects.toThrow('the import fails');
    expect(await t.dataSource.getRepository(Note).countBy({ userId: user.id })).toBe(0);
    const [{ n }] = await t.dataSource.query<{ n: number | string }[]>(
      'SELECT COUNT(*) AS n FROM audit_events WHERE user_id = ?',
      [user.id],
    );
    expect(Number(n)).toBe(0);
    // Give a wrongly emitted event the time to arrive.
    await new Promise((resolve) => setTimeout(resolve, 50));
    // Only this user's: an earlier test's after-commit event may still be on its way.
    expect(seen.filter((e) => e.payload.userId === user.id)).toEqual([]);
    // The same calls without the failure commit: the rollback above was the unit of work's doing.
    await t.app.get(NotesService).create(user, { title: 'alone', body: 'kept' }, META);
    expect(await t.dataSource.getRepository(Note).countBy({ userId: user.id })).toBe(1);
    // ...and publishes after commit; waited for, so it cannot land in the next test's list.
    await waitFor(() => seen.some((e) => e.event === 'note.created' && e.payload.userId === user.id));
  });

  it('drops events published inside a unit of work that rolls back', async () => {
    const uow = t.app.get(UnitOfWork);
    const events = t.app.get(DomainEvents);
    seen.length = 0;
    await expect(
      uow.withTransaction(() => {
        events.publish('note.created', { userId: 1, id: 1 });
        return Promise.reject(new Error('rolled back'));
      }),
    ).rejects.toThrow('rolled back');
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(seen.filter((e) => e.payload.userId === 1 && e.payload.id === 1)).toEqual([]);
  });
});

async function waitFor(condition: () => boolean, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) {
      throw new Error('timed out waiting for a condition');
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
