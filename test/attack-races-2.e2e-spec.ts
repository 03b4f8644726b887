import { PasswordHasher } from '../src/auth/password-hasher.service.js';
import { PasswordChangeService } from '../src/auth/password-change.service.js';
import { totpCode } from '../src/auth/mfa/totp.js';
import { Session } from '../src/auth/session.entity.js';
import { SessionsRepository } from '../src/auth/sessions.repository.js';
import { User } from '../src/users/user.entity.js';
import { auditEvents, type Account, enrolTotp as enrolTotpFor, logIn, signUp } from './support/accounts.js';
import type { SeededUser } from './support/factories.js';
import type { SmtpCapture } from './support/smtp-capture.js';
import { releaseRaces, startRaceApp, stopRaceApp } from './support/race-app.js';
import { holdAfter, statusOf, tally, tracked } from './support/race.js';
import { type ApiResponse, TestApp } from './support/test-app.js';

/**
 * DESIGN §5: a password change, reset, disable, deletion, logout-all or TOTP change takes effect at
 * once and leaves no usable session or token it did not see. Each race here is made certain with a
 * gate inside a real call (never a mocked database): the request in flight has proved what it had to
 * prove, then the change commits, then the request goes on.
 */

const API = '/api/v1';
const OWNER_NEW = 'the owner changes it to this passphrase';
const ATTACKER_NEW = 'the thief changes it to this passphrase';
const STEP = 30_000;

