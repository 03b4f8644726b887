import type { ConfigService } from '@nestjs/config';
import type { AuditInput, AuditService } from '../audit/audit.service.js';
import type { RequestMeta } from '../common/request-meta.js';
import type { Config } from '../config/config.js';
import type { UnitOfWork } from '../database/unit-of-work.js';
import type { DomainEvents } from '../events/domain-events.js';
import type { MailService, MailTemplate } from '../mail/mail.service.js';
import type { TokensService } from '../tokens/tokens.service.js';
import type { User } from '../users/user.entity.js';
import type { UsersService } from '../users/users.service.js';
import type { PasswordHasher } from './password-hasher.service.js';
import type { PasswordPolicy } from './password.policy.js';
import { RegistrationService } from './registration.service.js';

const META: RequestMeta = { ip: '203.0.113.9', userAgent: 'spec', requestId: 'r-1' };
const WINDOW_MS = 3600_000;

/** Everything the service did, in order, as the fakes saw it. */
type Effect =
  | ['user', string]
  | ['mail', MailTemplate, string]
  | ['audit', string, AuditInput]
  | ['event', string, unknown]
  | ['token', number];

describe(RegistrationService.name, () => {
  let sut: RegistrationService;
  let users: Map<string, User>;
  let effects: Effect[];
  let transactions: number;
  let hashed: string[];

  const user = (email: string, changes: Partial<User> = {}): User =>
    ({ id: users.size + 1, email, username: null, isVerified: false, disabledAt: null, ...changes }) as User;

  beforeEach(() => {
    users = new Map();
    effects = [];
    transactions = 0;
    hashed = [];
    const fakeUsers = {
      findByEmail: (email: string) => Promise.resolve(users.get(email.trim().toLowerCase()) ?? null),
      createUnverified: (email: string, _hash: string, username: string | null) => {
        if (username === 'taken') {
          return Promise.resolve('username_taken' as const);
        }
        const created = user(email, { username });
        users.set(email, created);
        effects.push(['user', email]);
        return Promise.resolve(created);
      },
    } as unknown as UsersService;
    const hasher = {
      hash: (password: string) => {
        hashed.push(password);
        return Promise.resolve(`hash(${password})`);
      },
    } as unknown as PasswordHasher;
    const policy = {
      assertAcceptable: (password: string) => {
        if (password === 'weak') {
          throw Object.assign(new Error('weak'), { code: 'VALIDATION_FAILED' });
        }
      },
    } as unknown as PasswordPolicy;
    const tokens = {
      issue: (_purpose: string, userId: number) => {
        effects.push(['token', userId]);
        return Promise.resolve(`token-for-${userId}`);
      },
    } as unknown as TokensService;
    const mail = {
      enqueue: (template: MailTemplate, to: string) => {
        effects.push(['mail', template, to]);
        return Promise.resolve();
      },
    } as unknown as MailService;
    const recorded: { event: string; userId: number; at: number; mailed: unknown }[] = [];
    const audit = {
      record: (event: string, input: AuditInput) => {
        effects.push(['audit', event, input]);
        recorded.push({ event, userId: input.userId ?? 0, at: Date.now(), mailed: input.metadata?.mailed });
        return Promise.resolve();
      },
      hasRecent: (event: string, userId: number, since: Date, metadata: { mailed?: boolean }) =>
        Promise.resolve(
          recorded.some(
            (r) =>
              r.event === event &&
              r.userId === userId &&
              r.at >= since.getTime() &&
              r.mailed === metadata.mailed,
          ),
        ),
    } as unknown as AuditService;
    const events = {
      publish: (name: string, payload: unknown) => {
        effects.push(['event', name, payload]);
      },
    } as unknown as DomainEvents;
    const uow = {
      withTransaction: (fn: () => Promise<unknown>) => {
        transactions += 1;
        return fn();
      },
    } as unknown as UnitOfWork;
    const config = {
      getOrThrow: () => ({ accountExistsMailWindowMs: WINDOW_MS }),
    } as unknown as ConfigService<Config, true>;
    sut = new RegistrationService(
      fakeUsers,
      hasher,
      policy,
      tokens,
      mail,
      audit,
      { now: () => new Date() },
      events,
      uow,
      config,
    );
  });

  it('should create an unverified account, mail its link and publish user.registered in one unit of work', async () => {
    await sut.register(' New@Example.test ', 'long enough password', undefined, META);
    expect(transactions).toBe(1);
    expect(effects).toEqual([
      ['user', 'new@example.test'],
      ['token', 1],
      ['mail', 'verify-email', 'new@example.test'],
      ['audit', 'user.registered', { userId: 1, meta: META }],
      ['audit', 'email.verification_sent', { userId: 1, meta: META }],
      ['event', 'user.registered', { userId: 1 }],
    ]);
  });

  it('should hash the password for a known address too, and mail its owner a fresh link', async () => {
    users.set('known@example.test', user('known@example.test'));
    await sut.register('known@example.test', 'another password', undefined, META);
    expect(hashed).toEqual(['another password']);
    expect(effects.filter(([kind]) => kind !== 'audit')).toEqual([
      ['token', 1],
      ['mail', 'verify-email', 'known@example.test'],
    ]);
    expect(effects.some(([kind, name]) => kind === 'event' || name === 'user.registered')).toBe(false);
  });

  it('should send a verified owner one account-exists notice per window, never a new password', async () => {
    users.set('owner@example.test', user('owner@example.test', { isVerified: true }));
    await sut.register('owner@example.test', 'attacker password', undefined, META);
    await sut.register('owner@example.test', 'attacker password', undefined, META);
    const mails = effects.filter(([kind]) => kind === 'mail');
    expect(mails).toEqual([['mail', 'account-exists', 'owner@example.test']]);
    const audits = effects.filter(([kind]) => kind === 'audit').map(([, name, input]) => [name, input]);
    expect(audits).toEqual([
      ['user.register_existing', expect.objectContaining({ metadata: { verified: true, mailed: true } })],
      ['user.register_existing', expect.objectContaining({ metadata: { verified: true, mailed: false } })],
    ]);
  });

  it('should refuse a taken username with 409 and change nothing', async () => {
    await expect(sut.register('x@example.test', 'long enough password', 'Taken', META)).rejects.toMatchObject(
      {
        code: 'USERNAME_TAKEN',
      },
    );
    expect(effects).toEqual([]);
  });

  it('should refuse a password the policy rejects before hashing it', async () => {
    await expect(sut.register('x@example.test', 'weak', undefined, META)).rejects.toThrow('weak');
    expect(hashed).toEqual([]);
    expect(effects).toEqual([]);
  });
});
