import { randomBytes } from 'node:crypto';
import { totpCode } from '../src/auth/mfa/totp.js';
import { Session } from '../src/auth/session.entity.js';
import { SessionsRepository } from '../src/auth/sessions.repository.js';
import { SignInService } from '../src/auth/sign-in.service.js';
import { TokensService } from '../src/tokens/tokens.service.js';
import { User } from '../src/users/user.entity.js';
import { UsersService } from '../src/users/users.service.js';
import { auditEvents, type Account, enrolTotp, logIn, signUp } from './support/accounts.js';
import type { SeededUser } from './support/factories.js';
import type { SmtpCapture } from './support/smtp-capture.js';
import { releaseRaces, startRaceApp, stopRaceApp } from './support/race-app.js';
import { holdAfter, statusOf, tracked, within } from './support/race.js';
import { TestApp } from './support/test-app.js';

/**
 * DESIGN §5 and §10, two interleavings more. An operator's MFA reset kills every outstanding
 * mfaToken with the secret and the recovery codes: a second login step that checked its mfaToken
 * (or read the secret) before the reset committed proves nothing against the removed factor. The
 * reset revokes no session (one opened a moment before it survives it too), so a step whose factor
 * was proved and mfaToken burnt before the reset may finish; whatever it does, it leaves TOTP off.
 * And a profile change whose caller was authenticated just before the account was deleted, or
 * disabled, answers cleanly (never a 500) and writes nothing the trail would misread.
 * Each race is made certain with a gate inside a real call (never a mocked database).
 */

const API = '/api/v1';
const STEP = 30_000;

type Factor = 'code' | 'recoveryCode';

interface MfaAccount {
  account: Account;
  /** The session that turned TOTP on. */
  own: string;
  secret: string;
  recoveryCodes: string[];
}

