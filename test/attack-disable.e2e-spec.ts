import { AccountService } from '../src/auth/account.service.js';
import { MfaService } from '../src/auth/mfa/mfa.service.js';
import { RecoveryCode } from '../src/auth/mfa/recovery-code.entity.js';
import { totpCode } from '../src/auth/mfa/totp.js';
import { PasswordChangeService } from '../src/auth/password-change.service.js';
import { Clock } from '../src/common/clock.js';
import { OutboxMessage } from '../src/mail/outbox-message.entity.js';
import { TodosRepository } from '../src/todos/todos.repository.js';
import { User } from '../src/users/user.entity.js';
import { UsersService } from '../src/users/users.service.js';
import { type Account, auditEvents, enrolTotp as enrolTotpFor, logIn, signUp } from './support/accounts.js';
import type { SeededUser } from './support/factories.js';
import type { SmtpCapture } from './support/smtp-capture.js';
import { releaseRaces, startRaceApp, stopRaceApp } from './support/race-app.js';
import { holdAfter, statusOf, tally, tracked, within } from './support/race.js';
import { TestApp } from './support/test-app.js';

/**
 * Attacks on DELETE /auth/mfa/totp now that it spends its code inside the unit of work that holds
 * the account's row (AccountService.whileStillProved), on the hold that no longer stamps updated_at,
 * and on the millisecond updated_at of every UPDATE. Each race is made certain with a gate inside a
 * real call; every check also asserts the audit rows (and notice mails) the race leaves.
 */

const API = '/api/v1';
const OWNER_NEW = 'the owner changes it to this passphrase';
const STEP = 30_000;

interface Enrolled extends Account {
  secret: string;
  recoveryCodes: string[];
  accessToken: string;
}

