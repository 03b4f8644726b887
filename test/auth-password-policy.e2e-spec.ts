import { Injectable } from '@nestjs/common';
import { NistPasswordPolicy } from '../src/auth/nist-password.policy.js';
import { type PasswordContext, PasswordPolicy } from '../src/auth/password.policy.js';
import { User } from '../src/users/user.entity.js';
import { logIn, mailTo, signUp, SUBJECTS } from './support/accounts.js';
import { uniqueEmail } from './support/factories.js';
import { SmtpCapture, tokenFrom } from './support/smtp-capture.js';
import { TestApp } from './support/test-app.js';

const api = '/api/v1';

/** A team's policy: everything the default refuses, and also passwords without a digit. */
@Injectable()
class DigitRequiredPolicy extends NistPasswordPolicy {
  override problem(password: string, context: PasswordContext): string | null {
    return super.problem(password, context) ?? (/\p{Nd}/u.test(password) ? null : 'must contain a digit');
  }
}

const NO_DIGIT = 'violet kettle drifts at noon';
const WITH_DIGIT = 'violet kettle drifts at 9 noon';

describe('a team swaps the password policy', () => {
  let t: TestApp;
  let capture: SmtpCapture;

  beforeAll(async () => {
    capture = await SmtpCapture.start();
    t = await TestApp.start({ MAIL_URL: capture.url, MAIL_POLL_INTERVAL: '50ms' }, [], {
      override: (builder) => builder.overrideProvider(PasswordPolicy).useClass(DigitRequiredPolicy),
    });
  });

  afterAll(async () => {
    await t.close();
    await capture.stop();
  });

  const post = (path: string, body: unknown) => t.request(`${api}${path}`, { method: 'POST', body });
  const refusal = (field: string) => ({
    code: 'VALIDATION_FAILED',
    errors: [{ field, message: `${field} must contain a digit` }],
  });

  it('refuses a registration the new policy refuses, and creates nothing', async () => {
    const email = uniqueEmail('no-digit');

    const refused = await post('/auth/register', { email, password: NO_DIGIT });

    expect(refused.status).toBe(400);
    expect(refused.body).toMatchObject(refusal('password'));
    expect(await t.dataSource.getRepository(User).countBy({ email })).toBe(0);
  });

  it('keeps the default rules it extends', async () => {
    const refused = await post('/auth/register', { email: uniqueEmail('common'), password: 'password1' });

    expect(refused.status).toBe(400);
    expect(refused.body.errors).toEqual([
      { field: 'password', message: 'password is too common; choose a less guessable password' },
    ]);
  });

  it('applies to the reset and the change of a password', async () => {
    const account = await signUp(t, capture, { password: WITH_DIGIT });
    await post('/auth/forgot-password', { email: account.email });
    const token = tokenFrom(await mailTo(capture, account.email, SUBJECTS.reset));

    const reset = await post('/auth/reset-password', { token, password: `another ${NO_DIGIT}` });
    expect(reset.status).toBe(400);
    expect(reset.body).toMatchObject(refusal('password'));
    // The refused attempt did not burn the link.
    expect((await post('/auth/reset-password', { token, password: `${WITH_DIGIT} again` })).status).toBe(204);

    const session = await logIn(t, { email: account.email, password: `${WITH_DIGIT} again` });
    const change = await t.request(`${api}/users/me/password`, {
      method: 'PUT',
      token: session.accessToken,
      body: { currentPassword: `${WITH_DIGIT} again`, newPassword: `yet ${NO_DIGIT}` },
    });
    expect(change.status).toBe(400);
    expect(change.body).toMatchObject(refusal('newPassword'));
  });
});
