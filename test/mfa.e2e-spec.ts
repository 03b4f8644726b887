import { AuditEvent } from '../src/audit/audit-event.entity.js';
import { MfaLoginService } from '../src/auth/mfa/mfa-login.service.js';
import { MfaService } from '../src/auth/mfa/mfa.service.js';
import { RecoveryCode } from '../src/auth/mfa/recovery-code.entity.js';
import { totpCode } from '../src/auth/mfa/totp.js';
import { Session } from '../src/auth/session.entity.js';
import { Clock } from '../src/common/clock.js';
import { MfaLoginToken } from '../src/tokens/one-time-token.entity.js';
import { LoginFailure } from '../src/users/login-failure.entity.js';
import { loginKeyOf } from '../src/users/login-failures.repository.js';
import { User } from '../src/users/user.entity.js';
import {
  type Account,
  auditEvents,
  comparable,
  mailsTo,
  mailTo,
  signUp,
  SUBJECTS,
} from './support/accounts.js';
import { newUser, uniqueEmail } from './support/factories.js';
import { SmtpCapture, tokenFrom } from './support/smtp-capture.js';
import { Gate, tally } from './support/race.js';
import { type ApiResponse, TestApp } from './support/test-app.js';

/** Issue 14: the TOTP second factor with recovery codes (DESIGN §4 "Second factor", §10). */

const API = '/api/v1';
const ENABLED = 'Two-step sign-in was turned on';
const DISABLED = 'Two-step sign-in was turned off';
const WRONG = 'not the right password';
const STEP = 30_000;

let nextClient = 1;
/** Each test signs in from client addresses of its own (TRUST_PROXY is on), so limits never leak across tests. */
const freshClient = () => {
  const n = nextClient++;
  return `10.14.${Math.floor(n / 250)}.${(n % 250) + 1}`;
};

interface Enrolled extends Account {
  secret: string;
  recoveryCodes: string[];
  accessToken: string;
  client: string;
}