describe('attack: turning TOTP off', () => {
  let t: TestApp;
  let capture: SmtpCapture;
  let admin: SeededUser;
  let now: number;

  beforeAll(async () => {
    ({ t, capture, admin } = await startRaceApp());
  });

  afterAll(() => stopRaceApp({ t, capture, admin }));

  /** The app's clock, stepped by the tests: a TOTP code is accepted once per step. */
  beforeEach(() => {
    now = Math.floor(Date.now() / STEP) * STEP + 1000;
    jest.spyOn(t.app.get(Clock), 'now').mockImplementation(() => new Date(now));
  });

  afterEach(releaseRaces);

  const tick = (ms = STEP) => {
    now += ms;
  };
  const code = (secret: string) => totpCode(secret, now);

  const login = (email: string, password: string) =>
    t.request(`${API}/auth/login`, { method: 'POST', body: { email, password } });

  const loginMfa = (body: Record<string, unknown>) =>
    t.request(`${API}/auth/login/mfa`, { method: 'POST', body });

  const disable = (token: string, password: string, totpOrRecovery: string) =>
    t.request(`${API}/auth/mfa/totp`, {
      method: 'DELETE',
      body: { password, code: totpOrRecovery },
      token,
    });

  const changePassword = (token: string, currentPassword: string, newPassword: string) =>
    t.request(`${API}/users/me/password`, { method: 'PUT', body: { currentPassword, newPassword }, token });

  const resetByAdmin = (userId: number) =>
    t.request(`${API}/admin/users/${userId}/mfa/reset`, { method: 'POST', token: admin.accessToken });

  const userRow = (id: number) => t.dataSource.getRepository(User).findOneByOrFail({ id });

  const disabledNotices = (email: string) =>
    t.dataSource.getRepository(OutboxMessage).countBy({ template: 'mfa-disabled', recipient: email });

  const unusedRecoveryCodes = async (userId: number) =>
    (await t.dataSource.getRepository(RecoveryCode).findBy({ userId })).filter((c) => c.usedAt === null)
      .length;

  const events = async (event: string, userId: number) => auditEvents(t, { event, userId });

  const mfaFailures = async (userId: number) =>
    (await events('auth.mfa_failed', userId)).map((e) => e.metadata);

  /** A verified account with TOTP on (through the API) and a session from before it was turned on. */
  async function enrolled(): Promise<Enrolled> {
    const account = await signUp(t, capture);
    const own = await logIn(t, account);
    const { secret, recoveryCodes } = await enrolTotpFor(t, own.accessToken);
    // enrolTotp's code was of the real clock's step, at most one step past ours: move past both.
    tick(2 * STEP);
    return { ...account, secret, recoveryCodes, accessToken: own.accessToken };
  }

  /** Holds the next password check of a disable (or of anything else) once it found the password right. */
  const holdNextPasswordProof = () =>
    tracked(holdAfter(t.app.get(AccountService), 'verifiedCaller', { once: true }));

  describe('two disables at once', () => {
    it.each([
      ['the same recovery code', (a: Enrolled) => a.recoveryCodes[0]],
      ['the same TOTP code', (a: Enrolled) => code(a.secret)],
    ])(
      'with %s: one turns TOTP off, the other answers 400 MFA_NOT_ENABLED; one mfa.disabled row and one notice',
      async (_label, pick) => {
        const account = await enrolled();
        const used = pick(account);
        // Both get past the password check, then the first holds the row with its code spent.
        const proofs = tracked(holdAfter(t.app.get(AccountService), 'verifiedCaller'));
        const first = disable(account.accessToken, account.password, used);
        const second = disable(account.accessToken, account.password, used);
        await proofs.reached(2);
        const spent = tracked(holdAfter(t.app.get(MfaService), 'spend', { once: true }));
        proofs.open();
        await spent.reached(1);
        // The other waits for the row (MariaDB) or the unit of work (SQLite): it cannot overtake.
        expect(await within(Promise.race([first, second]), 300)).toBeUndefined();
        spent.open();
        const answers = await Promise.all([first, second]);

        expect(tally(answers.map(statusOf))).toEqual({ '204': 1, '400 MFA_NOT_ENABLED': 1 });
        expect(await events('mfa.disabled', account.id)).toHaveLength(1);
        expect(await disabledNotices(account.email)).toBe(1);
        expect(await mfaFailures(account.id)).toEqual([]);
        expect(await events('mfa.disable_failed', account.id)).toHaveLength(0);
        const recovered = await events('auth.recovery_code_used', account.id);
        expect(recovered).toHaveLength(used === account.recoveryCodes[0] ? 1 : 0);
        expect((await userRow(account.id)).totpEnabledAt).toBeNull();
      },
    );
  });

  describe('disable racing a re-enrolment', () => {
    it('does not turn off the new authenticator with a code of the old one, proved before the re-enrolment', async () => {
      const account = await enrolled();
      const oldCode = code(account.secret);
      const proof = holdNextPasswordProof();
      const racing = disable(account.accessToken, account.password, oldCode);
      await proof.reached(1);

      // The owner replaces the authenticator meanwhile (its current code a recovery code).
      const setup = await t.request(`${API}/auth/mfa/totp/setup`, {
        method: 'POST',
        token: account.accessToken,
      });
      expect(setup.status).toBe(200);
      const newSecret = setup.body.secret as string;
      const confirmed = await t.request(`${API}/auth/mfa/totp/confirm`, {
        method: 'POST',
        body: { code: code(newSecret), currentCode: account.recoveryCodes[0] },
        token: account.accessToken,
      });
      expect(confirmed.status).toBe(200);
      proof.open();
      const answer = await racing;

      expect(statusOf(answer)).toBe('401 MFA_INVALID');
      const row = await t.dataSource
        .getRepository(User)
        .createQueryBuilder('u')
        .addSelect('u.totpSecret')
        .where('u.id = :id', { id: account.id })
        .getOneOrFail();
      expect(row.totpEnabledAt).not.toBeNull();
      expect(await events('mfa.disabled', account.id)).toHaveLength(0);
      expect((await events('mfa.enabled', account.id)).map((e) => e.metadata?.rekeyed)).toEqual([
        false,
        true,
      ]);
      expect(await mfaFailures(account.id)).toEqual([{ context: 'disable', reason: 'code_invalid' }]);
      expect(await unusedRecoveryCodes(account.id)).toBe(10);
      expect(await disabledNotices(account.email)).toBe(0);
    });

    it('does not bring TOTP back: a re-enrolment whose current code was spent before a disable committed fails', async () => {
      const account = await enrolled();
      const setup = await t.request(`${API}/auth/mfa/totp/setup`, {
        method: 'POST',
        token: account.accessToken,
      });
      const newSecret = setup.body.secret as string;
      // The confirmation has checked the new code and spent its current code, then waits.
      const spent = tracked(holdAfter(t.app.get(MfaService), 'spend', { once: true }));
      const confirming = t.request(`${API}/auth/mfa/totp/confirm`, {
        method: 'POST',
        body: { code: code(newSecret), currentCode: account.recoveryCodes[0] },
        token: account.accessToken,
      });
      await spent.reached(1);
      expect(statusOf(await disable(account.accessToken, account.password, account.recoveryCodes[1]))).toBe(
        '204',
      );
      spent.open();
      const confirmed = await confirming;

      expect(statusOf(confirmed)).toBe('400 MFA_CODE_INVALID');
      expect((await userRow(account.id)).totpEnabledAt).toBeNull();
      expect(await t.dataSource.getRepository(RecoveryCode).countBy({ userId: account.id })).toBe(0);
      expect(await events('mfa.enabled', account.id)).toHaveLength(1);
      expect((await events('mfa.disabled', account.id)).map((e) => e.metadata)).toEqual([
        { via: 'recovery_code' },
      ]);
      expect(await disabledNotices(account.email)).toBe(1);
    });
  });

  describe('disable racing an operator reset', () => {
    it('records one mfa.disabled and mails one notice when a disable commits while a reset is under way', async () => {
      const account = await enrolled();
      // The reset has held and read the account (TOTP on) in its unit of work, then waits.
      const read = tracked(
        holdAfter(t.app.get(UsersService), 'findById', {
          once: true,
          when: (id) => Number(id) === account.id,
        }),
      );
      const resetting = resetByAdmin(account.id);
      await read.reached(1);
      const disabling = disable(account.accessToken, account.password, account.recoveryCodes[0]);
      // The reset holds the account's row, so the disable waits for it on both databases (before the
      // operator's actions held the row, MariaDB let the disable through and the reset acted on a copy).
      await within(disabling, 1000);
      read.open();
      const [reset, disabled] = await Promise.all([resetting, disabling]);

      expect(statusOf(reset)).toBe('204');
      expect(['204', '400 MFA_NOT_ENABLED']).toContain(statusOf(disabled));
      expect((await userRow(account.id)).totpEnabledAt).toBeNull();
      const off = (await events('mfa.disabled', account.id)).map((e) => e.metadata?.via);
      const [audited] = await events('admin.mfa_reset', account.id);
      // One of them turned TOTP off: one row, one notice, and the reset says TOTP was on only if it did.
      expect({
        disabled: off,
        notices: await disabledNotices(account.email),
        wasEnabled: audited.metadata?.wasEnabled,
      }).toEqual(
        statusOf(disabled) === '204'
          ? { disabled: ['recovery_code'], notices: 1, wasEnabled: false }
          : { disabled: ['operator'], notices: 1, wasEnabled: true },
      );
    });

    it('records one mfa.disabled and mails one notice when a reset arrives while a disable holds the row', async () => {
      const account = await enrolled();
      // The disable holds the account's row with its code spent; the reset is not held anywhere.
      const spent = tracked(holdAfter(t.app.get(MfaService), 'spend', { once: true }));
      const disabling = disable(account.accessToken, account.password, account.recoveryCodes[0]);
      await spent.reached(1);
      const resetting = resetByAdmin(account.id);
      expect(await within(resetting, 300)).toBeUndefined();
      spent.open();
      const [disabled, reset] = await Promise.all([disabling, resetting]);

      expect([statusOf(disabled), statusOf(reset)]).toEqual(['204', '204']);
      expect({
        disabled: (await events('mfa.disabled', account.id)).map((e) => e.metadata?.via),
        notices: await disabledNotices(account.email),
        wasEnabled: (await events('admin.mfa_reset', account.id)).map((e) => e.metadata?.wasEnabled),
      }).toEqual({ disabled: ['recovery_code'], notices: 1, wasEnabled: [false] });
    });

    it('never turns TOTP off silently: a reset that read the account before TOTP was confirmed audits and mails what it turns off', async () => {
      const account = await signUp(t, capture);
      const own = await logIn(t, account);
      const setup = await t.request(`${API}/auth/mfa/totp/setup`, { method: 'POST', token: own.accessToken });
      const secret = setup.body.secret as string;
      // The reset has held and read the account (TOTP still off) in its unit of work, then waits.
      const read = tracked(
        holdAfter(t.app.get(UsersService), 'findById', {
          once: true,
          when: (id) => Number(id) === account.id,
        }),
      );
      const resetting = resetByAdmin(account.id);
      await read.reached(1);
      const confirming = t.request(`${API}/auth/mfa/totp/confirm`, {
        method: 'POST',
        body: { code: code(secret) },
        token: own.accessToken,
      });
      await within(confirming, 1000);
      read.open();
      const [reset, confirmed] = await Promise.all([resetting, confirming]);

      expect(statusOf(reset)).toBe('204');
      expect(['200', '400 MFA_CODE_INVALID', '400 MFA_SETUP_REQUIRED']).toContain(statusOf(confirmed));
      const on = (await userRow(account.id)).totpEnabledAt !== null;
      const enabled = await events('mfa.enabled', account.id);
      const off = (await events('mfa.disabled', account.id)).map((e) => e.metadata?.via);
      // Turned on and then off by the operator: both audited, the owner told of both; or never on at all.
      expect({ on, enabled: enabled.length, off, notices: await disabledNotices(account.email) }).toEqual(
        enabled.length === 1
          ? { on: false, enabled: 1, off: ['operator'], notices: 1 }
          : { on: false, enabled: 0, off: [], notices: 0 },
      );
    });

    it('answers 400 MFA_NOT_ENABLED and spends nothing when a reset committed after the password was checked', async () => {
      const account = await enrolled();
      const proof = holdNextPasswordProof();
      const racing = disable(account.accessToken, account.password, account.recoveryCodes[0]);
      await proof.reached(1);
      expect(statusOf(await resetByAdmin(account.id))).toBe('204');
      proof.open();

      expect(statusOf(await racing)).toBe('400 MFA_NOT_ENABLED');
      expect((await events('mfa.disabled', account.id)).map((e) => e.metadata)).toEqual([
        { via: 'operator' },
      ]);
      expect(await events('auth.recovery_code_used', account.id)).toHaveLength(0);
      expect(await mfaFailures(account.id)).toEqual([]);
      expect(await events('mfa.disable_failed', account.id)).toHaveLength(0);
      expect(await disabledNotices(account.email)).toBe(1);
    });
  });

  describe('disable racing a password change', () => {
    it('leaves a TOTP code unspent when the password changed after the disable checked it', async () => {
      const account = await enrolled();
      const used = code(account.secret);
      const proof = holdNextPasswordProof();
      const racing = disable(account.accessToken, account.password, used);
      await proof.reached(1);
      expect(statusOf(await changePassword(account.accessToken, account.password, OWNER_NEW))).toBe('204');
      proof.open();

      expect(statusOf(await racing)).toBe('401 INVALID_PASSWORD');
      expect((await userRow(account.id)).totpEnabledAt).not.toBeNull();
      expect((await events('mfa.disable_failed', account.id)).map((e) => e.metadata?.reason)).toEqual([
        'credentials_changed',
      ]);
      expect(await mfaFailures(account.id)).toEqual([]);
      expect(await events('mfa.disabled', account.id)).toHaveLength(0);
      // The very same code (same time step) still signs the owner in.
      const first = await login(account.email, OWNER_NEW);
      expect(first.body.mfaRequired).toBe(true);
      expect(statusOf(await loginMfa({ mfaToken: first.body.mfaToken, code: used }))).toBe('200');
    });

    it('turns TOTP off, and the change still applies, when the change had checked the password first', async () => {
      const account = await enrolled();
      const hashed = tracked(holdAfter(t.app.get(PasswordChangeService), 'hashAcceptable', { once: true }));
      const changing = changePassword(account.accessToken, account.password, OWNER_NEW);
      await hashed.reached(1);
      expect(statusOf(await disable(account.accessToken, account.password, account.recoveryCodes[0]))).toBe(
        '204',
      );
      hashed.open();

      expect(statusOf(await changing)).toBe('204');
      expect((await events('mfa.disabled', account.id)).map((e) => e.metadata)).toEqual([
        { via: 'recovery_code' },
      ]);
      expect(await events('password.changed', account.id)).toHaveLength(1);
      expect(await events('mfa.disable_failed', account.id)).toHaveLength(0);
      const plain = await login(account.email, OWNER_NEW);
      expect(plain.status).toBe(200);
      expect(plain.body.accessToken).toEqual(expect.any(String));
    });

    it('makes a password change wait for a disable that holds the row with its code spent; both apply', async () => {
      const account = await enrolled();
      const spent = tracked(holdAfter(t.app.get(MfaService), 'spend', { once: true }));
      const disabling = disable(account.accessToken, account.password, account.recoveryCodes[0]);
      await spent.reached(1);
      const changing = changePassword(account.accessToken, account.password, OWNER_NEW);
      expect(await within(changing, 300)).toBeUndefined();
      spent.open();
      const [disabled, changed] = await Promise.all([disabling, changing]);

      expect([statusOf(disabled), statusOf(changed)]).toEqual(['204', '204']);
      expect(await events('mfa.disabled', account.id)).toHaveLength(1);
      expect(await events('password.changed', account.id)).toHaveLength(1);
      expect(await events('mfa.disable_failed', account.id)).toHaveLength(0);
      expect(await events('password.change_failed', account.id)).toHaveLength(0);
      expect(await disabledNotices(account.email)).toBe(1);
    });
  });

  describe('disable racing an operator disabling the account', () => {
    it('refuses with INVALID_PASSWORD (account_disabled) and leaves the recovery code unspent', async () => {
      const account = await enrolled();
      const proof = holdNextPasswordProof();
      const racing = disable(account.accessToken, account.password, account.recoveryCodes[0]);
      await proof.reached(1);
      const adminPost = (path: string) =>
        t.request(`${API}/admin/users/${account.id}/${path}`, { method: 'POST', token: admin.accessToken });
      expect(statusOf(await adminPost('disable'))).toBe('204');
      proof.open();

      expect(statusOf(await racing)).toBe('401 INVALID_PASSWORD');
      expect((await events('mfa.disable_failed', account.id)).map((e) => e.metadata?.reason)).toEqual([
        'account_disabled',
      ]);
      expect(await events('mfa.disabled', account.id)).toHaveLength(0);
      expect(await events('auth.recovery_code_used', account.id)).toHaveLength(0);
      expect(await unusedRecoveryCodes(account.id)).toBe(10);
      expect(statusOf(await adminPost('enable'))).toBe('204');
      const first = await login(account.email, account.password);
      expect(
        statusOf(await loginMfa({ mfaToken: first.body.mfaToken, recoveryCode: account.recoveryCodes[0] })),
      ).toBe('200');
    });
  });

  describe('a wrong code while a password change is in flight', () => {
    it('audits only the stale proof when the change committed before the code was looked at', async () => {
      const account = await enrolled();
      const proof = holdNextPasswordProof();
      const racing = disable(account.accessToken, account.password, '000000');
      await proof.reached(1);
      expect(statusOf(await changePassword(account.accessToken, account.password, OWNER_NEW))).toBe('204');
      proof.open();

      expect(statusOf(await racing)).toBe('401 INVALID_PASSWORD');
      expect((await events('mfa.disable_failed', account.id)).map((e) => e.metadata?.reason)).toEqual([
        'credentials_changed',
      ]);
      expect(await mfaFailures(account.id)).toEqual([]);
      expect(await events('password.changed', account.id)).toHaveLength(1);
    });

    it('commits the wrong code’s auth.mfa_failed while the change waits, then lets the change apply', async () => {
      const account = await enrolled();
      const spent = tracked(holdAfter(t.app.get(MfaService), 'spend', { once: true }));
      const disabling = disable(account.accessToken, account.password, '000000');
      await spent.reached(1);
      const changing = changePassword(account.accessToken, account.password, OWNER_NEW);
      expect(await within(changing, 300)).toBeUndefined();
      spent.open();
      const [disabled, changed] = await Promise.all([disabling, changing]);

      expect([statusOf(disabled), statusOf(changed)]).toEqual(['401 MFA_INVALID', '204']);
      expect(await mfaFailures(account.id)).toEqual([{ context: 'disable', reason: 'code_invalid' }]);
      expect(await events('mfa.disable_failed', account.id)).toHaveLength(0);
      expect(await events('password.changed', account.id)).toHaveLength(1);
      expect((await userRow(account.id)).totpEnabledAt).not.toBeNull();
    });
  });

  describe('disable racing a sign-in with a recovery code', () => {
    it('lets the same recovery code work once: a login that spent it first wins, the disable is refused', async () => {
      const account = await enrolled();
      const first = await login(account.email, account.password);
      const spent = tracked(holdAfter(t.app.get(MfaService), 'spend', { once: true }));
      const signingIn = loginMfa({ mfaToken: first.body.mfaToken, recoveryCode: account.recoveryCodes[0] });
      await spent.reached(1);
      const disabling = disable(account.accessToken, account.password, account.recoveryCodes[0]);
      expect(await within(disabling, 300)).toBeUndefined();
      spent.open();
      const [signedIn, disabled] = await Promise.all([signingIn, disabling]);

      expect([statusOf(signedIn), statusOf(disabled)]).toEqual(['200', '401 MFA_INVALID']);
      expect(await events('auth.recovery_code_used', account.id)).toHaveLength(1);
      expect(await events('mfa.disabled', account.id)).toHaveLength(0);
      expect(await mfaFailures(account.id)).toEqual([
        { context: 'disable', reason: 'recovery_code_invalid' },
      ]);
      expect((await userRow(account.id)).totpEnabledAt).not.toBeNull();
    });

    it('lets the same recovery code work once: a disable that spent it first wins, the login is refused', async () => {
      const account = await enrolled();
      const first = await login(account.email, account.password);
      const spent = tracked(holdAfter(t.app.get(MfaService), 'spend', { once: true }));
      const disabling = disable(account.accessToken, account.password, account.recoveryCodes[0]);
      await spent.reached(1);
      const signingIn = loginMfa({ mfaToken: first.body.mfaToken, recoveryCode: account.recoveryCodes[0] });
      expect(await within(signingIn, 300)).toBeUndefined();
      spent.open();
      const [disabled, signedIn] = await Promise.all([disabling, signingIn]);

      expect(statusOf(disabled)).toBe('204');
      expect(statusOf(signedIn)).toBe('401 MFA_INVALID');
      expect(signedIn.body.accessToken).toBeUndefined();
      expect(await events('auth.recovery_code_used', account.id)).toHaveLength(1);
      expect(await events('mfa.disabled', account.id)).toHaveLength(1);
    });

    it('never deadlocks or answers 500 when a login holds one recovery code while a disable spends another', async () => {
      const account = await enrolled();
      const first = await login(account.email, account.password);
      const spent = tracked(holdAfter(t.app.get(MfaService), 'spend', { once: true }));
      const signingIn = loginMfa({ mfaToken: first.body.mfaToken, recoveryCode: account.recoveryCodes[0] });
      await spent.reached(1);
      const disabling = disable(account.accessToken, account.password, account.recoveryCodes[1]);
      await within(disabling, 300);
      spent.open();
      const [signedIn, disabled] = await Promise.all([signingIn, disabling]);

      expect([statusOf(signedIn), statusOf(disabled)]).toEqual(['200', '204']);
      expect(await events('auth.recovery_code_used', account.id)).toHaveLength(2);
      expect(await events('mfa.disabled', account.id)).toHaveLength(1);
      expect(await t.dataSource.getRepository(RecoveryCode).countBy({ userId: account.id })).toBe(0);
    });
  });

  describe('after TOTP is off', () => {
    it('answers 400 MFA_NOT_ENABLED and writes nothing: no audit row, no mail, the row untouched', async () => {
      const account = await enrolled();
      expect(statusOf(await disable(account.accessToken, account.password, account.recoveryCodes[0]))).toBe(
        '204',
      );
      await t.dataSource
        .getRepository(User)
        .update({ id: account.id }, { updatedAt: new Date('2020-01-01') });
      const before = await userRow(account.id);
      const audited = (await auditEvents(t, { userId: account.id })).length;
      const mails = await disabledNotices(account.email);

      for (const attempt of [account.recoveryCodes[1], code(account.secret), '000000']) {
        expect(statusOf(await disable(account.accessToken, account.password, attempt))).toBe(
          '400 MFA_NOT_ENABLED',
        );
      }
      expect(await userRow(account.id)).toEqual(before);
      expect(await auditEvents(t, { userId: account.id })).toHaveLength(audited);
      expect(await disabledNotices(account.email)).toBe(mails);
    });
  });

  describe('updated_at', () => {
    it('is not moved by the hold a sign-in’s first step takes on a TOTP account', async () => {
      const account = await enrolled();
      await t.dataSource
        .getRepository(User)
        .update({ id: account.id }, { updatedAt: new Date('2020-01-01') });
      const before = await userRow(account.id);
      const first = await login(account.email, account.password);
      expect(first.body.mfaRequired).toBe(true);
      expect(await userRow(account.id)).toEqual(before);
    });

    it('is stamped to the millisecond when a disable turns TOTP off', async () => {
      const account = await enrolled();
      const started = Date.now();
      expect(statusOf(await disable(account.accessToken, account.password, account.recoveryCodes[0]))).toBe(
        '204',
      );
      const row = await userRow(account.id);
      // A whole-second stamp would fall up to 999 ms before the request started.
      expect(row.updatedAt.getTime()).toBeGreaterThanOrEqual(started - 2);
      expect(row.updatedAt.getTime()).toBeGreaterThanOrEqual(row.createdAt.getTime());
    });

    it('a todo PATCH racing another PATCH: both 200, never before createdAt, the later one stamped last', async () => {
      const account = await signUp(t, capture);
      const own = await logIn(t, account);
      const todos = `${API}/todos`;
      for (let round = 0; round < 3; round += 1) {
        const created = await t.request(todos, {
          method: 'POST',
          body: { title: 'start' },
          token: own.accessToken,
        });
        expect(created.status).toBe(201);
        const path = `${todos}/${created.body.id}`;
        const held = tracked(holdAfter(t.app.get(TodosRepository), 'updateOwned', { once: true }));
        const a = t.request(path, { method: 'PATCH', body: { title: 'a' }, token: own.accessToken });
        await held.reached(1);
        const b = t.request(path, {
          method: 'PATCH',
          body: { title: 'b', completed: true },
          token: own.accessToken,
        });
        expect(await within(b, 200)).toBeUndefined();
        held.open();
        const [first, second] = await Promise.all([a, b]);

        expect([first.status, second.status]).toEqual([200, 200]);
        const createdAt = Date.parse(created.body.createdAt);
        expect(Date.parse(first.body.updatedAt)).toBeGreaterThanOrEqual(createdAt);
        expect(Date.parse(second.body.updatedAt)).toBeGreaterThanOrEqual(Date.parse(first.body.updatedAt));
        const final = await t.request(path, { token: own.accessToken });
        expect(final.body).toMatchObject({ title: 'b', completed: true, updatedAt: second.body.updatedAt });
        jest.restoreAllMocks();
        jest.spyOn(t.app.get(Clock), 'now').mockImplementation(() => new Date(now));
      }
    });
  });
});
