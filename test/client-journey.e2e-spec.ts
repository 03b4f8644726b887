import { execSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  createGatehouseClient,
  type GatehouseClient,
  type GatehouseTokens,
  isMfaChallenge,
} from '../clients/typescript/gatehouse-client.js';
import { totpCode } from '../src/auth/mfa/totp.js';
import { Clock } from '../src/common/clock.js';
import { auditEvents, mailTo, PASSWORD, SUBJECTS } from './support/accounts.js';
import { uniqueEmail } from './support/factories.js';
import { SmtpCapture, tokenFrom } from './support/smtp-capture.js';
import { TestApp } from './support/test-app.js';

const GENERATED = 'clients/typescript/schema.ts';
const ACCESS_TTL_S = 2;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** When the JWT stops working, in epoch milliseconds (its `exp`). */
function expiryOf(accessToken: string): number {
  return JSON.parse(Buffer.from(accessToken.split('.')[1], 'base64url').toString('utf8')).exp * 1000;
}

describe('typed client (clients/typescript)', () => {
  it('is what `npm run client:generate` writes from the committed openapi.json', () => {
    const script: string = JSON.parse(readFileSync('package.json', 'utf8')).scripts['client:generate'];
    expect(script).toContain(GENERATED);
    const dir = mkdtempSync(join(tmpdir(), 'gatehouse-client-'));
    try {
      const fresh = join(dir, 'schema.ts');
      execSync(script.replace(GENERATED, fresh), {
        stdio: 'pipe',
        env: { ...process.env, PATH: `${join(process.cwd(), 'node_modules/.bin')}:${process.env.PATH}` },
      });
      // Stale means: run `npm run client:generate` and commit clients/typescript/schema.ts.
      expect(readFileSync(GENERATED, 'utf8')).toBe(readFileSync(fresh, 'utf8'));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  describe('against the real app', () => {
    let t: TestApp;
    let capture: SmtpCapture;

    beforeAll(async () => {
      capture = await SmtpCapture.start();
      t = await TestApp.start({
        MAIL_URL: capture.url,
        MAIL_POLL_INTERVAL: '50ms',
        JWT_ACCESS_TTL: `${ACCESS_TTL_S}s`,
      });
    });

    afterAll(async () => {
      await t.close();
      await capture.stop();
    });

    /** A client whose every request is recorded as "METHOD /path". */
    function recordedClient(
      options: { tokens?: GatehouseTokens; refreshLeewayMs?: number; now?: () => number } = {},
    ) {
      const sent: string[] = [];
      const seenTokens: (GatehouseTokens | null)[] = [];
      const client = createGatehouseClient({
        baseUrl: t.url,
        ...options,
        onTokens: (tokens) => seenTokens.push(tokens),
        // Every answer the client gets is checked against the document, like TestApp.request's.
        fetch: async (request) => {
          sent.push(`${request.method} ${new URL(request.url).pathname}`);
          const response = await fetch(request);
          await t.checkResponse(request.method, request.url, response);
          return response;
        },
      });
      const refreshes = () => sent.filter((line) => line === 'POST /api/v1/auth/refresh').length;
      return { client, sent, seenTokens, refreshes };
    }

    /** Register and verify with the mailed token, through the client only. */
    async function signUpWith(client: GatehouseClient): Promise<{ email: string; userId: number }> {
      const email = uniqueEmail('client');
      const registered = await client.POST('/api/v1/auth/register', {
        body: { email, password: PASSWORD, username: `c${Date.now()}` },
      });
      expect(registered.response.status).toBe(202);
      const token = tokenFrom(await mailTo(capture, email, SUBJECTS.verify));
      const verified = await client.POST('/api/v1/auth/verify-email', { body: { token } });
      expect(verified.response.status).toBe(200);
      const [row] = await t.dataSource.query('SELECT id FROM users WHERE email = ?', [email]);
      return { email, userId: Number(row.id) };
    }

    it('walks register, verify, login, todos CRUD with pagination, an expiry with 20 calls and one refresh, logout', async () => {
      // Its clock runs 200 ms behind: calls that leave in the token's last 200 ms meet a 401 at the server.
      const { client, seenTokens, refreshes, sent } = recordedClient({
        refreshLeewayMs: 0,
        now: () => Date.now() - 200,
      });
      const { email, userId } = await signUpWith(client);

      const login = await client.POST('/api/v1/auth/login', { body: { email, password: PASSWORD } });
      expect(login.response.status).toBe(200);
      const pair = login.data as { accessToken: string; refreshToken: string };
      expect(client.tokens).toEqual({ accessToken: pair.accessToken, refreshToken: pair.refreshToken });
      expect(seenTokens).toEqual([client.tokens]);

      // CRUD, paginated by cursor.
      const titles = ['one', 'two', 'three', 'four', 'five'];
      const ids: number[] = [];
      for (const title of titles) {
        const created = await client.POST('/api/v1/todos', { body: { title, completed: false } });
        expect(created.response.status).toBe(201);
        ids.push(created.data!.id);
      }
      const listed: string[] = [];
      let cursor: string | undefined;
      let pages = 0;
      do {
        const page = await client.GET('/api/v1/todos', { params: { query: { limit: 2, cursor } } });
        expect(page.response.status).toBe(200);
        listed.push(...page.data!.items.map((todo) => todo.title));
        cursor = page.data!.nextCursor ?? undefined;
        pages += 1;
      } while (cursor);
      expect(pages).toBe(3);
      expect([...listed].sort()).toEqual([...titles].sort());
      const updated = await client.PATCH('/api/v1/todos/{id}', {
        params: { path: { id: ids[0] } },
        body: { completed: true },
      });
      expect(updated.data).toMatchObject({ id: ids[0], title: 'one', completed: true });
      expect(
        (await client.GET('/api/v1/todos/{id}', { params: { path: { id: ids[0] } } })).data?.completed,
      ).toBe(true);
      const removed = await client.DELETE('/api/v1/todos/{id}', { params: { path: { id: ids[1] } } });
      expect(removed.response.status).toBe(204);
      const gone = await client.GET('/api/v1/todos/{id}', { params: { path: { id: ids[1] } } });
      expect(gone.response.status).toBe(404);

      // A fresh pair, then 20 calls spread across its expiry: some go through before it, some leave with
      // the old token and meet a 401, some find it expired before they leave; all of them share ONE
      // refresh and succeed.
      await client.POST('/api/v1/auth/refresh', { body: { refreshToken: client.tokens!.refreshToken } });
      const refreshesBefore = refreshes();
      const auditedBefore = (await auditEvents(t, { event: 'auth.refreshed', userId })).length;
      const beforeExpiry = client.tokens!;
      const sentBefore = sent.length;
      await sleep(expiryOf(beforeExpiry.accessToken) - Date.now() - 300);
      const answers = await Promise.all(
        Array.from({ length: 20 }, async (_, i) => {
          await sleep(i * 30);
          return client.GET('/api/v1/todos', { params: { query: { limit: 1 } } });
        }),
      );
      expect(answers.map((a) => a.response.status)).toEqual(Array(20).fill(200));
      expect(refreshes() - refreshesBefore).toBe(1);
      const retried = sent.slice(sentBefore).filter((line) => line === 'GET /api/v1/todos').length - 20;
      expect(retried).toBeGreaterThan(0); // the 401 path was taken, not only the exp check
      expect((await auditEvents(t, { event: 'auth.refreshed', userId })).length - auditedBefore).toBe(1);
      expect(client.tokens!.accessToken).not.toBe(beforeExpiry.accessToken);

      // Logout ends the session: the client signs out, and the old pair is worth nothing.
      const ended = client.tokens!;
      expect((await client.POST('/api/v1/auth/logout')).response.status).toBe(204);
      expect(client.tokens).toBeNull();
      expect(seenTokens.at(-1)).toBeNull();
      expect((await client.GET('/api/v1/users/me')).response.status).toBe(401);
      const stale = recordedClient({ tokens: ended });
      const refused = await stale.client.GET('/api/v1/users/me');
      expect(refused.response.status).toBe(401);
      expect(stale.refreshes()).toBe(1);
      expect(stale.client.tokens).toBeNull();
    });

    it('refreshes once and retries on a 401 invalid_token when the client’s clock runs behind', async () => {
      const { client, sent } = recordedClient({ now: () => Date.now() - 60_000 });
      const { email } = await signUpWith(client);
      await client.POST('/api/v1/auth/login', { body: { email, password: PASSWORD } });
      await sleep(expiryOf(client.tokens!.accessToken) - Date.now() + 100);
      sent.length = 0;

      const me = await client.GET('/api/v1/users/me');

      expect(me.response.status).toBe(200);
      expect(me.data?.email).toBe(email);
      expect(sent).toEqual(['GET /api/v1/users/me', 'POST /api/v1/auth/refresh', 'GET /api/v1/users/me']);
    });

    it('never refreshes on a 401 that is not about the access token', async () => {
      const { client, refreshes } = recordedClient();
      const { email } = await signUpWith(client);

      const wrong = await client.POST('/api/v1/auth/login', {
        body: { email, password: 'not the password at all' },
      });

      expect(wrong.response.status).toBe(401);
      expect(refreshes()).toBe(0);
      expect(client.tokens).toBeNull();
    });

    it('handles the mfaRequired branch: signIn asks for the second factor only when login wants one', async () => {
      let now = Math.floor(Date.now() / 30_000) * 30_000 + 1000;
      const clock = jest.spyOn(t.app.get(Clock), 'now').mockImplementation(() => new Date(now));
      try {
        const { client } = recordedClient();
        const { email } = await signUpWith(client);
        const plain = await client.signIn({ email, password: PASSWORD }, () => {
          throw new Error('no second factor is asked of an account without TOTP');
        });
        expect(plain.data?.user.mfaEnabled).toBe(false);
        const setup = await client.POST('/api/v1/auth/mfa/totp/setup');
        const secret = setup.data!.secret;
        const confirmed = await client.POST('/api/v1/auth/mfa/totp/confirm', {
          body: { code: totpCode(secret, now) },
        });
        expect(confirmed.data?.recoveryCodes).toHaveLength(10);
        now += 30_000;

        const { client: fresh, seenTokens, sent } = recordedClient();
        const raw = await fresh.POST('/api/v1/auth/login', { body: { email, password: PASSWORD } });
        expect(isMfaChallenge(raw.data)).toBe(true);
        expect(fresh.tokens).toBeNull();
        const unanswered = await fresh.signIn({ email, password: PASSWORD });
        expect(unanswered.error?.code).toBe('MFA_REQUIRED');
        expect(seenTokens).toEqual([]);

        const challenges: unknown[] = [];
        const signedIn = await fresh.signIn({ email, password: PASSWORD }, (challenge) => {
          challenges.push(challenge);
          return { code: totpCode(secret, now) };
        });
        expect(challenges).toEqual([{ mfaRequired: true, mfaToken: expect.any(String), expiresIn: 300 }]);
        expect(signedIn.data?.user.mfaEnabled).toBe(true);
        expect(fresh.tokens).toEqual({
          accessToken: signedIn.data?.accessToken,
          refreshToken: signedIn.data?.refreshToken,
        });
        expect(sent.slice(-2)).toEqual(['POST /api/v1/auth/login', 'POST /api/v1/auth/login/mfa']);
        expect((await fresh.GET('/api/v1/users/me')).data?.mfaEnabled).toBe(true);

        // A wrong code: the problem+json of the second step, and the client stays signed out.
        const { client: third } = recordedClient();
        const refused = await third.signIn({ email, password: PASSWORD }, () => ({ code: '000000' }));
        expect([refused.response.status, refused.error?.code]).toEqual([401, 'MFA_INVALID']);
        expect(third.tokens).toBeNull();
      } finally {
        clock.mockRestore();
      }
    });
  });
});