describe('attack: races against credential and account changes', () => {
  let t: TestApp;
  let capture: SmtpCapture;
  let admin: SeededUser;

  beforeAll(async () => {
    ({ t, capture, admin } = await startRaceApp());
  });

  afterAll(() => stopRaceApp({ t, capture, admin }));

  afterEach(releaseRaces);

  const login = (email: string, password: string) =>
    t.request(`${API}/auth/login`, { method: 'POST', body: { email, password } });

  const changePassword = (token: string, currentPassword: string, newPassword: string) =>
    t.request(`${API}/users/me/password`, { method: 'PUT', body: { currentPassword, newPassword }, token });

  const adminPost = (path: string) =>
    t.request(`${API}/admin/users/${path}`, { method: 'POST', token: admin.accessToken });

  /** The next password check returns its (right) verdict only once the gate opens. */
  const holdNextPasswordCheck = () => tracked(holdAfter(t.app.get(PasswordHasher), 'verify', { once: true }));

  /** The next new password is hashed (after the current one was checked) and waits for the gate. */
  const holdNextNewPasswordHash = () =>
    tracked(holdAfter(t.app.get(PasswordChangeService), 'hashAcceptable', { once: true }));

  const liveSessions = async (userId: number) =>
    (await t.dataSource.getRepository(Session).findBy({ userId })).filter((s) => s.revokedAt === null);

  const enrolTotp = (accessToken: string) => enrolTotpFor(t, accessToken);

  const deleteAccount = (password: string, token: string) =>
    t.request(`${API}/users/me`, { method: 'DELETE', body: { password }, token });

  describe('a stale proof of the old password, used after the owner changed it', () => {
    it('changes no password: a change proved before another change committed (which revoked its session) does not apply', async () => {
      const account = await signUp(t, capture);
      const owner = await logIn(t, account);
      const thief = await logIn(t, account);
      const gate = holdNextNewPasswordHash();

      const racing = changePassword(thief.accessToken, account.password, ATTACKER_NEW);
      await gate.reached(1);
      expect((await changePassword(owner.accessToken, account.password, OWNER_NEW)).status).toBe(204);
      gate.open();
      const answer = await racing;

      expect(statusOf(answer)).toBe('401 INVALID_PASSWORD');
      expect(await auditEvents(t, { event: 'password.changed', userId: account.id })).toHaveLength(1);
      const failed = await auditEvents(t, { event: 'password.change_failed', userId: account.id });
      expect(failed.map((e) => e.metadata?.reason)).toEqual(['credentials_changed']);
      jest.restoreAllMocks();
      expect((await login(account.email, ATTACKER_NEW)).status).toBe(401);
      expect((await login(account.email, OWNER_NEW)).status).toBe(200);
    });

    it('deletes nothing: an account deletion proved before a password change committed does not apply', async () => {
      const account = await signUp(t, capture);
      const owner = await logIn(t, account);
      const thief = await logIn(t, account);
      const gate = holdNextPasswordCheck();

      const racing = deleteAccount(account.password, thief.accessToken);
      await gate.reached(1);
      expect((await changePassword(owner.accessToken, account.password, OWNER_NEW)).status).toBe(204);
      gate.open();
      const answer = await racing;

      expect(statusOf(answer)).toBe('401 INVALID_PASSWORD');
      expect(await t.dataSource.getRepository(User).countBy({ id: account.id })).toBe(1);
      expect(await auditEvents(t, { event: 'user.deleted', userId: account.id })).toHaveLength(0);
      const failed = await auditEvents(t, { event: 'user.delete_failed', userId: account.id });
      expect(failed.map((e) => e.metadata?.reason)).toEqual(['credentials_changed']);
    });

    it('keeps TOTP on: a disable proved before a password change committed does not apply', async () => {
      const account = await signUp(t, capture);
      const owner = await logIn(t, account);
      const { secret, recoveryCodes } = await enrolTotp(owner.accessToken);
      // A thief with the password and a code (phished together) signs in with both.
      const first = await login(account.email, account.password);
      const second = await t.request(`${API}/auth/login/mfa`, {
        method: 'POST',
        body: { mfaToken: first.body.mfaToken, code: totpCode(secret, Date.now() + STEP) },
      });
      expect(second.status).toBe(200);
      const gate = holdNextPasswordCheck();

      const racing = t.request(`${API}/auth/mfa/totp`, {
        method: 'DELETE',
        body: { password: account.password, code: recoveryCodes[0] },
        token: second.body.accessToken as string,
      });
      await gate.reached(1);
      expect((await changePassword(owner.accessToken, account.password, OWNER_NEW)).status).toBe(204);
      gate.open();
      const answer = await racing;

      expect(statusOf(answer)).toBe('401 INVALID_PASSWORD');
      const row = await t.dataSource.getRepository(User).findOneByOrFail({ id: account.id });
      expect(row.totpEnabledAt).not.toBeNull();
      expect(await auditEvents(t, { event: 'mfa.disabled', userId: account.id })).toHaveLength(0);
      const failed = await auditEvents(t, { event: 'mfa.disable_failed', userId: account.id });
      expect(failed.map((e) => e.metadata?.reason)).toEqual(['credentials_changed']);
      // The refused disable spent nothing: the owner's recovery code still signs them in.
      expect(await auditEvents(t, { event: 'auth.recovery_code_used', userId: account.id })).toHaveLength(0);
      jest.restoreAllMocks();
      const withNew = await login(account.email, OWNER_NEW);
      const recovered = await t.request(`${API}/auth/login/mfa`, {
        method: 'POST',
        body: { mfaToken: withNew.body.mfaToken, recoveryCode: recoveryCodes[0] },
      });
      expect(recovered.status).toBe(200);
    });
  });

  describe('admin disable', () => {
    it('opens no session for a password checked before the disable committed, not even once re-enabled', async () => {
      const account = await signUp(t, capture);
      const gate = holdNextPasswordCheck();

      const racing = login(account.email, account.password);
      await gate.reached(1);
      expect((await adminPost(`${account.id}/disable`)).status).toBe(204);
      gate.open();
      const answer = await racing;

      expect(statusOf(answer)).toBe('403 ACCOUNT_DISABLED');
      expect(await liveSessions(account.id)).toHaveLength(0);
      expect(await auditEvents(t, { event: 'auth.login_succeeded', userId: account.id })).toHaveLength(0);
      const failed = await auditEvents(t, { event: 'auth.login_failed', userId: account.id });
      expect(failed.map((e) => e.metadata?.reason)).toEqual(['disabled']);
      // Enabling again does not bring back a session the disable should have ended.
      expect((await adminPost(`${account.id}/enable`)).status).toBe(204);
      if (answer.body.accessToken) {
        const me = await t.request(`${API}/users/me`, { token: answer.body.accessToken as string });
        expect(me.status).toBe(401);
      }
    });

    it('sets no password on an account disabled after the current password was checked', async () => {
      const account = await signUp(t, capture);
      const own = await logIn(t, account);
      const gate = holdNextNewPasswordHash();

      const racing = changePassword(own.accessToken, account.password, ATTACKER_NEW);
      await gate.reached(1);
      expect((await adminPost(`${account.id}/disable`)).status).toBe(204);
      gate.open();
      const answer = await racing;

      expect(statusOf(answer)).toBe('401 INVALID_PASSWORD');
      expect(await auditEvents(t, { event: 'password.changed', userId: account.id })).toHaveLength(0);
      const failed = await auditEvents(t, { event: 'password.change_failed', userId: account.id });
      expect(failed.map((e) => e.metadata?.reason)).toEqual(['account_disabled']);
      jest.restoreAllMocks();
      expect((await adminPost(`${account.id}/enable`)).status).toBe(204);
      // The operator's disable left the password as it was.
      expect((await login(account.email, account.password)).status).toBe(200);
    });
  });

  describe('TOTP turned on', () => {
    it('opens no password-only session for a password checked before TOTP was confirmed', async () => {
      const account = await signUp(t, capture);
      const own = await logIn(t, account);
      const gate = holdNextPasswordCheck();

      const racing = login(account.email, account.password);
      await gate.reached(1);
      await enrolTotp(own.accessToken);
      gate.open();
      const answer = await racing;

      expect(answer.body.accessToken).toBeUndefined();
      expect(answer.status).toBe(401);
      expect(await liveSessions(account.id)).toHaveLength(1); // the one that turned TOTP on
      const failed = await auditEvents(t, { event: 'auth.login_failed', userId: account.id });
      expect(failed.map((e) => e.metadata?.reason)).toEqual(['credentials_changed']);
    });
  });

  describe('account deletion', () => {
    it('answers a todo created by a request authenticated just before the account went with a 4xx, never a 500', async () => {
      const account = await signUp(t, capture);
      const own = await logIn(t, account);
      // Held once authenticated (its session was live), before its unit of work opens.
      const gate = tracked(holdAfter(t.app.get(SessionsRepository), 'findLiveCaller', { once: true }));
      const racing = t.request(`${API}/todos`, {
        method: 'POST',
        body: { title: 'written as it goes' },
        token: own.accessToken,
      });
      await gate.reached(1);
      const deleted = await deleteAccount(account.password, own.accessToken);
      expect(deleted.status).toBe(204);
      gate.open();
      const answer = await racing;

      expect(statusOf(answer)).toBe('401 UNAUTHENTICATED');
      const rows: unknown[] = await t.dataSource.query('SELECT id FROM todos WHERE user_id = ?', [
        account.id,
      ]);
      expect(rows).toHaveLength(0);
    });

    it('refuses a login whose password was checked before the account was deleted, cleanly', async () => {
      const account = await signUp(t, capture);
      const own = await logIn(t, account);
      const gate = holdNextPasswordCheck();
      const racing = login(account.email, account.password);
      await gate.reached(1);
      // The deletion's own password check is the second: not held.
      const deleted = await deleteAccount(account.password, own.accessToken);
      expect(deleted.status).toBe(204);
      gate.open();
      expect(statusOf(await racing)).toBe('401 INVALID_CREDENTIALS');
      expect(await t.dataSource.getRepository(Session).countBy({ userId: account.id })).toBe(0);
    });

    it('refuses a refresh that found its session just before the account was deleted, cleanly', async () => {
      const account = await signUp(t, capture);
      const own = await logIn(t, account);
      const other = await logIn(t, account);
      // Held once it found its session, before the rotation's unit of work opens.
      const gate = tracked(holdAfter(t.app.get(SessionsRepository), 'findByRefreshHash'));
      const racing = t.request(`${API}/auth/refresh`, {
        method: 'POST',
        body: { refreshToken: other.refreshToken },
      });
      await gate.reached(1);
      const deleted = await deleteAccount(account.password, own.accessToken);
      expect(deleted.status).toBe(204);
      gate.open();
      expect(statusOf(await racing)).toBe('401 REFRESH_INVALID');
    });
  });

  describe('refresh', () => {
    it('gives no working token to a refresh that found its session just before logout-all committed', async () => {
      const account = await signUp(t, capture);
      const own = await logIn(t, account);
      const other = await logIn(t, account);
      // Held once it found its session, before the rotation's unit of work opens.
      const gate = tracked(holdAfter(t.app.get(SessionsRepository), 'findByRefreshHash'));
      const racing = t.request(`${API}/auth/refresh`, {
        method: 'POST',
        body: { refreshToken: other.refreshToken },
      });
      await gate.reached(1);
      expect(
        (await t.request(`${API}/auth/logout-all`, { method: 'POST', token: own.accessToken })).status,
      ).toBe(204);
      gate.open();
      expect(statusOf(await racing)).toBe('401 REFRESH_INVALID');
      expect(await liveSessions(account.id)).toHaveLength(0);
    });

    it('gives no working token to a grace-window replay that found its session just before a password change', async () => {
      const account = await signUp(t, capture);
      const own = await logIn(t, account);
      const other = await logIn(t, account);
      // Rotate once, so the old token is a within-grace replay.
      expect(
        (
          await t.request(`${API}/auth/refresh`, {
            method: 'POST',
            body: { refreshToken: other.refreshToken },
          })
        ).status,
      ).toBe(200);
      const gate = tracked(holdAfter(t.app.get(SessionsRepository), 'findRotatedOut'));
      const racing = t.request(`${API}/auth/refresh`, {
        method: 'POST',
        body: { refreshToken: other.refreshToken },
      });
      await gate.reached(1);
      expect((await changePassword(own.accessToken, account.password, OWNER_NEW)).status).toBe(204);
      gate.open();
      const answer = await racing;
      jest.restoreAllMocks();
      if (answer.status === 200) {
        const me = await t.request(`${API}/users/me`, { token: answer.body.accessToken as string });
        expect(me.status).toBe(401);
        const again = await t.request(`${API}/auth/refresh`, {
          method: 'POST',
          body: { refreshToken: answer.body.refreshToken },
        });
        expect(again.status).toBe(401);
      } else {
        expect(statusOf(answer)).toBe('401 REFRESH_INVALID');
      }
    });
  });

  describe('stress: one account, many things at once', () => {
    it('never answers 500 to parallel logins, refreshes, logout-alls and password changes on one account', async () => {
      const account: Account = await signUp(t, capture);
      let password = account.password;
      const seen: string[] = [];
      for (let round = 0; round < 5; round += 1) {
        const sessions = await Promise.all([0, 1, 2].map(() => logIn(t, { email: account.email, password })));
        const next = `${OWNER_NEW} round ${round}`;
        const requests: Promise<ApiResponse>[] = [];
        for (let i = 0; i < 20; i += 1) {
          requests.push(login(account.email, password));
        }
        for (const s of sessions) {
          requests.push(
            t.request(`${API}/auth/refresh`, { method: 'POST', body: { refreshToken: s.refreshToken } }),
          );
        }
        requests.push(changePassword(sessions[0].accessToken, password, next));
        requests.push(changePassword(sessions[1].accessToken, password, next));
        requests.push(
          t.request(`${API}/auth/logout-all`, { method: 'POST', token: sessions[2].accessToken }),
        );
        const answers = await Promise.all(requests);
        seen.push(...answers.map(statusOf));
        const changed = answers.slice(-3, -1).some((a) => a.status === 204);
        if (changed) {
          password = next;
        }
      }
      const counts = tally(seen);
      expect(
        Object.keys(counts).filter((status) => status.startsWith('5') && !status.includes('AUTH_BUSY')),
      ).toEqual([]);
    });
  });
});
