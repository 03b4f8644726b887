import { PasswordHasher } from '../src/auth/password-hasher.service.js';
import { totpCode } from '../src/auth/mfa/totp.js';
import { Session } from '../src/auth/session.entity.js';
import { SignInService } from '../src/auth/sign-in.service.js';
import { auditEvents, type Account, enrolTotp, signUp } from './support/accounts.js';
import { SmtpCapture } from './support/smtp-capture.js';
import { Gate, holdAfter } from './support/race.js';
import { type ApiResponse, TestApp } from './support/test-app.js';

/**
 * DESIGN §5: a password change or reset takes effect at once. A sign-in whose proof was checked just
 * before the change committed must not come out of it with a session (or an mfaToken) the change's
 * revocation could not see, nor write the old password back as an upgraded hash.
 */

const API = '/api/v1';
const NEW_PASSWORD = 'a brand new passphrase, changed mid-login';

describe('sign-in racing a password change', () => {
  let t: TestApp;
  let capture: SmtpCapture;

  beforeAll(async () => {
    capture = await SmtpCapture.start();
    t = await TestApp.start({ MAIL_URL: capture.url, MAIL_POLL_INTERVAL: '50ms' });
  });

  afterAll(async () => {
    await t.close();
    await capture.stop();
  });

  afterEach(() => {
    jest.restoreAllMocks();
  });

  const login = (email: string, password: string) =>
    t.request(`${API}/auth/login`, { method: 'POST', body: { email, password } });

  const changePassword = (account: Account, accessToken: string) =>
    t.request(`${API}/users/me/password`, {
      method: 'PUT',
      body: { currentPassword: account.password, newPassword: NEW_PASSWORD },
      token: accessToken,
    });

  /** The next password check returns its (right) verdict only once the gate opens. */
  const holdNextPasswordCheck = () => holdAfter(t.app.get(PasswordHasher), 'verify', { once: true });

  const liveSessions = async (userId: number) =>
    (await t.dataSource.getRepository(Session).findBy({ userId })).filter((s) => s.revokedAt === null);

  /** The answer is `code`, and the trail says why: `auth.login_failed` with reason credentials_changed. */
  async function expectRefusedAsChanged(answer: ApiResponse, userId: number, code: string) {
    expect(`${answer.status} ${String(answer.body.code)}`).toBe(`401 ${code}`);
    const failed = await auditEvents(t, { event: 'auth.login_failed', userId });
    expect(failed.map((e) => e.metadata?.reason)).toEqual(['credentials_changed']);
  }

  it('opens no session, and writes no upgraded old hash, for a password checked before the change committed', async () => {
    const account = await signUp(t, capture);
    const keep = (await login(account.email, account.password)).body.accessToken as string;
    // The stored hash looks old, so the racing login would also write back a re-hash of the old password.
    jest.spyOn(t.app.get(PasswordHasher), 'needsRehash').mockReturnValue(true);
    const gate = holdNextPasswordCheck();

    const racing = login(account.email, account.password);
    await gate.reached(1);
    expect((await changePassword(account, keep)).status).toBe(204);
    gate.open();
    const answer = await racing;

    await expectRefusedAsChanged(answer, account.id, 'INVALID_CREDENTIALS');
    expect((await liveSessions(account.id)).length).toBe(1); // the one that changed the password
    expect(await auditEvents(t, { event: 'auth.login_succeeded', userId: account.id })).toHaveLength(1);
    jest.restoreAllMocks();
    expect((await login(account.email, account.password)).status).toBe(401);
    expect((await login(account.email, NEW_PASSWORD)).status).toBe(200);
  });

  it('signs in as before when the change comes after the session opened, and the change then revokes it', async () => {
    const account = await signUp(t, capture);
    const keep = (await login(account.email, account.password)).body.accessToken as string;
    const signedIn = await login(account.email, account.password);
    expect(signedIn.status).toBe(200);

    expect((await changePassword(account, keep)).status).toBe(204);

    const me = await t.request(`${API}/users/me`, { token: signedIn.body.accessToken as string });
    expect(me.status).toBe(401);
    expect((await liveSessions(account.id)).length).toBe(1);
  });

  describe('with TOTP', () => {
    const STEP = 30_000;

    async function enrol(): Promise<{ account: Account; secret: string; accessToken: string }> {
      const account = await signUp(t, capture);
      const accessToken = (await login(account.email, account.password)).body.accessToken as string;
      return { account, accessToken, secret: (await enrolTotp(t, accessToken)).secret };
    }

    it('issues no mfaToken for a password checked before the change committed', async () => {
      const { account, accessToken } = await enrol();
      const gate = holdNextPasswordCheck();

      const racing = login(account.email, account.password);
      await gate.reached(1);
      expect((await changePassword(account, accessToken)).status).toBe(204);
      gate.open();
      const answer = await racing;

      await expectRefusedAsChanged(answer, account.id, 'INVALID_CREDENTIALS');
      expect(answer.body.mfaToken).toBeUndefined();
      expect(await auditEvents(t, { event: 'auth.mfa_required', userId: account.id })).toHaveLength(0);
    });

    it('opens no session for a code proved before the change committed', async () => {
      const { account, secret, accessToken } = await enrol();
      const first = await login(account.email, account.password);
      expect(first.body.mfaRequired).toBe(true);
      // Hold the second step after its code was proved and its mfaToken burnt, before the session opens.
      const gate = new Gate();
      const signIn = t.app.get(SignInService);
      const assertMaySignIn = signIn.assertMaySignIn.bind(signIn);
      jest.spyOn(signIn, 'assertMaySignIn').mockImplementation(async (user, attempt) => {
        if (attempt.method === 'totp') {
          await gate.pass();
        }
        return assertMaySignIn(user, attempt);
      });

      // The enrolment's code was this step's: the next step's code is the one not yet used.
      const racing = t.request(`${API}/auth/login/mfa`, {
        method: 'POST',
        body: { mfaToken: first.body.mfaToken, code: totpCode(secret, Date.now() + STEP) },
      });
      await gate.reached(1);
      expect((await changePassword(account, accessToken)).status).toBe(204);
      gate.open();
      const answer = await racing;

      await expectRefusedAsChanged(answer, account.id, 'MFA_INVALID');
      expect((await liveSessions(account.id)).length).toBe(1);
    });
  });
});
