import type { ParsedMail } from 'mailparser';
import { AuditEvent } from '../../src/audit/audit-event.entity.js';
import { totpCode } from '../../src/auth/mfa/totp.js';
import { uniqueEmail } from './factories.js';
import { recipientsOf, type SmtpCapture, tokenFrom } from './smtp-capture.js';
import type { TestApp } from './test-app.js';

export const PASSWORD = 'violet kettle drifts at noon';

export const SUBJECTS = {
  verify: 'Confirm your email address',
  reset: 'Reset your password',
  exists: 'You already have an account',
  changed: 'Your password was changed',
} as const;

export function mailTo(
  capture: SmtpCapture,
  email: string,
  subject: string,
  timeoutMs = 5000,
): Promise<ParsedMail> {
  return capture.waitFor((m) => recipientsOf(m).includes(email) && m.subject === subject, timeoutMs);
}

export function mailsTo(capture: SmtpCapture, email: string, subject?: string): ParsedMail[] {
  return capture.messages.filter(
    (m) => recipientsOf(m).includes(email) && (!subject || m.subject === subject),
  );
}

export interface Account {
  id: number;
  email: string;
  password: string;
}

export interface Session {
  accessToken: string;
  refreshToken: string;
}

/** Registers through the API and verifies with the mailed token: a real, verified account. */
export async function signUp(
  t: TestApp,
  capture: SmtpCapture,
  options: { email?: string; password?: string } = {},
): Promise<Account> {
  const email = options.email ?? uniqueEmail('acct');
  const password = options.password ?? PASSWORD;
  const before = mailsTo(capture, email, SUBJECTS.verify).length;
  const registered = await t.request('/api/v1/auth/register', { method: 'POST', body: { email, password } });
  expect(registered.status).toBe(202);
  await capture.waitFor(() => mailsTo(capture, email, SUBJECTS.verify).length > before);
  const token = tokenFrom(mailsTo(capture, email, SUBJECTS.verify).at(-1)!);
  const verified = await t.request('/api/v1/auth/verify-email', { method: 'POST', body: { token } });
  expect(verified.status).toBe(200);
  const rows: { id: number }[] = await t.dataSource.query('SELECT id FROM users WHERE email = ?', [email]);
  return { id: Number(rows[0].id), email, password };
}

export async function logIn(
  t: TestApp,
  account: { email: string; password: string },
  headers: Record<string, string> = {},
): Promise<Session> {
  const res = await t.request('/api/v1/auth/login', {
    method: 'POST',
    body: { email: account.email, password: account.password },
    headers,
  });
  expect(res.status).toBe(200);
  return { accessToken: res.body.accessToken, refreshToken: res.body.refreshToken };
}

export function auditEvents(
  t: TestApp,
  where: { event?: string; userId?: number } = {},
): Promise<AuditEvent[]> {
  return t.dataSource.getRepository(AuditEvent).find({
    where: {
      ...(where.event ? { event: where.event } : {}),
      ...(where.userId !== undefined ? { userId: where.userId } : {}),
    },
    order: { id: 'ASC' },
  });
}

/** The problem body without its per-request fields, for "same answer" comparisons. */
export function comparable(body: Record<string, unknown>): Record<string, unknown> {
  const { requestId: _requestId, ...rest } = body;
  return rest;
}

/** Turns TOTP on for the caller of `accessToken` through the API (set-up, then a code of this step). */
export async function enrolTotp(
  t: TestApp,
  accessToken: string,
): Promise<{ secret: string; recoveryCodes: string[] }> {
  const setup = await t.request('/api/v1/auth/mfa/totp/setup', { method: 'POST', token: accessToken });
  const secret = setup.body.secret as string;
  const confirmed = await t.request('/api/v1/auth/mfa/totp/confirm', {
    method: 'POST',
    body: { code: totpCode(secret, Date.now()) },
    token: accessToken,
  });
  expect(confirmed.status).toBe(200);
  return { secret, recoveryCodes: confirmed.body.recoveryCodes as string[] };
}
