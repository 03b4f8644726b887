import { AuditEvent } from '../src/audit/audit-event.entity.js';
import { Clock } from '../src/common/clock.js';
import { canonicalMailbox } from '../src/mail/mail-budget.js';
import { OutboxMessage } from '../src/mail/outbox-message.entity.js';
import { User } from '../src/users/user.entity.js';
import { UnverifiedAccountsRetention } from '../src/users/unverified-retention.service.js';
import { auditEvents, comparable, mailsTo, PASSWORD, signUp, SUBJECTS } from './support/accounts.js';
import { createThrowawayDatabase } from './support/database.js';
import { uniqueEmail } from './support/factories.js';
import { SmtpCapture, tokenFrom } from './support/smtp-capture.js';
import { TestApp } from './support/test-app.js';

const api = '/api/v1';
const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

/** The app's clock, moved by the tests instead of sleeping through budget windows. */
class MovableClock extends Clock {
  offsetMs = 0;
  override now(): Date {
    return new Date(Date.now() + this.offsetMs);
  }
}

/**
 * Issue 12: the mailbox owner decides (2), no side channel tells accounts apart (5), a mail budget
 * per recipient (6), and the smaller ones of 8 (disabled accounts' links, purge of unverified
 * accounts, the password policy). Each test replays the attack and checks it now fails.
 */
