import { Injectable, Module } from '@nestjs/common';
import { OnEvent } from '@nestjs/event-emitter';
import { AuditModule } from '../src/audit/audit.module.js';
import { AuditService } from '../src/audit/audit.service.js';
import { AuditEvent } from '../src/audit/audit-event.entity.js';
import { Session } from '../src/auth/session.entity.js';
import { Transactional, UnitOfWork } from '../src/database/unit-of-work.js';
import { type DomainEventMap, type DomainEventName } from '../src/events/domain-events.js';
import { User } from '../src/users/user.entity.js';
import { NOTES_FEATURE } from './fixtures/notes/notes.module.js';
import { newUser } from './support/factories.js';
import { TestApp } from './support/test-app.js';

/** Writes the way an unlucky mix of requests would: plain statements beside transactions that fail. */
@Injectable()
class Mixer {
  constructor(
    readonly uow: UnitOfWork,
    private readonly audit: AuditService,
  ) {}

  plain(tag: string): Promise<void> {
    return this.audit.record('attack.plain', { metadata: { tag } });
  }

  @Transactional()
  async rolledBack(tag: string): Promise<void> {
    await this.audit.record('attack.rolled', { metadata: { tag } });
    await new Promise((resolve) => setImmediate(resolve));
    await this.audit.record('attack.rolled', { metadata: { tag } });
    throw new Error('rolled back on purpose');
  }
}

const heard: number[] = [];

/** A listener whose boundary decorator sits above @OnEvent, the order a team may well write. */
@Injectable()
class DecoratedAboveListener {
  constructor(
    readonly uow: UnitOfWork,
    private readonly audit: AuditService,
  ) {}

  @Transactional()
  @OnEvent('note.created' satisfies DomainEventName)
  async onCreated(payload: DomainEventMap['note.created']): Promise<void> {
    heard.push(payload.id);
    await this.audit.record('attack.listener', { userId: payload.userId });
  }
}

@Module({ imports: [NOTES_FEATURE.module, AuditModule], providers: [Mixer, DecoratedAboveListener] })
class AttackModule {}

/** Fails the audit row of a successful sign-in, after the session row was written in the same unit of work. */
@Injectable()
class FailingAudit extends AuditService {
  override async record(...args: Parameters<AuditService['record']>): Promise<void> {
    if (args[0] === 'auth.login_succeeded') {
      throw new Error('the audit table is full');
    }
    return super.record(...args);
  }
}

describe('attack: the unit of work', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await TestApp.start({}, [AttackModule], {
      features: [NOTES_FEATURE],
      override: (b) => b.overrideProvider(AuditService).useClass(FailingAudit),
    });
  });

  afterAll(async () => {
    await t.close();
  });

  const count = (event: string) => t.dataSource.getRepository(AuditEvent).countBy({ event });

  it('keeps every plain write made while other requests roll their transactions back', async () => {
    const mixer = t.app.get(Mixer);
    const work: Promise<unknown>[] = [];
    for (let i = 0; i < 60; i += 1) {
      work.push(mixer.rolledBack(`r${i}`).catch(() => undefined));
      work.push(mixer.plain(`p${i}`));
    }
    await Promise.all(work);
    expect(await count('attack.rolled')).toBe(0);
    expect(await count('attack.plain')).toBe(60);
  });

  it('calls a listener whose @Transactional() sits above @OnEvent', async () => {
    const user = await newUser(t);
    const res = await t.request('/api/v1/notes', {
      method: 'POST',
      token: user.accessToken,
      body: { title: 'heard?', body: 'x' },
    });
    expect(res.status).toBe(201);
    await new Promise((resolve) => setTimeout(resolve, 100));
    expect(heard).toContain((res.body as { id: number }).id);
    // ...and its own unit of work, opened after the request's committed, wrote its row.
    expect(
      await t.dataSource.getRepository(AuditEvent).countBy({ event: 'attack.listener', userId: user.id }),
    ).toBe(1);
  });

  it('leaves no half-written sign-in when the audit row of a successful login fails', async () => {
    const email = `attack-${Date.now()}@example.test`;
    const password = 'correct horse battery staple';
    const reg = await t.request('/api/v1/auth/register', { method: 'POST', body: { email, password } });
    expect(reg.status).toBe(202);
    await t.dataSource.getRepository(User).update({ email }, { isVerified: true });
    const user = await t.dataSource.getRepository(User).findOneByOrFail({ email });
    const sessionsBefore = await t.dataSource.getRepository(Session).countBy({ userId: user.id });

    const res = await t.request('/api/v1/auth/login', { method: 'POST', body: { email, password } });
    expect(res.status).toBe(500);
    expect(res.headers.get('content-type')).toContain('application/problem+json');
    expect(await t.dataSource.getRepository(Session).countBy({ userId: user.id })).toBe(sessionsBefore);
    const after = await t.dataSource.getRepository(User).findOneByOrFail({ email });
    expect(after.lastLoginAt).toBeNull();
  });
});

describe('attack: owned resources through the body', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await TestApp.start({}, [], { features: [NOTES_FEATURE] });
  });

  afterAll(async () => {
    await t.close();
  });

  for (const collection of ['/api/v1/notes', '/api/v1/todos']) {
    it(`${collection}: a null for a required field, or an owner or id in the body, is a 400, never a 500`, async () => {
      const user = await newUser(t);
      const other = await newUser(t);
      const created = await t.request(collection, {
        method: 'POST',
        token: user.accessToken,
        body: { title: 'mine', ...(collection.endsWith('notes') ? { body: 'x' } : {}) },
      });
      expect(created.status).toBe(201);
      const id = (created.body as { id: number }).id;
      const patch = (body: unknown) =>
        t.request(`${collection}/${id}`, { method: 'PATCH', token: user.accessToken, body });
      for (const body of [{ title: null }, { userId: other.id }, { id: id + 1 }, { user_id: other.id }]) {
        const res = await patch(body);
        expect({ body, status: res.status, code: (res.body as { code?: string }).code }).toEqual({
          body,
          status: 400,
          code: 'VALIDATION_FAILED',
        });
      }
      const empty = await patch({});
      expect(empty.status).toBe(200);
      expect((empty.body as { title: string }).title).toBe('mine');
      const posted = await t.request(collection, {
        method: 'POST',
        token: user.accessToken,
        body: { title: 't', ...(collection.endsWith('notes') ? { body: 'x' } : {}), userId: other.id },
      });
      expect(posted.status).toBe(400);
    });
  }
});

describe('attack: the login pipeline', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await TestApp.start({ AUTH_LOCKOUT_THRESHOLD: '3' });
  });

  afterAll(async () => {
    await t.close();
  });

  // Correct passwords are never counted, not even while in flight (issue 12, item 3).
  it('signs in every one of more parallel correct logins than the lockout threshold', async () => {
    const email = `parallel-${Date.now()}@example.test`;
    const password = 'correct horse battery staple';
    expect(
      (await t.request('/api/v1/auth/register', { method: 'POST', body: { email, password } })).status,
    ).toBe(202);
    await t.dataSource.getRepository(User).update({ email }, { isVerified: true });
    const results = await Promise.all(
      Array.from({ length: 8 }, () =>
        t.request('/api/v1/auth/login', { method: 'POST', body: { email, password } }),
      ),
    );
    expect(results.map((r) => r.status)).toEqual(Array.from({ length: 8 }, () => 200));
  });
});