describe('attack: races against an operator MFA reset and account changes', () => {
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

  const liveSessions = async (userId: number) =>
    (await t.dataSource.getRepository(Session).findBy({ userId })).filter((s) => s.revokedAt === null);

  const adminPost = (path: string) =>
    t.request(`${API}/admin/users/${path}`, { method: 'POST', token: admin.accessToken });

  describe('an operator MFA reset racing the second login step', () => {
    /** A verified account with TOTP on, its own session, and a first login step waiting for its factor. */
    async function withTotp(): Promise<MfaAccount & { mfaToken: string }> {
      const account = await signUp(t, capture);
      const own = (await logIn(t, account)).accessToken;
      const { secret, recoveryCodes } = await enrolTotp(t, own);
      const first = await login(account.email, account.password);
      expect(first.body.mfaRequired).toBe(true);
      return { account, own, secret, recoveryCodes, mfaToken: first.body.mfaToken as string };
    }

    /** The enrolment spent this step's code: the next step's is the one not yet used. */
    const factorOf = (factor: Factor, { secret, recoveryCodes }: MfaAccount): Record<string, string> =>
      factor === 'code' ? { code: totpCode(secret, Date.now() + STEP) } : { recoveryCode: recoveryCodes[0] };

    const secondStep = (mfaToken: string, factor: Record<string, string>) =>
      t.request(`${API}/auth/login/mfa`, { method: 'POST', body: { mfaToken, ...factor } });

    const resetMfa = (userId: number) => adminPost(`${userId}/mfa/reset`);

    /** The reset left nothing of the second factor: no secret, no step, no recovery code, no mfaToken. */
    async function expectTotpGone(userId: number) {
      const [row]: Record<string, unknown>[] = await t.dataSource.query(
        'SELECT totp_secret, totp_pending_secret, totp_enabled_at, totp_last_step FROM users WHERE id = ?',
        [userId],
      );
      expect(row).toEqual({
        totp_secret: null,
        totp_pending_secret: null,
        totp_enabled_at: null,
        totp_last_step: null,
      });
      const codes: unknown[] = await t.dataSource.query(
        'SELECT id FROM mfa_recovery_codes WHERE user_id = ?',
        [userId],
      );
      expect(codes).toHaveLength(0);
      const tokens: unknown[] = await t.dataSource.query(
        'SELECT token_id FROM mfa_login_tokens WHERE user_id = ? AND used_at IS NULL',
        [userId],
      );
      expect(tokens).toHaveLength(0);
    }

    /** The reset's trail: admin.mfa_reset (TOTP was on) and mfa.disabled, both naming the operator. */
    async function expectResetAudited(userId: number) {
      const reset = await auditEvents(t, { event: 'admin.mfa_reset', userId });
      expect(reset.map((e) => [e.actorUserId, e.metadata])).toEqual([[admin.id, { wasEnabled: true }]]);
      const disabled = await auditEvents(t, { event: 'mfa.disabled', userId });
      expect(disabled.map((e) => [e.actorUserId, e.metadata])).toEqual([[admin.id, { via: 'operator' }]]);
    }

    /** The step's refusals, as `auth.mfa_failed` rows on the account: [reason, why]. */
    async function mfaFailures(userId: number) {
      return (await auditEvents(t, { event: 'auth.mfa_failed', userId })).map((e) => [
        e.metadata?.reason,
        e.metadata?.failure ?? e.metadata?.state,
      ]);
    }

    /** After the reset, the password alone signs in, and the old mfaToken is dead. */
    async function expectPasswordAloneSignsIn(a: MfaAccount & { mfaToken: string }, factor: Factor) {
      jest.restoreAllMocks();
      const again = await secondStep(a.mfaToken, factorOf(factor, a));
      expect(statusOf(again)).toBe('401 MFA_INVALID');
      const signedIn = await login(a.account.email, a.account.password);
      expect(signedIn.status).toBe(200);
      expect(signedIn.body.mfaRequired).toBeUndefined();
      expect(typeof signedIn.body.accessToken).toBe('string');
    }

    it.each<Factor>(['code', 'recoveryCode'])(
      'opens no session for a step (%s) whose mfaToken was checked before the reset committed',
      async (factor) => {
        const a = await withTotp();
        // Held once its mfaToken was found live and an attempt counted on it, before the account is read.
        const gate = tracked(holdAfter(t.app.get(TokensService), 'spendMfaAttempt', { once: true }));

        const racing = secondStep(a.mfaToken, factorOf(factor, a));
        await gate.reached(1);
        expect((await resetMfa(a.account.id)).status).toBe(204);
        gate.open();
        const answer = await racing;

        expect(statusOf(answer)).toBe('401 MFA_INVALID');
        expect(answer.body.accessToken).toBeUndefined();
        expect((await liveSessions(a.account.id)).length).toBe(1); // the one that turned TOTP on
        expect(await auditEvents(t, { event: 'auth.login_succeeded', userId: a.account.id })).toHaveLength(1);
        expect(await mfaFailures(a.account.id)).toEqual([['mfa_invalid', 'not_enabled']]);
        await expectTotpGone(a.account.id);
        await expectResetAudited(a.account.id);
        await expectPasswordAloneSignsIn(a, factor);
      },
    );

    it.each<[Factor, string]>([
      ['code', 'code_replayed'],
      ['recoveryCode', 'recovery_code_invalid'],
    ])(
      'proves nothing against the removed factor: a step (%s) that read the TOTP secret before the reset committed',
      async (factor, failure) => {
        const a = await withTotp();
        // Held once it read the account with its secret, before the factor is checked and spent.
        const gate = tracked(holdAfter(t.app.get(UsersService), 'findByIdWithTotp', { once: true }));

        const racing = secondStep(a.mfaToken, factorOf(factor, a));
        await gate.reached(1);
        expect((await resetMfa(a.account.id)).status).toBe(204);
        gate.open();
        const answer = await racing;

        expect(statusOf(answer)).toBe('401 MFA_INVALID');
        expect(answer.body.accessToken).toBeUndefined();
        expect((await liveSessions(a.account.id)).length).toBe(1);
        expect(await auditEvents(t, { event: 'auth.login_succeeded', userId: a.account.id })).toHaveLength(1);
        expect(await auditEvents(t, { event: 'auth.recovery_code_used', userId: a.account.id })).toHaveLength(
          0,
        );
        expect(await mfaFailures(a.account.id)).toEqual([['mfa_invalid', failure]]);
        await expectTotpGone(a.account.id);
        await expectResetAudited(a.account.id);
        await expectPasswordAloneSignsIn(a, factor);
      },
    );

    it.each<Factor>(['code', 'recoveryCode'])(
      'leaves TOTP off, and any session it opens in the DB and working, for a step (%s) proved before the reset committed',
      async (factor) => {
        const a = await withTotp();
        // Held once its factor was spent and its mfaToken burnt (committed), before the session opens.
        const gate = tracked(holdAfter(t.app.get(SignInService), 'assertMaySignIn', { once: true }));

        const racing = secondStep(a.mfaToken, factorOf(factor, a));
        await gate.reached(1);
        expect((await resetMfa(a.account.id)).status).toBe(204);
        gate.open();
        const answer = await racing;
        jest.restoreAllMocks();

        // The reset revokes no session: the one that turned TOTP on is still live. A step proved
        // before it is a sign-in that could as well have finished first: it may open its session.
        const me = await t.request(`${API}/users/me`, { token: a.own });
        expect(me.status).toBe(200);
        expect(me.body.mfaEnabled).toBe(false);
        const succeeded = await auditEvents(t, { event: 'auth.login_succeeded', userId: a.account.id });
        if (answer.status === 200) {
          expect((await liveSessions(a.account.id)).length).toBe(2);
          expect(succeeded.map((e) => e.metadata?.method)).toEqual([
            'password',
            factor === 'code' ? 'totp' : 'recovery_code',
          ]);
          const theirs = await t.request(`${API}/users/me`, { token: answer.body.accessToken as string });
          expect(theirs.status).toBe(200);
          expect(theirs.body.mfaEnabled).toBe(false);
        } else {
          expect(statusOf(answer)).toBe('401 MFA_INVALID');
          expect((await liveSessions(a.account.id)).length).toBe(1);
          expect(succeeded).toHaveLength(1);
        }
        await expectTotpGone(a.account.id);
        await expectResetAudited(a.account.id);
        await expectPasswordAloneSignsIn(a, factor);
      },
    );

    it.each<Factor>(['code', 'recoveryCode'])(
      'refuses a step (%s) that comes after the reset with an mfaToken issued before it',
      async (factor) => {
        const a = await withTotp();
        expect((await resetMfa(a.account.id)).status).toBe(204);

        const answer = await secondStep(a.mfaToken, factorOf(factor, a));

        expect(statusOf(answer)).toBe('401 MFA_INVALID');
        expect(answer.headers.get('content-type')).toContain('application/problem+json');
        expect((await liveSessions(a.account.id)).length).toBe(1);
        expect(await auditEvents(t, { event: 'auth.login_succeeded', userId: a.account.id })).toHaveLength(1);
        // The reset deleted the token, so the refusal names no account; its request id finds it.
        const refusals = (await auditEvents(t, { event: 'auth.mfa_failed' })).filter(
          (e) => e.requestId === answer.body.requestId,
        );
        expect(refusals.map((e) => [e.userId, e.metadata?.reason, e.metadata?.state])).toEqual([
          [null, 'mfa_token_invalid', 'unknown'],
        ]);
        await expectTotpGone(a.account.id);
        await expectResetAudited(a.account.id);
        await expectPasswordAloneSignsIn(a, factor);
      },
    );
  });

  describe('a profile change racing the end of the account', () => {
    const newUsername = () => `u${randomBytes(6).toString('hex')}`;

    const patchMe = (token: string, username: string) =>
      t.request(`${API}/users/me`, { method: 'PATCH', body: { username }, token });

    /** The next authenticated request is held once its session was found live, before it acts. */
    const holdNextCaller = () =>
      tracked(holdAfter(t.app.get(SessionsRepository), 'findLiveCaller', { once: true }));

    it('answers 401 to a username change authenticated just before the account was deleted, and writes nothing', async () => {
      const account = await signUp(t, capture);
      const own = await logIn(t, account);
      const username = newUsername();
      const gate = holdNextCaller();

      const racing = patchMe(own.accessToken, username);
      await gate.reached(1);
      // The deletion's own authentication is the second call: not held.
      const deleted = await t.request(`${API}/users/me`, {
        method: 'DELETE',
        body: { password: account.password },
        token: own.accessToken,
      });
      expect(deleted.status).toBe(204);
      gate.open();
      const answer = await racing;

      expect(statusOf(answer)).toBe('401 UNAUTHENTICATED');
      expect(answer.headers.get('content-type')).toContain('application/problem+json');
      expect(await t.dataSource.getRepository(User).countBy({ id: account.id })).toBe(0);
      expect(await t.dataSource.getRepository(User).countBy({ username })).toBe(0);
      expect(await t.dataSource.getRepository(Session).countBy({ userId: account.id })).toBe(0);
      expect(await auditEvents(t, { event: 'user.deleted', userId: account.id })).toHaveLength(1);
      expect(await auditEvents(t, { event: 'user.updated', userId: account.id })).toHaveLength(0);
    });

    it('writes no username for a change authenticated just before an admin disable: 401, the disable intact', async () => {
      const account = await signUp(t, capture);
      const own = await logIn(t, account);
      const username = newUsername();
      const gate = holdNextCaller();

      const racing = patchMe(own.accessToken, username);
      await gate.reached(1);
      expect((await adminPost(`${account.id}/disable`)).status).toBe(204);
      gate.open();
      const answer = await racing;

      const row = await t.dataSource.getRepository(User).findOneByOrFail({ id: account.id });
      expect(statusOf(answer)).toBe('401 UNAUTHENTICATED');
      expect(answer.headers.get('content-type')).toContain('application/problem+json');
      expect(row.username).toBeNull();
      expect(await auditEvents(t, { event: 'user.updated', userId: account.id })).toHaveLength(0);
      // The disable stands: the account stays disabled and no session of it works.
      expect(row.disabledAt).not.toBeNull();
      expect(await liveSessions(account.id)).toHaveLength(0);
      expect((await t.request(`${API}/users/me`, { token: own.accessToken })).status).toBe(401);
      const disabled = await auditEvents(t, { event: 'admin.user_disabled', userId: account.id });
      expect(disabled.map((e) => e.actorUserId)).toEqual([admin.id]);
    });
  });

  describe('an operator action racing the end of the account', () => {
    it('disables an account the owner is deleting, or answers 404 and audits nothing: never acts on a deleted one', async () => {
      const account = await signUp(t, capture);
      const own = await logIn(t, account);
      // The operator's disable has looked the account up in its unit of work, then waits.
      const read = tracked(
        holdAfter(t.app.get(UsersService), 'findById', {
          once: true,
          when: (id) => Number(id) === account.id,
        }),
      );
      const disabling = adminPost(`${account.id}/disable`);
      await read.reached(1);
      const deleting = t.request(`${API}/users/me`, {
        method: 'DELETE',
        body: { password: account.password },
        token: own.accessToken,
      });
      // MariaDB runs the deletion at once unless the operator holds the row; SQLite queues it anyway.
      await within(deleting, 500);
      read.open();
      const [disabled, deleted] = await Promise.all([disabling, deleting]);

      const row = await t.dataSource.getRepository(User).findOneBy({ id: account.id });
      const audited = await auditEvents(t, { event: 'admin.user_disabled', userId: account.id });
      if (row) {
        // The disable came first: it revoked the session the deletion came with (SQLite queued the
        // deletion before its session check), or the deletion's proof went stale (MariaDB).
        expect(disabled.status).toBe(204);
        expect(['401 UNAUTHENTICATED', '401 INVALID_PASSWORD']).toContain(statusOf(deleted));
        expect(row.disabledAt).not.toBeNull();
        expect(audited).toHaveLength(1);
      } else {
        expect([statusOf(disabled), deleted.status]).toEqual(['404 USER_NOT_FOUND', 204]);
        expect(audited).toHaveLength(0);
      }
    });
  });
});