describe('TOTP second factor', () => {
  let t: TestApp;
  let capture: SmtpCapture;
  let now: number;

  beforeAll(async () => {
    capture = await SmtpCapture.start();
    t = await TestApp.start({
      TRUST_PROXY: 'true',
      AUTH_LOCKOUT_THRESHOLD: '3',
      AUTH_LOCKOUT_ACCOUNT_THRESHOLD: '20',
      AUTH_LOCKOUT_DURATION: '15m',
      AUTH_THROTTLE_IP_LIMIT: '40',
      MAIL_URL: capture.url,
      MAIL_POLL_INTERVAL: '50ms',
    });
  });

  afterAll(async () => {
    await t.close();
    await capture.stop();
  });

  /** The app's clock, stepped by the tests: a code is accepted once per step, so tests move time on. */
  beforeEach(() => {
    now = Math.floor(Date.now() / STEP) * STEP + 1000;
    jest.spyOn(t.app.get(Clock), 'now').mockImplementation(() => new Date(now));
  });

  afterEach(() => {
    jest.restoreAllMocks();
  });

  const tick = (ms = STEP) => {
    now += ms;
  };
  const code = (secret: string, offsetSteps = 0) => totpCode(secret, now + offsetSteps * STEP);

  function post(path: string, body: unknown, options: { token?: string; client?: string } = {}) {
    return t.request(`${API}${path}`, {
      method: 'POST',
      body,
      token: options.token,
      headers: { 'X-Forwarded-For': options.client ?? freshClient() },
    });
  }

  function login(account: { email: string; password: string }, client: string) {
    return post('/auth/login', { email: account.email, password: account.password }, { client });
  }

  function loginMfa(body: Record<string, unknown>, client: string) {
    return post('/auth/login/mfa', body, { client });
  }

  function disable(enrolled: Enrolled, body: Record<string, unknown>) {
    return t.request(`${API}/auth/mfa/totp`, {
      method: 'DELETE',
      body,
      token: enrolled.accessToken,
      headers: { 'X-Forwarded-For': enrolled.client },
    });
  }

  /** A verified account that turned TOTP on through the API. */
  async function enrolled(): Promise<Enrolled> {
    const account = await signUp(t, capture);
    const client = freshClient();
    const signedIn = await login(account, client);
    expect(signedIn.status).toBe(200);
    const accessToken = signedIn.body.accessToken as string;
    const setup = await post('/auth/mfa/totp/setup', undefined, { token: accessToken, client });
    expect(setup.status).toBe(200);
    const secret = setup.body.secret as string;
    const confirmed = await post(
      '/auth/mfa/totp/confirm',
      { code: code(secret) },
      { token: accessToken, client },
    );
    expect(confirmed.status).toBe(200);
    tick();
    return { ...account, secret, recoveryCodes: confirmed.body.recoveryCodes, accessToken, client };
  }

  /** Password, then a code: the token pair. */
  async function signInWithTotp(account: Enrolled, client = freshClient()): Promise<ApiResponse> {
    const first = await login(account, client);
    expect(first.status).toBe(200);
    expect(first.body.mfaRequired).toBe(true);
    const second = await loginMfa({ mfaToken: first.body.mfaToken, code: code(account.secret) }, client);
    tick();
    return second;
  }

  const mfaFailures = (userId: number) => auditEvents(t, { event: 'auth.mfa_failed', userId });

  /** Lockout places still taken on the address: 0 once every check has settled. */
  const checksInFlight = async (email: string) =>
    (await t.dataSource.getRepository(LoginFailure).findBy({ emailHash: loginKeyOf(email) })).reduce(
      (sum, row) => sum + row.inFlight,
      0,
    );

  it('walks setup → confirm (10 recovery codes, shown once) → login mfaRequired → login/mfa → tokens', async () => {
    const account = await signUp(t, capture);
    const client = freshClient();
    const { accessToken } = (await login(account, client)).body as { accessToken: string };
    const me = await t.request(`${API}/users/me`, { token: accessToken });
    expect(me.body.mfaEnabled).toBe(false);

    const setup = await post('/auth/mfa/totp/setup', undefined, { token: accessToken, client });
    expect(setup.status).toBe(200);
    const { secret, otpauthUrl } = setup.body as { secret: string; otpauthUrl: string };
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    const uri = new URL(otpauthUrl);
    expect(uri.searchParams.get('secret')).toBe(secret);
    expect(decodeURIComponent(uri.pathname)).toContain(account.email);
    // Pending only: login still answers tokens.
    expect((await login(account, client)).body.accessToken).toEqual(expect.any(String));

    const confirmed = await post(
      '/auth/mfa/totp/confirm',
      { code: code(secret) },
      { token: accessToken, client },
    );
    expect(confirmed.status).toBe(200);
    const recoveryCodes = confirmed.body.recoveryCodes as string[];
    expect(recoveryCodes).toHaveLength(10);
    expect(new Set(recoveryCodes).size).toBe(10);
    for (const recovery of recoveryCodes) {
      expect(recovery).toMatch(/^[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}$/);
    }
    expect((await t.request(`${API}/users/me`, { token: accessToken })).body.mfaEnabled).toBe(true);
    await mailTo(capture, account.email, ENABLED);
    tick();

    const sessionsBefore = await t.dataSource.getRepository(Session).countBy({ userId: account.id });
    const first = await login(account, client);
    expect(first.status).toBe(200);
    expect(first.body).toEqual({ mfaRequired: true, mfaToken: expect.any(String), expiresIn: 300 });
    expect(Buffer.from(first.body.mfaToken as string, 'base64url')).toHaveLength(32);
    expect(await t.dataSource.getRepository(Session).countBy({ userId: account.id })).toBe(sessionsBefore);

    const second = await loginMfa({ mfaToken: first.body.mfaToken, code: code(secret) }, client);
    expect(second.status).toBe(200);
    expect(second.body).toMatchObject({ tokenType: 'Bearer', user: { id: account.id, mfaEnabled: true } });

    // Refresh keeps working for a session opened with TOTP.
    const refreshed = await post('/auth/refresh', { refreshToken: second.body.refreshToken }, { client });
    expect(refreshed.status).toBe(200);

    const [enabled] = await auditEvents(t, { event: 'mfa.enabled', userId: account.id });
    expect(enabled.metadata).toMatchObject({ rekeyed: false, recoveryCodes: 10 });
    expect(await auditEvents(t, { event: 'auth.mfa_required', userId: account.id })).toHaveLength(1);
    const succeeded = await auditEvents(t, { event: 'auth.login_succeeded', userId: account.id });
    expect(succeeded.at(-1)?.metadata).toMatchObject({ method: 'totp' });

    // At rest: the secret is sealed, the recovery codes and the mfaToken are hashes.
    const [row] = await t.dataSource.query<{ totp_secret: string; totp_pending_secret: string | null }[]>(
      'SELECT totp_secret, totp_pending_secret FROM users WHERE id = ?',
      [account.id],
    );
    expect(row.totp_secret).toMatch(/^v2\./);
    expect(row.totp_secret).not.toContain(secret);
    expect(row.totp_pending_secret).toBeNull();
    const stored = await t.dataSource.getRepository(RecoveryCode).findBy({ userId: account.id });
    expect(stored).toHaveLength(10);
    const dump = JSON.stringify(stored);
    for (const recovery of recoveryCodes) {
      expect(dump).not.toContain(recovery);
      expect(dump).not.toContain(recovery.replace(/-/g, ''));
    }
    const tokens = await t.dataSource.getRepository(MfaLoginToken).findBy({ userId: account.id });
    expect(tokens.map((tok) => tok.tokenHash)).not.toContain(first.body.mfaToken);
    // Nothing secret on the trail either.
    const trail = JSON.stringify(await auditEvents(t, { userId: account.id }));
    expect(trail).not.toContain(secret);
    expect(trail).not.toContain(first.body.mfaToken);
  });

  it('accepts a code one step early or late, not two, and each code once per account (replay → 401 MFA_INVALID)', async () => {
    const account = await enrolled();
    const client = freshClient();
    const challenge = async () => (await login(account, client)).body.mfaToken as string;
    // enrolled() confirmed with the code of the step before this one: that code is spent already.
    tick();

    expect(
      (await loginMfa({ mfaToken: await challenge(), code: code(account.secret, -2) }, client)).status,
    ).toBe(401);
    const early = await loginMfa({ mfaToken: await challenge(), code: code(account.secret, -1) }, client);
    expect(early.status).toBe(200);
    // The same code again, with a fresh mfaToken: a replay within its window.
    const replayCode = code(account.secret, 1);
    expect((await loginMfa({ mfaToken: await challenge(), code: replayCode }, client)).status).toBe(200);
    const replayed = await loginMfa({ mfaToken: await challenge(), code: replayCode }, client);
    expect(replayed.status).toBe(401);
    expect(replayed.body.code).toBe('MFA_INVALID');
    // A code of the current step is older than the last one accepted: refused too.
    expect((await loginMfa({ mfaToken: await challenge(), code: code(account.secret) }, client)).status).toBe(
      401,
    );

    const failures = await mfaFailures(account.id);
    expect(failures.map((e) => e.metadata?.failure)).toEqual([
      'code_invalid',
      'code_replayed',
      'code_replayed',
    ]);
    expect(failures.every((e) => e.metadata?.reason === 'mfa_invalid' && e.outcome === 'failure')).toBe(true);
  });

  it('lets exactly one of 10 concurrent uses of one code, or of one mfaToken, sign in', async () => {
    const account = await enrolled();
    const tokens = await Promise.all(
      Array.from({ length: 10 }, async () => (await login(account, freshClient())).body.mfaToken as string),
    );
    const sameCode = code(account.secret);
    const results = await Promise.all(
      tokens.map((mfaToken) => loginMfa({ mfaToken, code: sameCode }, freshClient())),
    );
    expect(results.filter((r) => r.status === 200)).toHaveLength(1);
    expect(results.filter((r) => r.status !== 200).map((r) => `${r.status} ${r.body.code}`)).toEqual(
      Array.from({ length: 9 }, () => '401 MFA_INVALID'),
    );

    const other = await enrolled();
    const { mfaToken } = (await login(other, freshClient())).body as { mfaToken: string };
    const next = code(other.secret);
    const raced = await Promise.all(
      Array.from({ length: 10 }, () => loginMfa({ mfaToken, code: next }, freshClient())),
    );
    expect(raced.filter((r) => r.status === 200)).toHaveLength(1);
    expect(await auditEvents(t, { event: 'auth.login_succeeded', userId: account.id })).toHaveLength(2);
    expect(await auditEvents(t, { event: 'auth.login_succeeded', userId: other.id })).toHaveLength(2);
  });

  it('spends only the winning factor when two recovery codes race on one mfaToken', async () => {
    const account = await enrolled();
    const { mfaToken } = (await login(account, freshClient())).body as { mfaToken: string };
    const [first, second] = account.recoveryCodes;
    const raced = await Promise.all(
      [first, second].map((recoveryCode) => loginMfa({ mfaToken, recoveryCode }, freshClient())),
    );
    expect(raced.map((r) => r.status).sort()).toEqual([200, 401]);
    // The loser's code was rolled back with its refusal: it still signs in, once.
    const loser = raced[0].status === 200 ? second : first;
    const again = (await login(account, freshClient())).body.mfaToken as string;
    expect((await loginMfa({ mfaToken: again, recoveryCode: loser }, freshClient())).status).toBe(200);
    const used = await auditEvents(t, { event: 'auth.recovery_code_used', userId: account.id });
    expect(used).toHaveLength(2);
    // The loser's check was given back to the lockout, not left in flight.
    expect(await checksInFlight(account.email)).toBe(0);
  });

  it('ends an mfaToken after use, after 5 minutes, and after 5 wrong codes; an unknown one is refused alike', async () => {
    const account = await enrolled();
    const client = freshClient();
    const used = (await login(account, client)).body.mfaToken as string;
    expect((await loginMfa({ mfaToken: used, code: code(account.secret) }, client)).status).toBe(200);
    tick();
    const reused = await loginMfa({ mfaToken: used, code: code(account.secret) }, client);
    expect(reused.status).toBe(401);
    expect(reused.body.code).toBe('MFA_INVALID');

    const late = (await login(account, client)).body.mfaToken as string;
    tick(5 * 60 * 1000);
    const expired = await loginMfa({ mfaToken: late, code: code(account.secret) }, client);
    expect(comparable(expired.body)).toEqual(comparable(reused.body));

    // Five wrong codes, each from its own client so no lockout interferes: the sixth try, right, is refused.
    const worn = (await login(account, client)).body.mfaToken as string;
    for (let i = 0; i < 5; i += 1) {
      expect((await loginMfa({ mfaToken: worn, code: '000000' }, freshClient())).status).toBe(401);
    }
    const exhausted = await loginMfa({ mfaToken: worn, code: code(account.secret) }, freshClient());
    expect(exhausted.status).toBe(401);

    const unknown = await loginMfa({ mfaToken: 'A'.repeat(43), code: code(account.secret) }, client);
    expect(comparable(unknown.body)).toEqual(comparable(reused.body));

    const states = (await mfaFailures(account.id))
      .filter((e) => e.metadata?.reason === 'mfa_token_invalid')
      .map((e) => e.metadata?.state);
    expect(states).toEqual(['used', 'expired', 'exhausted']);
    const [stranger] = await t.dataSource
      .getRepository(AuditEvent)
      .find({ where: { event: 'auth.mfa_failed' }, order: { id: 'DESC' }, take: 1 });
    expect(stranger).toMatchObject({ userId: null, metadata: { state: 'unknown' } });
  });

  it('refuses a code of another account’s secret', async () => {
    const [alice, bob] = [await enrolled(), await enrolled()];
    const client = freshClient();
    const { mfaToken } = (await login(alice, client)).body as { mfaToken: string };
    const refused = await loginMfa({ mfaToken, code: code(bob.secret) }, client);
    expect(refused.status).toBe(401);
    expect(refused.body.code).toBe('MFA_INVALID');
    expect((await mfaFailures(alice.id)).at(-1)?.metadata).toMatchObject({ failure: 'code_invalid' });
  });

  it('answers malformed codes 400 VALIDATION_FAILED without spending the mfaToken', async () => {
    const account = await enrolled();
    const client = freshClient();
    const { mfaToken } = (await login(account, client)).body as { mfaToken: string };
    for (const body of [
      { mfaToken, code: '12345' },
      { mfaToken, code: '1234567' },
      { mfaToken, code: '12a456' },
      { mfaToken, code: 123456 },
      { mfaToken },
      { mfaToken, code: code(account.secret), recoveryCode: account.recoveryCodes[0] },
      { mfaToken, recoveryCode: 'not-a-code!' },
      { mfaToken, code: code(account.secret), extra: 1 },
    ]) {
      const res = await loginMfa(body, client);
      expect([res.status, res.body.code]).toEqual([400, 'VALIDATION_FAILED']);
    }
    const rows = await t.dataSource.getRepository(MfaLoginToken).findBy({ userId: account.id });
    expect(rows.map((row) => row.attempts)).toEqual([0]);
    expect((await loginMfa({ mfaToken, code: code(account.secret) }, client)).status).toBe(200);
  });

  it('signs in once with each recovery code', async () => {
    const account = await enrolled();
    const client = freshClient();
    const recovery = account.recoveryCodes[3];
    const first = (await login(account, client)).body.mfaToken as string;
    const signedIn = await loginMfa({ mfaToken: first, recoveryCode: recovery.toUpperCase() }, client);
    expect(signedIn.status).toBe(200);
    const second = (await login(account, client)).body.mfaToken as string;
    const again = await loginMfa({ mfaToken: second, recoveryCode: recovery }, client);
    expect([again.status, again.body.code]).toEqual([401, 'MFA_INVALID']);

    const [used] = await auditEvents(t, { event: 'auth.recovery_code_used', userId: account.id });
    expect(used.metadata).toEqual({ context: 'login', remaining: 9 });
    expect((await mfaFailures(account.id)).at(-1)?.metadata).toMatchObject({
      method: 'recovery_code',
      failure: 'recovery_code_invalid',
    });
    const succeeded = await auditEvents(t, { event: 'auth.login_succeeded', userId: account.id });
    expect(succeeded.at(-1)?.metadata).toMatchObject({ method: 'recovery_code' });
  });

  it('keeps the active secret while a new one is pending, and replaces it only with a code of each', async () => {
    const account = await enrolled();
    const { client, accessToken } = account;
    const setup = await post('/auth/mfa/totp/setup', undefined, { token: accessToken, client });
    const fresh = setup.body.secret as string;
    // Pending: the old secret still signs in, the new one does not.
    const pendingTry = (await login(account, client)).body.mfaToken as string;
    expect((await loginMfa({ mfaToken: pendingTry, code: code(fresh) }, client)).status).toBe(401);
    expect((await signInWithTotp(account, client)).status).toBe(200);

    const noCurrent = await post(
      '/auth/mfa/totp/confirm',
      { code: code(fresh) },
      { token: accessToken, client },
    );
    expect([noCurrent.status, noCurrent.body.code]).toEqual([400, 'MFA_CURRENT_CODE_REQUIRED']);
    // A typo in the new authenticator's code spends nothing: the same current code still works below.
    const typo = await post(
      '/auth/mfa/totp/confirm',
      { code: code(fresh, 3), currentCode: code(account.secret) },
      { token: accessToken, client },
    );
    expect([typo.status, typo.body.code]).toEqual([400, 'MFA_CODE_INVALID']);
    const badCurrent = await post(
      '/auth/mfa/totp/confirm',
      { code: code(fresh), currentCode: '000000' },
      { token: accessToken, client },
    );
    expect([badCurrent.status, badCurrent.body.code]).toEqual([401, 'MFA_INVALID']);
    const rekeyed = await post(
      '/auth/mfa/totp/confirm',
      { code: code(fresh), currentCode: code(account.secret) },
      { token: accessToken, client },
    );
    expect(rekeyed.status).toBe(200);
    tick();
    // The old secret and the old recovery codes are dead; the new secret signs in.
    const oldTry = (await login(account, client)).body.mfaToken as string;
    expect((await loginMfa({ mfaToken: oldTry, code: code(account.secret) }, client)).status).toBe(401);
    const oldRecovery = (await login(account, freshClient())).body.mfaToken as string;
    expect(
      (await loginMfa({ mfaToken: oldRecovery, recoveryCode: account.recoveryCodes[0] }, client)).status,
    ).toBe(401);
    expect((await signInWithTotp({ ...account, secret: fresh }, freshClient())).status).toBe(200);
    const enabled = await auditEvents(t, { event: 'mfa.enabled', userId: account.id });
    expect(enabled.map((e) => e.metadata?.rekeyed)).toEqual([false, true]);
    expect((await mfaFailures(account.id)).find((e) => e.metadata?.context === 'confirm')?.metadata).toEqual({
      context: 'confirm',
      reason: 'code_invalid',
    });
  });

  it('refuses confirm without set-up and with a wrong code, writing nothing', async () => {
    const account = await signUp(t, capture);
    const client = freshClient();
    const { accessToken } = (await login(account, client)).body as { accessToken: string };
    const early = await post('/auth/mfa/totp/confirm', { code: '123456' }, { token: accessToken, client });
    expect([early.status, early.body.code]).toEqual([400, 'MFA_SETUP_REQUIRED']);
    const setup = await post('/auth/mfa/totp/setup', undefined, { token: accessToken, client });
    const secret = setup.body.secret as string;
    const wrongCode = code(secret, 3);
    const wrong = await post('/auth/mfa/totp/confirm', { code: wrongCode }, { token: accessToken, client });
    expect([wrong.status, wrong.body.code]).toEqual([400, 'MFA_CODE_INVALID']);
    const malformed = await post(
      '/auth/mfa/totp/confirm',
      { code: '12 456' },
      { token: accessToken, client },
    );
    expect([malformed.status, malformed.body.code]).toEqual([400, 'VALIDATION_FAILED']);
    expect((await t.request(`${API}/users/me`, { token: accessToken })).body.mfaEnabled).toBe(false);
    expect(await t.dataSource.getRepository(RecoveryCode).countBy({ userId: account.id })).toBe(0);
    expect(await auditEvents(t, { event: 'mfa.enabled', userId: account.id })).toHaveLength(0);
    expect((await mfaFailures(account.id)).map((e) => e.metadata)).toEqual([
      { context: 'confirm', reason: 'code_invalid' },
    ]);
    expect((await login(account, client)).body.accessToken).toEqual(expect.any(String));
  });

  it('turns TOTP off only with the password and a code (or a recovery code), and mails a notice', async () => {
    const account = await enrolled();
    // A past updated_at, so that a write (TypeORM stamps CURRENT_TIMESTAMP, whole seconds) would show.
    await t.dataSource.getRepository(User).update({ id: account.id }, { updatedAt: new Date('2020-01-01') });
    const untouched = await t.dataSource.getRepository(User).findOneByOrFail({ id: account.id });
    const wrongPassword = await disable(account, { password: WRONG, code: code(account.secret) });
    expect([wrongPassword.status, wrongPassword.body.code]).toEqual([401, 'INVALID_PASSWORD']);
    const wrongCode = await disable(account, { password: account.password, code: '000000' });
    expect([wrongCode.status, wrongCode.body.code]).toEqual([401, 'MFA_INVALID']);
    const malformed = await disable(account, { password: account.password, code: 'abc' });
    expect([malformed.status, malformed.body.code]).toEqual([400, 'VALIDATION_FAILED']);
    // Refused attempts change nothing on the account, not even its updated_at.
    expect(await t.dataSource.getRepository(User).findOneByOrFail({ id: account.id })).toEqual(untouched);
    expect(untouched.totpEnabledAt).not.toBeNull();
    expect(await auditEvents(t, { event: 'mfa.disable_failed', userId: account.id })).toHaveLength(1);
    expect((await mfaFailures(account.id)).map((e) => e.metadata)).toEqual([
      { context: 'disable', reason: 'code_invalid' },
    ]);

    const off = await disable(account, { password: account.password, code: account.recoveryCodes[9] });
    expect(off.status).toBe(204);
    const notice = await mailTo(capture, account.email, DISABLED);
    expect(notice.text).toContain('Two-step sign-in was just turned off');
    const [disabled] = await auditEvents(t, { event: 'mfa.disabled', userId: account.id });
    expect(disabled.metadata).toEqual({ via: 'recovery_code' });
    expect(await t.dataSource.getRepository(RecoveryCode).countBy({ userId: account.id })).toBe(0);
    const plain = await login(account, freshClient());
    expect(plain.body.accessToken).toEqual(expect.any(String));
    expect(plain.body.user.mfaEnabled).toBe(false);
    const again = await disable(account, { password: account.password, code: '123456' });
    expect([again.status, again.body.code]).toEqual([400, 'MFA_NOT_ENABLED']);
  });

  it('answers an unknown email and a TOTP account’s wrong password exactly alike, in the same time', async () => {
    const account = await enrolled();
    const plain = await signUp(t, capture);
    const nobody = uniqueEmail('nobody');
    const tokensBefore = await t.dataSource.getRepository(MfaLoginToken).countBy({ userId: account.id });
    const challenge = jest.spyOn(t.app.get(MfaLoginService), 'challenge');
    const wrongTotp = await login({ email: account.email, password: WRONG }, freshClient());
    const wrongPlain = await login({ email: plain.email, password: WRONG }, freshClient());
    const unknown = await login({ email: nobody, password: WRONG }, freshClient());
    expect(wrongTotp.status).toBe(401);
    expect(comparable(wrongTotp.body)).toEqual(comparable(unknown.body));
    expect(comparable(wrongPlain.body)).toEqual(comparable(unknown.body));
    expect(wrongTotp.text).not.toContain('mfa');
    expect(await t.dataSource.getRepository(MfaLoginToken).countBy({ userId: account.id })).toBe(
      tokensBefore,
    );
    expect(await auditEvents(t, { event: 'auth.mfa_required', userId: account.id })).toHaveLength(0);

    // Timing: the wrong-password path runs no TOTP lookup, so the medians agree within noise
    // (interleaved, so load from elsewhere on the machine hits both alike).
    const times: Record<'totp' | 'plain', number[]> = { totp: [], plain: [] };
    for (let i = 0; i < 9; i += 1) {
      for (const [kind, email] of [
        ['totp', account.email],
        ['plain', plain.email],
      ] as const) {
        const started = performance.now();
        await login({ email, password: WRONG }, freshClient());
        times[kind].push(performance.now() - started);
      }
    }
    const median = (list: number[]) => [...list].sort((a, b) => a - b)[4];
    const [totpMs, plainMs] = [median(times.totp), median(times.plain)];
    // Loose (other suites share the machine): it catches an extra bcrypt or round trip, not jitter.
    expect(Math.abs(totpMs - plainMs)).toBeLessThan(Math.max(50, plainMs));
    // And the structural reason: no TOTP step ran for any of those wrong passwords.
    expect(challenge).not.toHaveBeenCalled();
  });

  it('counts wrong codes toward the lockout per client; a correct password does not reset them; the owner elsewhere is not locked out', async () => {
    const account = await enrolled();
    const attacker = freshClient();
    const wrongOnce = async () => {
      const { mfaToken } = (await login(account, attacker)).body as { mfaToken: string };
      return loginMfa({ mfaToken, code: '000000' }, attacker);
    };
    // Two wrong codes, then the correct password again (a fresh mfaToken), then a third wrong code.
    expect((await wrongOnce()).status).toBe(401);
    expect((await wrongOnce()).status).toBe(401);
    expect((await wrongOnce()).status).toBe(401);
    const refused = await login(account, attacker);
    expect([refused.status, refused.body.code]).toEqual([429, 'ACCOUNT_LOCKED']);
    expect(refused.headers.get('retry-after')).toBe('900');
    // The owner on another client signs in with password and code.
    expect((await signInWithTotp(account, freshClient())).status).toBe(200);
    const [lock] = await auditEvents(t, { event: 'auth.locked', userId: account.id });
    expect(lock).toMatchObject({ ip: attacker, metadata: { scope: 'client', failures: 3, step: 'mfa' } });
    expect((await mfaFailures(account.id)).map((e) => e.metadata?.failures)).toEqual([1, 2, 3]);
  });

  /** A 6-digit code that is none of the ones accepted now (±1 step). */
  function wrongCode(secret: string): string {
    const accepted = new Set([code(secret, -1), code(secret), code(secret, 1)]);
    let n = 0;
    while (accepted.has(String(n).padStart(6, '0'))) {
      n += 1;
    }
    return String(n).padStart(6, '0');
  }

  /** `count` mfaTokens won with the right password from `client`: 5 codes each. */
  async function mfaTokens(account: Enrolled, client: string, count: number): Promise<string[]> {
    const tokens: string[] = [];
    for (let i = 0; i < count; i += 1) {
      const first = await login(account, client);
      expect(first.body.mfaRequired).toBe(true);
      tokens.push(first.body.mfaToken as string);
    }
    return tokens;
  }

  it('checks at most AUTH_LOCKOUT_THRESHOLD of 20 concurrent wrong codes over four mfaTokens', async () => {
    const account = await enrolled();
    const attacker = freshClient();
    const tokens = await mfaTokens(account, attacker, 4);
    const wrong = wrongCode(account.secret);
    const answers = await Promise.all(
      Array.from({ length: 20 }, (_, i) => loginMfa({ mfaToken: tokens[i % 4], code: wrong }, attacker)),
    );

    // A code was either checked (401) or refused unchecked (429): never a 5xx.
    expect(tally(answers.map((r) => `${r.status} ${String(r.body.code)}`))).toEqual({
      '401 MFA_INVALID': 3,
      '429 ACCOUNT_LOCKED': 17,
    });
    expect(tally((await mfaFailures(account.id)).map((e) => String(e.metadata?.reason)))).toEqual({
      mfa_invalid: 3,
    });
    const refused = await auditEvents(t, { event: 'auth.login_failed', userId: account.id });
    expect(tally(refused.map((e) => `${String(e.metadata?.reason)} ${String(e.metadata?.method)}`))).toEqual({
      'locked totp': 17,
    });
    const locks = await auditEvents(t, { event: 'auth.locked', userId: account.id });
    expect(locks.map((e) => e.metadata)).toEqual([
      expect.objectContaining({ scope: 'client', failures: 3, step: 'mfa' }),
    ]);
    expect(await checksInFlight(account.email)).toBe(0);
  });

  it('does not let the right code that races in once the threshold is in flight sign in', async () => {
    const account = await enrolled();
    const attacker = freshClient();
    const tokens = await mfaTokens(account, attacker, 4);
    const right = code(account.secret);
    // Counts the wrong codes that reached the real check (an open gate only counts). The check runs in
    // a transaction, and SQLite has one connection: holding a guess there would stop every request.
    const checks = new Gate();
    checks.open();
    const mfa = t.app.get(MfaService);
    const spend = mfa.spend.bind(mfa);
    jest.spyOn(mfa, 'spend').mockImplementation(async (user, input, context, meta) => {
      if (input.code !== right) {
        await checks.pass();
      }
      return spend(user, input, context, meta);
    });
    const wrong = wrongCode(account.secret);
    const guesses = Array.from({ length: 19 }, (_, i) =>
      loginMfa({ mfaToken: tokens[i % 4], code: wrong }, attacker),
    );
    // The right code races in once three wrong ones are past the gate, before or after they are counted.
    await checks.reached(3);
    const racer = loginMfa({ mfaToken: tokens[3], code: right }, attacker);
    const answers = await Promise.all(guesses);
    const answer = await racer;

    expect(`${answer.status} ${String(answer.body.code)}`).toBe('429 ACCOUNT_LOCKED');
    expect(tally(answers.map((r) => r.status))).toEqual({ 401: 3, 429: 16 });
    const signedIn = await auditEvents(t, { event: 'auth.login_succeeded', userId: account.id });
    expect(signedIn.filter((e) => e.metadata?.method !== 'password')).toHaveLength(0);
    expect(tally((await mfaFailures(account.id)).map((e) => String(e.metadata?.reason)))).toEqual({
      mfa_invalid: 3,
    });
    expect(await checksInFlight(account.email)).toBe(0);
  });

  it('throttles the second step per IP', async () => {
    const client = freshClient();
    const statuses: number[] = [];
    for (let i = 0; i < 42; i += 1) {
      statuses.push((await loginMfa({ mfaToken: 'B'.repeat(43), code: '000000' }, client)).status);
    }
    expect(statuses.slice(0, 40).every((s) => s === 401)).toBe(true);
    expect(statuses.slice(40)).toEqual([429, 429]);
    const limited = await loginMfa({ mfaToken: 'B'.repeat(43), code: '000000' }, client);
    expect(limited.body.code).toBe('RATE_LIMITED');
    expect((await loginMfa({ mfaToken: 'B'.repeat(43), code: '000000' }, freshClient())).status).toBe(401);
  });

  it('keeps TOTP through a password reset, and ends sessions and rows with logout-all and deletion', async () => {
    const account = await enrolled();
    const stale = (await login(account, freshClient())).body.mfaToken as string;
    await post('/auth/forgot-password', { email: account.email });
    const token = tokenFrom(await mailTo(capture, account.email, SUBJECTS.reset));
    const newPassword = 'a brand new long passphrase';
    expect((await post('/auth/reset-password', { token, password: newPassword })).status).toBe(204);
    const after = { ...account, password: newPassword };
    const first = await login(after, freshClient());
    expect(first.body.mfaRequired).toBe(true);
    expect(mailsTo(capture, account.email, DISABLED)).toHaveLength(0);
    // An mfaToken won with the old password died with it.
    const staleUse = await loginMfa({ mfaToken: stale, code: code(account.secret) }, freshClient());
    expect([staleUse.status, staleUse.body.code]).toEqual([401, 'MFA_INVALID']);

    const session = await loginMfa(
      { mfaToken: first.body.mfaToken, code: code(account.secret) },
      freshClient(),
    );
    tick();
    const accessToken = session.body.accessToken as string;
    expect((await post('/auth/logout-all', undefined, { token: accessToken })).status).toBe(204);
    expect((await t.request(`${API}/users/me`, { token: accessToken })).status).toBe(401);
    expect((await post('/auth/refresh', { refreshToken: session.body.refreshToken })).status).toBe(401);

    const again = await signInWithTotp(after);
    const outstanding = (await login(after, freshClient())).body.mfaToken as string;
    const deleted = await t.request(`${API}/users/me`, {
      method: 'DELETE',
      body: { password: newPassword },
      token: again.body.accessToken,
    });
    expect(deleted.status).toBe(204);
    expect(await t.dataSource.getRepository(RecoveryCode).countBy({ userId: account.id })).toBe(0);
    expect(await t.dataSource.getRepository(MfaLoginToken).countBy({ userId: account.id })).toBe(0);
    expect(
      (await loginMfa({ mfaToken: outstanding, code: code(account.secret) }, freshClient())).status,
    ).toBe(401);
  });

  it('refuses a disabled account after its correct password, before any mfaToken', async () => {
    const account = await enrolled();
    await t.dataSource.getRepository(User).update({ id: account.id }, { disabledAt: new Date() });
    const refused = await login(account, freshClient());
    expect([refused.status, refused.body.code]).toEqual([403, 'ACCOUNT_DISABLED']);
    expect(await auditEvents(t, { event: 'auth.mfa_required', userId: account.id })).toHaveLength(0);
  });

  it('lets an operator reset a user’s TOTP: audited with the actor, mailed, and only for admins', async () => {
    const account = await enrolled();
    const admin = await newUser(t, { role: 'admin' });
    const outsider = await newUser(t);
    const path = `${API}/admin/users/${account.id}/mfa/reset`;
    expect((await t.request(path, { method: 'POST', token: outsider.accessToken })).status).toBe(403);
    expect(
      (
        await t.request(`${API}/admin/users/4000000000/mfa/reset`, {
          method: 'POST',
          token: admin.accessToken,
        })
      ).body.code,
    ).toBe('USER_NOT_FOUND');
    const listed = async () =>
      (
        await t.request(`${API}/admin/users?email=${encodeURIComponent(account.email)}`, {
          token: admin.accessToken,
        })
      ).body.items[0].mfaEnabled as boolean;
    expect(await listed()).toBe(true);
    expect((await t.request(path, { method: 'POST', token: admin.accessToken })).status).toBe(204);
    expect(await listed()).toBe(false);

    const notice = await mailTo(capture, account.email, DISABLED);
    expect(notice.text).toContain('An administrator turned off two-step sign-in');
    const [reset] = await auditEvents(t, { event: 'admin.mfa_reset', userId: account.id });
    expect(reset).toMatchObject({ actorUserId: admin.id, metadata: { wasEnabled: true } });
    const [disabled] = await auditEvents(t, { event: 'mfa.disabled', userId: account.id });
    expect(disabled).toMatchObject({ actorUserId: admin.id, metadata: { via: 'operator' } });
    const plain = await login(account, freshClient());
    expect(plain.body.user.mfaEnabled).toBe(false);
    expect(await t.dataSource.getRepository(RecoveryCode).countBy({ userId: account.id })).toBe(0);
  });
});
