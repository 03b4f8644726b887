import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { AuditEvent } from '../src/audit/audit-event.entity.js';
import { AccessTokensService } from '../src/auth/access-tokens.service.js';
import { PasswordHasher } from '../src/auth/password-hasher.service.js';
import { Session } from '../src/auth/session.entity.js';
import { OutboxMessage } from '../src/mail/outbox-message.entity.js';
import { EmailVerificationToken } from '../src/tokens/one-time-token.entity.js';
import { LoginFailure } from '../src/users/login-failure.entity.js';
import { loginKeyOf } from '../src/users/login-failures.repository.js';
import { User } from '../src/users/user.entity.js';
import { newSession, newUser, type SeededUser, uniqueEmail } from './support/factories.js';
import { TestApp } from './support/test-app.js';

const ADMIN_USERS = '/api/v1/admin/users';
const ME_TRAIL = '/api/v1/users/me/audit-events';
const ROOT = process.cwd();
const BUILT_CLI = join(ROOT, 'dist/src/cli.js');

describe('admin', () => {
  let t: TestApp;
  let admin: SeededUser;

  beforeAll(async () => {
    t = await TestApp.start();
    admin = await newUser(t, { role: 'admin' });
  });

  afterAll(async () => {
    await t.close();
  });

  const userRow = (id: number) => t.dataSource.getRepository(User).findOneByOrFail({ id });
  const auditOf = (userId: number, event: string) =>
    t.dataSource.getRepository(AuditEvent).find({ where: { userId, event }, order: { id: 'ASC' } });
  const post = (path: string, token = admin.accessToken) => t.request(path, { method: 'POST', token });

  describe('every route under /api/v1/admin', () => {
    it('answers 403 ADMIN_REQUIRED to a non-admin and 401 to an anonymous caller, and changes nothing', async () => {
      const doc = (await t.request('/docs/openapi.json')).body;
      const target = await newUser(t, { verified: false });
      const user = await newUser(t);
      const routes = Object.entries(doc.paths as Record<string, Record<string, unknown>>)
        .filter(([path]) => path.startsWith('/api/v1/admin'))
        .flatMap(([path, operations]) => Object.keys(operations).map((method) => ({ path, method })));
      // The sweep must see the routes it guards; a route added later is swept automatically.
      expect(routes.length).toBeGreaterThanOrEqual(6);
      for (const { path, method } of routes) {
        const url = path.replace(/\{[^}]+\}/g, String(target.id));
        const forbidden = await t.request(url, { method: method.toUpperCase(), token: user.accessToken });
        expect({ method, path, status: forbidden.status, code: forbidden.body.code }).toEqual({
          method,
          path,
          status: 403,
          code: 'ADMIN_REQUIRED',
        });
        const anonymous = await t.request(url, { method: method.toUpperCase() });
        expect({ method, path, status: anonymous.status, code: anonymous.body.code }).toEqual({
          method,
          path,
          status: 401,
          code: 'UNAUTHENTICATED',
        });
        const operation = doc.paths[path][method];
        expect(operation.security).toEqual([{ bearer: [] }]);
        expect(Object.keys(operation.responses)).toEqual(expect.arrayContaining(['401', '403']));
      }
      const after = await userRow(target.id);
      expect(after.disabledAt).toBeNull();
      await expect(t.dataSource.getRepository(AuditEvent).countBy({ userId: target.id })).resolves.toBe(0);
      await expect(
        t.dataSource.getRepository(OutboxMessage).countBy({ recipient: target.email }),
      ).resolves.toBe(0);
    });
  });

  describe('GET /admin/users', () => {
    it('shows an internationalized address as the document describes it (idn-email), to its owner and to an admin', async () => {
      const tag = Date.now().toString(36);
      const password = 'correct horse battery staple';
      const registered = await t.request('/api/v1/auth/register', {
        method: 'POST',
        body: { email: `José.${tag}@Bücher.example`, password },
      });
      expect(registered.status).toBeLessThan(300);
      const stored = await t.dataSource
        .getRepository(User)
        .findOneByOrFail({ email: `josé.${tag}@bücher.example` });
      const owner = await newSession(t, stored.id);
      const token = await t.app.get(AccessTokensService).sign(stored.id, owner);
      // Each answer is checked against the document by t.request: format `email` (ASCII) refused them.
      const profile = await t.request('/api/v1/users/me', { token });
      expect(profile.body.email).toBe(`josé.${tag}@bücher.example`);
      const listed = await t.request(`${ADMIN_USERS}?email=${encodeURIComponent(`josé.${tag}`)}`, {
        token: admin.accessToken,
      });
      expect(listed.body.items.map((item: { email: string }) => item.email)).toEqual([stored.email]);
    });

    it('searches by email prefix, pages, and shows verified, locked and disabled state', async () => {
      const tag = `find-${Date.now().toString(36)}`;
      const seeded: SeededUser[] = [];
      for (let i = 0; i < 3; i += 1) {
        seeded.push(await newUser(t, { email: `${tag}-${i}@example.test`, verified: i !== 0 }));
      }
      await newUser(t, { email: `not-${tag}@example.test` });
      const now = new Date();
      await t.dataSource.getRepository(LoginFailure).insert([
        // Locked on one client; five failures in a row across all clients.
        {
          emailHash: loginKeyOf(seeded[1].email),
          client: '198.51.100.7',
          failures: 5,
          lockedUntil: new Date(now.getTime() + 900_000),
          updatedAt: now,
        },
        {
          emailHash: loginKeyOf(seeded[1].email),
          client: '*',
          failures: 5,
          lockedUntil: null,
          updatedAt: now,
        },
      ]);
      await t.dataSource.getRepository(User).update({ id: seeded[2].id }, { disabledAt: new Date() });

      const first = await t.request(`${ADMIN_USERS}?email=${tag.toUpperCase()}&limit=2`, {
        token: admin.accessToken,
      });
      expect(first.status).toBe(200);
      expect(first.body.items.map((u: { id: number }) => u.id)).toEqual([seeded[2].id, seeded[1].id]);
      const second = await t.request(`${ADMIN_USERS}?email=${tag}&limit=2&cursor=${first.body.nextCursor}`, {
        token: admin.accessToken,
      });
      expect(second.body).toEqual({
        items: [expect.objectContaining({ id: seeded[0].id })],
        nextCursor: null,
      });

      const [disabled, locked] = first.body.items;
      expect(disabled).toMatchObject({ disabled: true, locked: false, isVerified: true, role: 'user' });
      expect(disabled.disabledAt).toEqual(expect.any(String));
      expect(locked).toMatchObject({ disabled: false, locked: true, failedLoginCount: 5 });
      expect(second.body.items[0]).toMatchObject({ isVerified: false, locked: false, disabled: false });
      expect(JSON.stringify(first.body)).not.toMatch(/password/i);
    });

    it('treats LIKE wildcards in the search literally', async () => {
      await newUser(t, { email: uniqueEmail('wild') });
      const res = await t.request(`${ADMIN_USERS}?email=%25`, { token: admin.accessToken });
      expect(res.status).toBe(200);
      expect(res.body.items).toEqual([]);
      const underscore = await t.request(`${ADMIN_USERS}?email=_`, { token: admin.accessToken });
      expect(underscore.body.items).toEqual([]);
    });
  });

  describe('POST /admin/users/:id/disable and /enable', () => {
    it('disables at once: the user’s live access token fails on its next request; audited with the actor', async () => {
      const victim = await newUser(t);
      const secondSession = await newSession(t, victim.id);
      await expect(t.request(ME_TRAIL, { token: victim.accessToken })).resolves.toMatchObject({
        status: 200,
      });

      const res = await post(`${ADMIN_USERS}/${victim.id}/disable`, admin.accessToken);
      expect(res.status).toBe(204);
      expect(res.text).toBe('');

      const after = await t.request(ME_TRAIL, { token: victim.accessToken });
      expect(after.status).toBe(401);
      expect(after.body.code).toBe('UNAUTHENTICATED');
      expect((await userRow(victim.id)).disabledAt).toBeInstanceOf(Date);
      const sessions = await t.dataSource.getRepository(Session).findBy({ userId: victim.id });
      expect(sessions.map((s) => s.id).sort()).toEqual([victim.sessionId, secondSession].sort());
      expect(sessions.every((s) => s.revokedAt !== null && s.revokedReason === 'account_disabled')).toBe(
        true,
      );

      const [row] = await auditOf(victim.id, 'admin.user_disabled');
      expect(row).toMatchObject({
        outcome: 'success',
        userId: victim.id,
        actorUserId: admin.id,
        ip: '127.0.0.1',
        metadata: { sessionsRevoked: 2 },
      });
      expect(row.requestId).toEqual(expect.any(String));

      // The admin search finds the action by the target and shows who acted.
      const search = await t.request(
        `/api/v1/admin/audit-events?userId=${victim.id}&event=admin.user_disabled`,
        {
          token: admin.accessToken,
        },
      );
      expect(search.body.items).toEqual([
        expect.objectContaining({ userId: victim.id, actorUserId: admin.id }),
      ]);
    });

    it('enables again: new sessions work, the revoked ones stay dead', async () => {
      const user = await newUser(t);
      await post(`${ADMIN_USERS}/${user.id}/disable`);
      const res = await post(`${ADMIN_USERS}/${user.id}/enable`);
      expect(res.status).toBe(204);
      expect((await userRow(user.id)).disabledAt).toBeNull();
      await expect(t.request(ME_TRAIL, { token: user.accessToken })).resolves.toMatchObject({ status: 401 });
      const fresh = await t.app.get(AccessTokensService).sign(user.id, await newSession(t, user.id));
      await expect(t.request(ME_TRAIL, { token: fresh })).resolves.toMatchObject({ status: 200 });
      const [row] = await auditOf(user.id, 'admin.user_enabled');
      expect(row).toMatchObject({ userId: user.id, actorUserId: admin.id, outcome: 'success' });
    });

    it('refuses to let an admin disable themselves (400) and answers 404 for an unknown user', async () => {
      const self = await post(`${ADMIN_USERS}/${admin.id}/disable`);
      expect(self.status).toBe(400);
      expect(self.body.code).toBe('CANNOT_DISABLE_SELF');
      expect((await userRow(admin.id)).disabledAt).toBeNull();

      for (const action of ['disable', 'enable', 'unlock', 'resend-verification']) {
        const missing = await post(`${ADMIN_USERS}/999999/${action}`);
        expect({ action, status: missing.status, code: missing.body.code }).toEqual({
          action,
          status: 404,
          code: 'USER_NOT_FOUND',
        });
        const bad = await post(`${ADMIN_USERS}/abc/${action}`);
        expect({ action, status: bad.status, code: bad.body.code }).toEqual({
          action,
          status: 400,
          code: 'VALIDATION_FAILED',
        });
      }
      await expect(t.dataSource.getRepository(AuditEvent).countBy({ userId: 999999 })).resolves.toBe(0);
    });
  });

  describe('POST /admin/users/:id/unlock', () => {
    it('clears the lockout and the failure counters; audited with the actor', async () => {
      const user = { ...(await newUser(t)), password: 'a real passphrase here' };
      const passwordHash = await t.app.get(PasswordHasher).hash(user.password);
      await t.dataSource.getRepository(User).update({ id: user.id }, { passwordHash });
      for (let i = 0; i < 5; i += 1) {
        const res = await t.request('/api/v1/auth/login', {
          method: 'POST',
          body: { email: user.email, password: 'not the password' },
        });
        expect(res.status).toBe(401);
      }
      const login = () =>
        t.request('/api/v1/auth/login', {
          method: 'POST',
          body: { email: user.email, password: user.password },
        });
      expect((await login()).status).toBe(429);
      const res = await post(`${ADMIN_USERS}/${user.id}/unlock`);
      expect(res.status).toBe(204);
      expect(
        await t.dataSource.getRepository(LoginFailure).countBy({ emailHash: loginKeyOf(user.email) }),
      ).toBe(0);
      expect((await login()).status).toBe(200);
      const [event] = await auditOf(user.id, 'admin.user_unlocked');
      expect(event).toMatchObject({
        actorUserId: admin.id,
        metadata: { failedLoginCount: 5, lockedUntil: expect.any(String), countersCleared: 2 },
      });
    });
  });

  describe('POST /admin/users/:id/resend-verification', () => {
    it('issues a verification token and queues the mail for an unverified user', async () => {
      const user = await newUser(t, { verified: false });
      const res = await post(`${ADMIN_USERS}/${user.id}/resend-verification`);
      expect(res.status).toBe(204);
      const mail = await t.dataSource.getRepository(OutboxMessage).findBy({ recipient: user.email });
      expect(mail).toHaveLength(1);
      expect(mail[0].template).toBe('verify-email');
      await expect(
        t.dataSource.getRepository(EmailVerificationToken).countBy({ userId: user.id }),
      ).resolves.toBe(1);
      const [event] = await auditOf(user.id, 'admin.verification_resent');
      expect(event).toMatchObject({ actorUserId: admin.id, outcome: 'success' });
      expect(JSON.stringify(event.metadata ?? {})).not.toMatch(/token/i);
    });

    it('answers 409 ALREADY_VERIFIED for a verified user and queues nothing', async () => {
      const user = await newUser(t, { verified: true });
      const res = await post(`${ADMIN_USERS}/${user.id}/resend-verification`);
      expect(res.status).toBe(409);
      expect(res.body.code).toBe('ALREADY_VERIFIED');
      await expect(
        t.dataSource.getRepository(OutboxMessage).countBy({ recipient: user.email }),
      ).resolves.toBe(0);
      await expect(auditOf(user.id, 'admin.verification_resent')).resolves.toEqual([]);
    });
  });

  describe('the first admin, from the CLI', () => {
    it('`users:promote <email>` makes an account admin, audited; its live token gains admin routes', async () => {
      const user = await newUser(t);
      await expect(t.request(ADMIN_USERS, { token: user.accessToken })).resolves.toMatchObject({
        status: 403,
      });

      const run = promisify(execFile);
      const env = { PATH: process.env.PATH ?? '', NODE_ENV: 'test', DATABASE_URL: t.config.database.url };
      const { stdout } = await run('node', [BUILT_CLI, 'users:promote', `  ${user.email.toUpperCase()} `], {
        cwd: ROOT,
        env,
        timeout: 60_000,
      });
      expect(stdout).toContain(`${user.email} is now an administrator.`);
      expect((await userRow(user.id)).role).toBe('admin');
      const [event] = await auditOf(user.id, 'user.promoted');
      expect(event).toMatchObject({ outcome: 'success', metadata: { via: 'cli', role: 'admin' } });
      await expect(t.request(ADMIN_USERS, { token: user.accessToken })).resolves.toMatchObject({
        status: 200,
      });

      const again = await run('node', [BUILT_CLI, 'users:promote', user.email], { cwd: ROOT, env });
      expect(again.stdout).toContain('already an administrator');

      await expect(
        run('node', [BUILT_CLI, 'users:promote', 'nobody@example.test'], { cwd: ROOT, env }),
      ).rejects.toMatchObject({ code: 1, stderr: expect.stringContaining('No account has the email') });

      // An address nobody has proved may have been registered by someone else first (DESIGN §5).
      const unverified = await newUser(t, { verified: false });
      await expect(
        run('node', [BUILT_CLI, 'users:promote', unverified.email], { cwd: ROOT, env }),
      ).rejects.toMatchObject({ code: 1, stderr: expect.stringContaining('only verified accounts') });
      expect((await userRow(unverified.id)).role).toBe('user');
      expect(await auditOf(unverified.id, 'user.promoted')).toEqual([]);
    }, 60_000);
  });
});