describe('the mailbox owner decides', () => {
  let t: TestApp;
  let capture: SmtpCapture;
  const clock = new MovableClock();

  beforeAll(async () => {
    capture = await SmtpCapture.start();
    t = await TestApp.start(
      {
        MAIL_URL: capture.url,
        MAIL_POLL_INTERVAL: '50ms',
        MAIL_BUDGET_INTERVAL: '1m',
        MAIL_BUDGET_PER_HOUR: '5',
        // The per-email request throttle is not what these tests are about.
        AUTH_THROTTLE_EMAIL_LIMIT: '1000',
        AUTH_THROTTLE_IP_LIMIT: '10000',
      },
      [],
      { override: (builder) => builder.overrideProvider(Clock).useValue(clock) },
    );
  });

  afterAll(async () => {
    await t.close();
    await capture.stop();
  });

  const post = (path: string, body: unknown) => t.request(`${api}${path}`, { method: 'POST', body });
  const later = (ms = MINUTE + 1000) => {
    clock.offsetMs += ms;
  };
  /** Outbox rows (queued or sent) for every variant of an address's mailbox. */
  const queuedFor = async (email: string, template?: string) => {
    const rows = await t.dataSource.getRepository(OutboxMessage).find();
    return rows.filter(
      (r) =>
        canonicalMailbox(r.recipient) === canonicalMailbox(email) && (!template || r.template === template),
    );
  };
  const userByEmail = (email: string) =>
    t.dataSource.getRepository(User).findOneBy({ email: email.toLowerCase() });

  describe('pre-registration (item 2)', () => {
    it('keeps no password of a stranger who registered the address first', async () => {
      const email = uniqueEmail('operator');
      const attackerPassword = 'attacker picked this one';
      expect((await post('/auth/register', { email, password: attackerPassword })).status).toBe(202);
      await capture.waitFor(() => mailsTo(capture, email, SUBJECTS.verify).length === 1);
      const attackerLink = tokenFrom(mailsTo(capture, email, SUBJECTS.verify)[0]);

      later();
      expect((await post('/auth/register', { email, password: PASSWORD })).status).toBe(202);
      await capture.waitFor(() => mailsTo(capture, email, SUBJECTS.verify).length === 2);
      const ownerLink = tokenFrom(mailsTo(capture, email, SUBJECTS.verify)[1]);
      expect((await post('/auth/verify-email', { token: ownerLink })).status).toBe(200);

      const attacker = await post('/auth/login', { email, password: attackerPassword });
      expect(attacker.status).toBe(401);
      expect(attacker.body.code).toBe('INVALID_CREDENTIALS');
      expect((await post('/auth/login', { email, password: PASSWORD })).status).toBe(200);
      // The stranger's link died with the owner's use of theirs: it cannot set its password now.
      const late = await post('/auth/verify-email', { token: attackerLink });
      expect(late.status).toBe(400);
      expect(late.body.code).toBe('TOKEN_INVALID');
      expect((await post('/auth/login', { email, password: attackerPassword })).status).toBe(401);

      const user = await userByEmail(email);
      const events = (await auditEvents(t, { userId: user!.id })).map((e) => [e.event, e.metadata]);
      expect(events).toEqual(
        expect.arrayContaining([
          ['user.registered', null],
          ['user.register_existing', { verified: false, mailed: true }],
          ['email.verified', { credentialSet: true, sessionsRevoked: 0 }],
        ]),
      );
      const raw = await t.dataSource.query('SELECT password_hash FROM email_verification_tokens');
      expect(JSON.stringify(raw)).not.toContain(PASSWORD);
    });

    it('a resend link after two registrations leaves neither password: the owner resets it', async () => {
      const email = uniqueEmail('contested');
      const attackerPassword = 'attacker picked this one';
      await post('/auth/register', { email, password: attackerPassword });
      later();
      await post('/auth/register', { email, password: PASSWORD });
      later();
      expect((await post('/auth/resend-verification', { email })).status).toBe(202);
      await capture.waitFor(() => mailsTo(capture, email, SUBJECTS.verify).length === 3);
      const resent = tokenFrom(mailsTo(capture, email, SUBJECTS.verify)[2]);
      expect((await post('/auth/verify-email', { token: resent })).status).toBe(200);

      for (const password of [attackerPassword, PASSWORD]) {
        const login = await post('/auth/login', { email, password });
        expect(login.status).toBe(401);
        expect(login.body.code).toBe('INVALID_CREDENTIALS');
      }
      const user = await userByEmail(email);
      const events = await auditEvents(t, { userId: user!.id });
      expect(events.filter((e) => e.event === 'auth.login_failed')).toHaveLength(2);
      const [verified] = events.filter((e) => e.event === 'email.verified');
      expect(verified.metadata).toEqual({ credentialSet: false, sessionsRevoked: 0 });
      // The owner's way in is a reset, which the mailbox decides too.
      expect((await post('/auth/forgot-password', { email })).status).toBe(202);
    });

    it('a resend link carries no password and keeps the account’s', async () => {
      const email = uniqueEmail('resend');
      await post('/auth/register', { email, password: PASSWORD });
      later();
      expect((await post('/auth/resend-verification', { email })).status).toBe(202);
      await capture.waitFor(() => mailsTo(capture, email, SUBJECTS.verify).length === 2);
      const resent = tokenFrom(mailsTo(capture, email, SUBJECTS.verify)[1]);
      expect((await post('/auth/verify-email', { token: resent })).status).toBe(200);
      expect((await post('/auth/login', { email, password: PASSWORD })).status).toBe(200);
      const user = await userByEmail(email);
      const [verified] = await auditEvents(t, { userId: user!.id, event: 'email.verified' });
      expect(verified.metadata).toEqual({ credentialSet: false, sessionsRevoked: 0 });
    });
  });

  describe('no side channel (item 5)', () => {
    it('answers a taken username the same for a known and an unknown email', async () => {
      const username = `handle${Date.now().toString(36)}`;
      const holder = uniqueEmail('holder');
      expect((await post('/auth/register', { email: holder, password: PASSWORD, username })).status).toBe(
        202,
      );
      const known = await signUp(t, capture);
      const forKnown = await post('/auth/register', { email: known.email, password: PASSWORD, username });
      const forUnknown = await post('/auth/register', {
        email: uniqueEmail('new'),
        password: PASSWORD,
        username,
      });
      expect(forKnown.status).toBe(409);
      expect(forUnknown.status).toBe(forKnown.status);
      expect(comparable(forUnknown.body)).toEqual(comparable(forKnown.body));
      expect(forKnown.body.code).toBe('USERNAME_TAKEN');
    });

    it('leaves /health/ready byte-identical after forgot-password for a known and an unknown address', async () => {
      const known = await signUp(t, capture);
      later();
      const before = await t.request('/health/ready');
      expect((await post('/auth/forgot-password', { email: known.email })).status).toBe(202);
      const afterKnown = await t.request('/health/ready');
      expect((await post('/auth/forgot-password', { email: uniqueEmail('nobody') })).status).toBe(202);
      const afterUnknown = await t.request('/health/ready');
      // Only the database ping's own timing may differ; it says nothing about any account.
      const body = (text: string) => text.replace(/"responseTime":\d+/g, '"responseTime":0');
      expect(body(afterKnown.text)).toBe(body(before.text));
      expect(body(afterUnknown.text)).toBe(body(before.text));
      expect(before.text).not.toMatch(/pending|dead|outbox/);
      await expect(queuedFor(known.email, 'reset-password')).resolves.toHaveLength(1);
    });
  });

  describe('mail budget per recipient (item 6)', () => {
    it('30 rapid requests over register, resend and forgot, in case and +tag variants, queue at most the cap', async () => {
      const local = `bomb${Date.now().toString(36)}`;
      const variants = [
        `${local}@example.test`,
        `${local.toUpperCase()}@EXAMPLE.test`,
        `${local}+1@example.test`,
        `${local}+two@Example.Test`,
        `${local}+x@EXAMPLE.TEST`,
      ];
      const requests = Array.from({ length: 30 }, (_, i) => {
        const email = variants[i % variants.length];
        const route = ['/auth/register', '/auth/resend-verification', '/auth/forgot-password'][i % 3];
        return post(route, route === '/auth/register' ? { email, password: PASSWORD } : { email });
      });
      const answers = await Promise.all(requests);
      expect(answers.map((r) => r.status).filter((s) => s !== 202)).toEqual([]);

      const queued = await queuedFor(variants[0]);
      // One of a kind per minute: a verification mail, and no reset (nothing is verified to reset).
      expect(queued.length).toBeGreaterThanOrEqual(1);
      expect(queued.length).toBeLessThanOrEqual(2);
      await new Promise((resolve) => setTimeout(resolve, 500));
      const delivered = capture.messages.filter((m) =>
        m.to && 'value' in m.to
          ? m.to.value.some((a) => canonicalMailbox(a.address ?? '') === canonicalMailbox(variants[0]))
          : false,
      );
      expect(delivered.length).toBeLessThanOrEqual(queued.length);
      const suppressed = await auditEvents(t, { event: 'mail.suppressed' });
      expect(suppressed.length).toBeGreaterThan(0);
      expect(suppressed[0]).toMatchObject({
        outcome: 'failure',
        metadata: { template: 'verify-email', reason: 'budget' },
      });
    });

    it('shares one budget between an IDN domain and its ASCII form', async () => {
      const local = `idn${Date.now().toString(36)}`;
      expect(
        (await post('/auth/register', { email: `${local}@bücher.example`, password: PASSWORD })).status,
      ).toBe(202);
      expect(
        (await post('/auth/register', { email: `${local}@xn--bcher-kva.example`, password: PASSWORD }))
          .status,
      ).toBe(202);
      await expect(queuedFor(`${local}@bücher.example`, 'verify-email')).resolves.toHaveLength(1);
    });

    it('12 concurrent registrations of one unverified address queue one verification mail', async () => {
      const email = uniqueEmail('burst');
      const answers = await Promise.all(
        Array.from({ length: 12 }, () => post('/auth/register', { email, password: PASSWORD })),
      );
      expect(answers.map((r) => r.status)).toEqual(Array(12).fill(202));
      await expect(queuedFor(email, 'verify-email')).resolves.toHaveLength(1);
      const user = await userByEmail(email);
      const suppressed = await auditEvents(t, { userId: user!.id, event: 'mail.suppressed' });
      expect(suppressed).toHaveLength(11);
    });

    it('concurrent registrations of a verified address queue exactly one account-exists mail', async () => {
      const owner = await signUp(t, capture);
      const answers = await Promise.all(
        Array.from({ length: 8 }, () =>
          post('/auth/register', { email: owner.email, password: 'another try at this' }),
        ),
      );
      expect(answers.map((r) => r.status)).toEqual(Array(8).fill(202));
      await expect(queuedFor(owner.email, 'account-exists')).resolves.toHaveLength(1);
      const existing = await auditEvents(t, { userId: owner.id, event: 'user.register_existing' });
      expect(existing.filter((e) => e.metadata?.mailed === true)).toHaveLength(1);
      expect(existing.filter((e) => e.metadata?.mailed === false)).toHaveLength(7);
    });

    it('caps mails of every kind per hour, then lets them through again', async () => {
      const owner = await signUp(t, capture); // the verification mail is the first of five this hour
      for (let i = 0; i < 6; i += 1) {
        later();
        expect((await post('/auth/forgot-password', { email: owner.email })).status).toBe(202);
      }
      await expect(queuedFor(owner.email)).resolves.toHaveLength(5);
      const suppressed = await auditEvents(t, { userId: owner.id, event: 'mail.suppressed' });
      expect(suppressed.map((e) => e.metadata)).toEqual([
        { template: 'reset-password', reason: 'budget' },
        { template: 'reset-password', reason: 'budget' },
      ]);
      later(60 * MINUTE);
      await post('/auth/forgot-password', { email: owner.email });
      await expect(queuedFor(owner.email)).resolves.toHaveLength(6);
    });
  });

  describe('disabled accounts and stale sign-ups (item 8)', () => {
    it('a reset link does not change a disabled account’s password', async () => {
      const account = await signUp(t, capture);
      later();
      await post('/auth/forgot-password', { email: account.email });
      await capture.waitFor(() => mailsTo(capture, account.email, SUBJECTS.reset).length === 1);
      const token = tokenFrom(mailsTo(capture, account.email, SUBJECTS.reset)[0]);
      const users = t.dataSource.getRepository(User);
      await users.update({ id: account.id }, { disabledAt: new Date() });
      const before = await users.findOne({
        where: { id: account.id },
        select: { id: true, passwordHash: true },
      });

      const reset = await post('/auth/reset-password', { token, password: 'a brand new passphrase' });
      expect(reset.status).toBe(400);
      expect(reset.body.code).toBe('TOKEN_INVALID');
      const after = await users.findOne({
        where: { id: account.id },
        select: { id: true, passwordHash: true },
      });
      expect(after!.passwordHash).toBe(before!.passwordHash);
      const [refused] = await auditEvents(t, { userId: account.id, event: 'password.reset_refused' });
      expect(refused).toMatchObject({ outcome: 'failure', metadata: { reason: 'account_disabled' } });
      await expect(auditEvents(t, { userId: account.id, event: 'password.reset' })).resolves.toEqual([]);
    });

    it('a verification link does not verify a disabled account', async () => {
      const email = uniqueEmail('disabled');
      await post('/auth/register', { email, password: PASSWORD });
      await capture.waitFor(() => mailsTo(capture, email, SUBJECTS.verify).length === 1);
      const token = tokenFrom(mailsTo(capture, email, SUBJECTS.verify)[0]);
      const user = await userByEmail(email);
      await t.dataSource.getRepository(User).update({ id: user!.id }, { disabledAt: new Date() });

      const verify = await post('/auth/verify-email', { token });
      expect(verify.status).toBe(400);
      expect(verify.body.code).toBe('TOKEN_INVALID');
      expect((await userByEmail(email))!.isVerified).toBe(false);
      const [refused] = await auditEvents(t, { userId: user!.id, event: 'email.verify_refused' });
      expect(refused).toMatchObject({ outcome: 'failure', metadata: { reason: 'account_disabled' } });
    });

    it('purges accounts left unverified past UNVERIFIED_ACCOUNT_TTL, and only those', async () => {
      const users = t.dataSource.getRepository(User);
      const stale = uniqueEmail('stale');
      const fresh = uniqueEmail('fresh');
      await post('/auth/register', { email: stale, password: PASSWORD });
      await post('/auth/register', { email: fresh, password: PASSWORD });
      const verifiedOld = await signUp(t, capture);
      const staleUser = await userByEmail(stale);
      const eightDaysAgo = new Date(clock.now().getTime() - 8 * DAY);
      await users.update({ id: staleUser!.id }, { createdAt: eightDaysAgo });
      await users.update({ id: verifiedOld.id }, { createdAt: eightDaysAgo });

      await expect(t.app.get(UnverifiedAccountsRetention).purgeExpired()).resolves.toBe(1);
      await expect(userByEmail(stale)).resolves.toBeNull();
      await expect(userByEmail(fresh)).resolves.not.toBeNull();
      await expect(users.findOneBy({ id: verifiedOld.id })).resolves.not.toBeNull();
      const [purged] = await auditEvents(t, { userId: staleUser!.id, event: 'user.purged_unverified' });
      expect(purged.metadata).toEqual({ reason: 'never_verified' });
      // The address is free again.
      later();
      expect((await post('/auth/register', { email: stale, password: PASSWORD })).status).toBe(202);
      await expect(userByEmail(stale)).resolves.not.toBeNull();
    });

    it.each([
      ['eight NULs', '\u0000'.repeat(8)],
      ['eight spaces', ' '.repeat(8)],
      ['eight zero-width spaces', '\u200b'.repeat(8)],
      ['the alphabet in order', 'abcdefghijkl'],
      ['a keyboard row', 'qwertyuiopasdf'],
      ['the service’s name', 'gatehouse2026'],
      ['a lone surrogate', '\ud800violet kettle'],
    ])('refuses %s as a password with 400 VALIDATION_FAILED and creates nothing', async (_name, password) => {
      const email = uniqueEmail('policy');
      const answer = await post('/auth/register', { email, password });
      expect(answer.status).toBe(400);
      expect(answer.headers.get('content-type')).toContain('application/problem+json');
      expect(answer.body.code).toBe('VALIDATION_FAILED');
      await expect(userByEmail(email)).resolves.toBeNull();
    });
  });
});

