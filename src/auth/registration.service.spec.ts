import type { AuditInput, AuditService } from '../audit/audit.service.js';
import type { RequestMeta } from '../common/request-meta.js';
import type { UnitOfWork } from '../database/unit-of-work.js';
import type { DomainEvents } from '../events/domain-events.js';
import type { MailService, MailTemplate } from '../mail/mail.service.js';
import type { TokensService } from '../tokens/tokens.service.js';
import type { User } from '../users/user.entity.js';
import type { UsersService } from '../users/users.service.js';
import { UNUSABLE_PASSWORD_HASH, type PasswordHasher } from './password-hasher.service.js';
import type { PasswordPolicy } from './password.policy.js';
import type { SessionsService } from './sessions.service.js';
import { RegistrationService } from './registration.service.js';

const META: RequestMeta = { ip: '203.0.113.9', userAgent: 'spec', requestId: 'r-1' };

/** Everything the service did, in order, as the fakes saw it. */
type Effect =
  | ['user', string]
  | ['mail', MailTemplate, string]
  | ['audit', string, AuditInput]
  | ['event', string, unknown]
  | ['token', number, string | null]
  | ['password', number, string];

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
      usernameTaken: (username: string) => Promise.resolve(username === 'taken'),
      createUnverified: (email: string, _hash: string, username: string | null) => {
        if (username === 'taken') {
          return Promise.resolve('username_taken' as const);
        }
        const created = user(email, { username });
        users.set(email, created);
        effects.push(['user', email]);
        return Promise.resolve(created);
      },
      setPasswordHash: (id: number, hash: string) => {
        effects.push(['password', id, hash]);
        return Promise.resolve();
      },
      voidUnverifiedPassword: (id: number, hash: string) => {
        effects.push(['password', id, hash]);
        return Promise.resolve(true);
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
      issue: (_purpose: string, userId: number, passwordHash: string | null) => {
        effects.push(['token', userId, passwordHash]);
        return Promise.resolve(`token-for-${userId}`);
      },
    } as unknown as TokensService;
    // The budget, as MailService keeps it: here, one mail of a kind per recipient.
    const spent = new Set<string>();
    const mail = {
      enqueue: async (
        template: MailTemplate,
        to: string,
        data: Record<string, string> | (() => Promise<Record<string, string>>),
      ) => {
        if (spent.has(`${template}:${to}`)) {
          return false;
        }
        spent.add(`${template}:${to}`);
        if (typeof data === 'function') {
          await data();
        }
        effects.push(['mail', template, to]);
        return true;
      },
    } as unknown as MailService;
    const audit = {
      record: (event: string, input: AuditInput) => {
        effects.push(['audit', event, input]);
        return Promise.resolve();
      },
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
    const sessions = { revokeAll: () => Promise.resolve(0) } as unknown as SessionsService;
    sut = new RegistrationService(fakeUsers, hasher, policy, tokens, sessions, mail, audit, events, uow);
  });

  it('should create an unverified account, mail its link and publish user.registered in one unit of work', async () => {
    await sut.register(' New@Example.test ', 'long enough password', undefined, META);
    expect(transactions).toBe(1);
    expect(effects).toEqual([
      ['user', 'new@example.test'],
      ['audit', 'user.registered', { userId: 1, meta: META }],
      ['token', 1, 'hash(long enough password)'],
      ['mail', 'verify-email', 'new@example.test'],
      ['audit', 'email.verification_sent', { userId: 1, actorUserId: undefined, meta: META }],
      ['event', 'user.registered', { userId: 1 }],
    ]);
  });

  it('should hash the password for a known address too, void the account’s, and mail a link carrying the new one', async () => {
    users.set('known@example.test', user('known@example.test'));
    await sut.register('known@example.test', 'another password', undefined, META);
    expect(hashed).toEqual(['another password']);
    expect(effects.filter(([kind]) => kind !== 'audit')).toEqual([
      ['password', 1, UNUSABLE_PASSWORD_HASH],
      ['token', 1, 'hash(another password)'],
      ['mail', 'verify-email', 'known@example.test'],
    ]);
    expect(effects.some(([kind, name]) => kind === 'event' || name === 'user.registered')).toBe(false);
  });

  it('should send a verified owner one account-exists notice per budget, never a new password', async () => {
    users.set('owner@example.test', user('owner@example.test', { isVerified: true }));
    await sut.register('owner@example.test', 'attacker password', undefined, META);
    await sut.register('owner@example.test', 'attacker password', undefined, META);
    const mails = effects.filter(([kind]) => kind === 'mail');
    expect(mails).toEqual([['mail', 'account-exists', 'owner@example.test']]);
    const audits = effects.filter(([kind]) => kind === 'audit').map(([, name, input]) => [name, input]);
    expect(audits).toEqual([
      ['user.register_existing', expect.objectContaining({ metadata: { verified: true, mailed: true } })],
      [
        'mail.suppressed',
        expect.objectContaining({ metadata: { template: 'account-exists', reason: 'budget' } }),
      ],
      ['user.register_existing', expect.objectContaining({ metadata: { verified: true, mailed: false } })],
    ]);
  });

  it('should refuse a taken username with 409 for a new and a known address alike, changing nothing', async () => {
    users.set('known@example.test', user('known@example.test'));
    for (const email of ['x@example.test', 'known@example.test']) {
      await expect(sut.register(email, 'long enough password', 'Taken', META)).rejects.toMatchObject({
        code: 'USERNAME_TAKEN',
      });
    }
    expect(effects).toEqual([]);
  });

  it('should refuse a password the policy rejects before hashing it', async () => {
    await expect(sut.register('x@example.test', 'weak', undefined, META)).rejects.toThrow('weak');
    expect(hashed).toEqual([]);
    expect(effects).toEqual([]);
  });
});
