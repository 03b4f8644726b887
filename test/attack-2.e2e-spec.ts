import { UsersService } from '../src/users/users.service.js';
import { auditEvents, mailTo, PASSWORD, signUp, SUBJECTS } from './support/accounts.js';
import { uniqueEmail } from './support/factories.js';
import { SmtpCapture, tokenFrom } from './support/smtp-capture.js';
import { type ApiResponse, TestApp } from './support/test-app.js';

/** Attack round 2 on issues 11 and 12: each test reproduces an attack and shows it now fails. */

const WRONG = 'not the right password';
let nextClient = 1;
const freshClient = () => `203.0.113.${nextClient++}`;

function login(app: TestApp, email: string, password: string, client: string): Promise<ApiResponse> {
  return app.request('/api/v1/auth/login', {
    method: 'POST',
    body: { email, password },
    headers: { 'X-Forwarded-For': client },
  });
}

/** The address with its first `a` accented: another address, though MySQL's `_ci` collation says equal. */
const accented = (email: string) => email.replace('a', '\u00e1');

describe('attack 2', () => {
  let t: TestApp;
  let capture: SmtpCapture;

  beforeAll(async () => {
    capture = await SmtpCapture.start();
    t = await TestApp.start({
      TRUST_PROXY: 'true',
      AUTH_LOCKOUT_THRESHOLD: '3',
      AUTH_LOCKOUT_ACCOUNT_THRESHOLD: '5',
      AUTH_LOCKOUT_DURATION: '15m',
      MAIL_URL: capture.url,
      MAIL_POLL_INTERVAL: '50ms',
    });
  });

  afterEach(() => {
    jest.restoreAllMocks();
  });

  afterAll(async () => {
    await t.close();
    await capture.stop();
  });

  it('an accented variant of the address is not the account: it gets no fresh lockout counter to guess with', async () => {
    const owner = await signUp(t, capture, { email: uniqueEmail('ada') });
    const client = freshClient();
    for (let i = 0; i < 3; i += 1) {
      expect((await login(t, owner.email, WRONG, client)).status).toBe(401);
    }
    expect((await login(t, owner.email, owner.password, client)).status).toBe(429);
    // On MySQL `adá@…` = `ada@…` under utf8mb4_unicode_ci: the variant found the account, was
    // counted under its own key, and the right password signed in past the lock.
    const variant = await login(t, accented(owner.email), owner.password, client);
    expect(variant.status).toBe(401);
    expect(variant.body).toMatchObject({ code: 'INVALID_CREDENTIALS' });
    expect(await auditEvents(t, { event: 'auth.login_succeeded', userId: owner.id })).toHaveLength(0);
    const failed = await auditEvents(t, { event: 'auth.login_failed' });
    expect(failed.filter((e) => e.userId === owner.id)).toHaveLength(4);
    expect(failed.at(-1)).toMatchObject({ userId: null, metadata: { reason: 'unknown_email' } });
  });

  it('a registration that read the address before its owner verified does not void the verified password', async () => {
    const email = uniqueEmail('owner');
    const register = (password: string) =>
      t.request('/api/v1/auth/register', { method: 'POST', body: { email, password } });
    expect((await register(PASSWORD)).status).toBe(202);
    const token = tokenFrom(await mailTo(capture, email, SUBJECTS.verify));
    // The attacker's registration looks the address up (unverified), then the owner verifies,
    // then the attacker's registration goes on with what it read.
    const users = t.app.get(UsersService);
    const findByEmail = users.findByEmail.bind(users);
    let verified: Promise<ApiResponse> | undefined;
    jest.spyOn(users, 'findByEmail').mockImplementationOnce(async (address) => {
      const stale = await findByEmail(address);
      verified = t.request('/api/v1/auth/verify-email', { method: 'POST', body: { token } });
      expect((await verified).status).toBe(200);
      return stale;
    });
    expect((await register('attacker chose this one')).status).toBe(202);
    expect(verified).toBeDefined();
    // The owner's password still works, and the attacker's does not.
    expect((await login(t, email, PASSWORD, freshClient())).status).toBe(200);
    expect((await login(t, email, 'attacker chose this one', freshClient())).status).toBe(401);
    const [owner] = await t.dataSource.query('SELECT id FROM users WHERE email = ?', [email]);
    const existing = await auditEvents(t, { event: 'user.register_existing', userId: Number(owner.id) });
    expect(existing.map((e) => e.metadata)).toEqual([expect.objectContaining({ verified: true })]);
  });

  it('quoted and escaped forms of one mailbox share its mail budget ("ada"@, "\\ada"@ are ada@)', async () => {
    const local = `bomb${Date.now().toString(36)}`;
    const plain = `${local}@example.test`;
    // RFC 5321 §4.1.2: a quoted local part is the same mailbox as its unquoted form, and a backslash
    // only quotes the character after it; each form passed validation as a new address.
    const variants = [
      `"${local}"`,
      `"\\${local}"`,
      `"${local[0]}\\${local.slice(1)}"`,
      `"\\${local[0]}\\${local.slice(1)}"`,
    ];
    const addresses = [plain, ...variants.map((v) => `${v}@example.test`)];
    for (const email of addresses) {
      const res = await t.request('/api/v1/auth/register', {
        method: 'POST',
        body: { email, password: PASSWORD },
        headers: { 'X-Forwarded-For': freshClient() },
      });
      expect(res.status).toBe(202);
    }
    const rows: { id: number }[] = await t.dataSource.query(
      `SELECT id FROM users WHERE email IN (${addresses.map(() => '?').join(', ')})`,
      addresses,
    );
    expect(rows).toHaveLength(addresses.length);
    const ids = new Set(rows.map((r) => Number(r.id)));
    const sent = (await auditEvents(t, { event: 'email.verification_sent' })).filter((e) =>
      ids.has(e.userId!),
    );
    const suppressed = (await auditEvents(t, { event: 'mail.suppressed' })).filter((e) => ids.has(e.userId!));
    expect(sent).toHaveLength(1);
    expect(suppressed).toHaveLength(variants.length);
    expect(suppressed[0].metadata).toMatchObject({ template: 'verify-email', reason: 'budget' });
  });

  it.each(['register', 'resend-verification', 'forgot-password'])(
    'answers an email with a lone surrogate on %s with 400, not a 500 from the validator',
    async (route) => {
      const before = (await auditEvents(t)).length;
      const res = await t.request(`/api/v1/auth/${route}`, {
        method: 'POST',
        body: { email: 'ada\ud800@example.test', password: PASSWORD },
        headers: { 'X-Forwarded-For': freshClient() },
      });
      expect(res.status).toBe(400);
      expect(res.body).toMatchObject({ code: 'VALIDATION_FAILED' });
      expect(await auditEvents(t)).toHaveLength(before);
    },
  );
});
