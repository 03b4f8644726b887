import { Injectable, Module } from '@nestjs/common';
import { OnEvent } from '@nestjs/event-emitter';
import type { AccountEvent } from '../src/auth/account.events.js';
import type { DomainEventName } from '../src/events/domain-events.js';
import { logIn, mailsTo, PASSWORD, signUp, SUBJECTS } from './support/accounts.js';
import { uniqueEmail } from './support/factories.js';
import { SmtpCapture, tokenFrom } from './support/smtp-capture.js';
import { TestApp } from './support/test-app.js';

const seen: [string, AccountEvent][] = [];

/** What a team's listener sees of an account's life: every event after its commit, ids only. */
@Injectable()
class AccountListener {
  @OnEvent('user.registered' satisfies DomainEventName)
  registered(payload: AccountEvent): void {
    seen.push(['user.registered', payload]);
  }

  @OnEvent('user.verified' satisfies DomainEventName)
  verified(payload: AccountEvent): void {
    seen.push(['user.verified', payload]);
  }

  @OnEvent('password.changed' satisfies DomainEventName)
  changed(payload: AccountEvent): void {
    seen.push(['password.changed', payload]);
  }

  @OnEvent('password.reset' satisfies DomainEventName)
  reset(payload: AccountEvent): void {
    seen.push(['password.reset', payload]);
  }

  @OnEvent('user.deleted' satisfies DomainEventName)
  deleted(payload: AccountEvent): void {
    seen.push(['user.deleted', payload]);
  }
}

@Module({ providers: [AccountListener] })
class AccountListenerModule {}

describe('account domain events', () => {
  let t: TestApp;
  let capture: SmtpCapture;

  beforeAll(async () => {
    capture = await SmtpCapture.start();
    t = await TestApp.start({ MAIL_URL: capture.url, MAIL_POLL_INTERVAL: '20ms' }, [AccountListenerModule]);
  });

  afterAll(async () => {
    await t.close();
    await capture.stop();
  });

  beforeEach(() => {
    seen.length = 0;
  });

  const eventsOf = (userId: number) =>
    seen.filter(([, payload]) => payload.userId === userId).map(([name]) => name);

  it('publishes user.registered and user.verified, with only the user id', async () => {
    const account = await signUp(t, capture);
    expect(eventsOf(account.id)).toEqual(['user.registered', 'user.verified']);
    expect(seen.every(([, payload]) => Object.keys(payload).join() === 'userId')).toBe(true);
  });

  it('publishes nothing for a known address that registers again, or a refused verification', async () => {
    const account = await signUp(t, capture);
    seen.length = 0;
    const again = await t.request('/api/v1/auth/register', {
      method: 'POST',
      body: { email: account.email, password: 'some other passphrase' },
    });
    expect(again.status).toBe(202);
    const bad = await t.request('/api/v1/auth/verify-email', {
      method: 'POST',
      body: { token: 'x'.repeat(43) },
    });
    expect(bad.status).toBe(400);
    await new Promise((resolve) => setTimeout(resolve, 50));
    expect(seen).toEqual([]);
  });

  it('publishes password.changed, password.reset and user.deleted', async () => {
    const account = await signUp(t, capture);
    const session = await logIn(t, account);
    const changed = await t.request('/api/v1/users/me/password', {
      method: 'PUT',
      token: session.accessToken,
      body: { currentPassword: PASSWORD, newPassword: 'a fresh passphrase here' },
    });
    expect(changed.status).toBe(204);

    const forgot = await t.request('/api/v1/auth/forgot-password', {
      method: 'POST',
      body: { email: account.email },
    });
    expect(forgot.status).toBe(202);
    await capture.waitFor(() => mailsTo(capture, account.email, SUBJECTS.reset).length > 0);
    const token = tokenFrom(mailsTo(capture, account.email, SUBJECTS.reset)[0]);
    const reset = await t.request('/api/v1/auth/reset-password', {
      method: 'POST',
      body: { token, password: 'the third passphrase' },
    });
    expect(reset.status).toBe(204);

    const again = await logIn(t, { email: account.email, password: 'the third passphrase' });
    const deleted = await t.request('/api/v1/users/me', {
      method: 'DELETE',
      token: again.accessToken,
      body: { password: 'the third passphrase' },
    });
    expect(deleted.status).toBe(204);
    // user.verified is not published again: the address was already verified before the reset.
    expect(eventsOf(account.id)).toEqual([
      'user.registered',
      'user.verified',
      'password.changed',
      'password.reset',
      'user.deleted',
    ]);
  });

  it('publishes user.verified when a password reset proves an unverified address', async () => {
    const email = uniqueEmail('reset-verifies');
    await t.request('/api/v1/auth/register', { method: 'POST', body: { email, password: PASSWORD } });
    await t.request('/api/v1/auth/forgot-password', { method: 'POST', body: { email } });
    await capture.waitFor(() => mailsTo(capture, email, SUBJECTS.reset).length > 0);
    const token = tokenFrom(mailsTo(capture, email, SUBJECTS.reset)[0]);
    const reset = await t.request('/api/v1/auth/reset-password', {
      method: 'POST',
      body: { token, password: 'another good passphrase' },
    });
    expect(reset.status).toBe(204);
    const [{ id }] = await t.dataSource.query<{ id: number }[]>('SELECT id FROM users WHERE email = ?', [
      email,
    ]);
    expect(eventsOf(Number(id))).toEqual(['user.registered', 'password.reset', 'user.verified']);
  });
});
