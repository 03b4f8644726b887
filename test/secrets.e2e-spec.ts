import { mailsTo, mailTo, SUBJECTS } from './support/accounts.js';
import { uniqueEmail } from './support/factories.js';
import { SmtpCapture, tokenFrom } from './support/smtp-capture.js';
import { TestApp } from './support/test-app.js';

/**
 * Runs every credential-bearing flow once, collecting each password, mailed token, JWT and refresh
 * token used, then searches every log line the app wrote and every row of every table for them.
 * DESIGN §5: none of them may ever appear in a log line or an audit row (nor be stored raw).
 */
describe('secrets never reach logs or the database', () => {
  let t: TestApp;
  let capture: SmtpCapture;
  const secrets = new Set<string>();

  beforeAll(async () => {
    capture = await SmtpCapture.start();
    t = await TestApp.start({ MAIL_URL: capture.url, MAIL_POLL_INTERVAL: '50ms', LOG_LEVEL: 'trace' });
  });

  afterAll(async () => {
    await t.close();
    await capture.stop();
  });

  const post = async (path: string, body: unknown, token?: string) =>
    t.request(`/api/v1${path}`, { method: 'POST', body, token });
  const keep = (...values: (string | undefined)[]) => values.forEach((v) => v && secrets.add(v));

  it('runs the flows', async () => {
    const email = uniqueEmail('secrets');
    const password = 'first secret passphrase';
    keep(password);
    await post('/auth/register', { email, password });
    const verifyToken = tokenFrom(await mailTo(capture, email, SUBJECTS.verify));
    keep(verifyToken);
    await t.request(`/verify-email?token=${verifyToken}`);
    expect((await post('/auth/verify-email', { token: verifyToken })).status).toBe(200);

    await post('/auth/login', { email, password: 'a wrong guess of a password' });
    keep('a wrong guess of a password');
    const login = await post('/auth/login', { email, password });
    keep(login.body.accessToken, login.body.refreshToken);
    const refreshed = await post('/auth/refresh', { refreshToken: login.body.refreshToken });
    keep(refreshed.body.accessToken, refreshed.body.refreshToken);
    // A replay within the refresh grace: the session's current pair again, with a new access token.
    const replayed = await post('/auth/refresh', { refreshToken: login.body.refreshToken });
    keep(replayed.body.accessToken, replayed.body.refreshToken);

    const again = await post('/auth/login', { email, password });
    keep(again.body.accessToken, again.body.refreshToken);
    const token = again.body.accessToken as string;
    await t.request('/api/v1/todos', { method: 'POST', body: { title: 'secret todo' }, token });
    await t.request('/api/v1/users/me', { token });
    const second = 'second secret passphrase';
    keep(second);
    expect(
      (
        await t.request('/api/v1/users/me/password', {
          method: 'PUT',
          body: { currentPassword: password, newPassword: second },
          token,
        })
      ).status,
    ).toBe(204);

    await post('/auth/forgot-password', { email });
    const resetToken = tokenFrom(await mailTo(capture, email, SUBJECTS.reset));
    keep(resetToken);
    await t.request(`/reset-password?token=${resetToken}`);
    const third = 'third secret passphrase';
    keep(third);
    expect((await post('/auth/reset-password', { token: resetToken, password: third })).status).toBe(204);
    await post('/auth/reset-password', { token: resetToken, password: third }); // reuse, refused

    const last = await post('/auth/login', { email, password: third });
    keep(last.body.accessToken, last.body.refreshToken);
    await post('/auth/logout', undefined, last.body.accessToken);
    const final = await post('/auth/login', { email, password: third });
    keep(final.body.accessToken, final.body.refreshToken);
    expect(
      (
        await t.request('/api/v1/users/me', {
          method: 'DELETE',
          body: { password: third },
          token: final.body.accessToken,
        })
      ).status,
    ).toBe(204);
    await capture.waitFor(() => mailsTo(capture, email, SUBJECTS.changed).length === 2);
    expect(secrets.size).toBeGreaterThanOrEqual(14);
  });

  it('finds none of them in any log line', () => {
    const logs = t.logs.join('');
    expect(logs.length).toBeGreaterThan(1000);
    for (const secret of secrets) {
      expect(logs.includes(secret) ? secret : null).toBeNull();
    }
  });

  it('finds none of them in any row of any table', async () => {
    // Every table the entities map, so a table added later is searched too.
    const tables = t.dataSource.entityMetadatas.map((m) => m.tableName);
    expect(tables).toContain('refresh_token_history');
    for (const table of tables) {
      const dump = JSON.stringify(await t.dataSource.query(`SELECT * FROM ${table}`));
      for (const secret of secrets) {
        expect(dump.includes(secret) ? `${table}: ${secret}` : null).toBeNull();
      }
    }
    const audit = await t.dataSource.query('SELECT COUNT(*) AS n FROM audit_events');
    expect(Number(audit[0].n)).toBeGreaterThan(10);
  });
});