describe('the mail budget across two app instances without Redis (item 6)', () => {
  it('two instances on one database queue one mail of a kind for one mailbox, however the requests split', async () => {
    const database = await createThrowawayDatabase();
    const env = {
      MAIL_POLL_INTERVAL: '1h',
      AUTH_THROTTLE_EMAIL_LIMIT: '1000',
      AUTH_THROTTLE_IP_LIMIT: '10000',
    };
    const a = await TestApp.start(env, [], { database });
    const b = await TestApp.start(env, [], { database });
    try {
      const local = `twin${Date.now().toString(36)}`;
      const email = `${local}@example.test`;
      const answers = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          (i % 2 === 0 ? a : b).request(`${api}/auth/register`, {
            method: 'POST',
            body: { email: i % 3 === 0 ? email : `${local}+${i}@Example.TEST`, password: PASSWORD },
          }),
        ),
      );
      expect(answers.map((r) => r.status)).toEqual(Array(12).fill(202));
      const rows = await a.dataSource.getRepository(OutboxMessage).find();
      const queued = rows.filter((r) => canonicalMailbox(r.recipient) === canonicalMailbox(email));
      expect(queued.map((r) => r.template)).toEqual(['verify-email']);
      const suppressed = await a.dataSource.getRepository(AuditEvent).countBy({ event: 'mail.suppressed' });
      expect(suppressed).toBe(11);
    } finally {
      await a.close();
      await b.close();
      await database.drop();
    }
  });
});
