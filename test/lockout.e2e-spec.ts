import { PasswordHasher } from '../src/auth/password-hasher.service.js';
import { Clock } from '../src/common/clock.js';
import { LoginFailure } from '../src/users/login-failure.entity.js';
import { loginKeyOf } from '../src/users/login-failures.repository.js';
import {
  type Account,
  auditEvents,
  comparable,
  logIn,
  mailTo,
  PASSWORD,
  signUp,
  SUBJECTS,
} from './support/accounts.js';
import { createThrowawayDatabase, type ThrowawayDatabase } from './support/database.js';
import { uniqueEmail } from './support/factories.js';
import { SmtpCapture, tokenFrom } from './support/smtp-capture.js';
import { Gate, tally, within } from './support/race.js';
import { type ApiResponse, TestApp } from './support/test-app.js';

/** Issue 12, items 3 and 4: lockout is not a weapon, and tells nobody which addresses exist. */

const WRONG = 'not the right password';
let nextClient = 1;
/** A client address of its own for each use (TRUST_PROXY is on, so X-Forwarded-For names the client). */
const freshClient = () => `198.51.100.${nextClient++}`;

function login(app: TestApp, email: string, password: string, client: string): Promise<ApiResponse> {
  return app.request('/api/v1/auth/login', {
    method: 'POST',
    body: { email, password },
    headers: { 'X-Forwarded-For': client },
  });
}

/** Everything a client can see of an answer but the per-request id and the clock. */
function seen(res: ApiResponse): Record<string, unknown> {
  const headers: Record<string, string> = {};
  res.headers.forEach((value, name) => {
    if (!['date', 'x-request-id', 'content-length', 'connection', 'keep-alive'].includes(name)) {
      // The throttle window's seconds-to-reset ticks with the wall clock, not with the address.
      headers[name] = name === 'ratelimit' ? value.replace(/t=\d+/g, 't=…') : value;
    }
  });
  return { status: res.status, headers, body: comparable(res.body as Record<string, unknown>) };
}

/**
 * N failures for a known and an unknown address, interleaved so both see the same clock, each from
 * its own client so the per-IP limit counts the same for both; instance i % apps.length answers.
 */
async function failBoth(apps: TestApp[], known: string, unknown: string, n: number) {
  const [knownClient, unknownClient] = [freshClient(), freshClient()];
  const answers = { known: [] as Record<string, unknown>[], unknown: [] as Record<string, unknown>[] };
  for (let i = 0; i < n; i += 1) {
    const app = apps[i % apps.length];
    answers.known.push(seen(await login(app, known, WRONG, knownClient)));
    answers.unknown.push(seen(await login(app, unknown, WRONG, unknownClient)));
  }
  return answers;
}

const statusAndRetry = (answer: Record<string, unknown>) =>
  `${String(answer.status)} ${String((answer.headers as Record<string, string>)['retry-after'] ?? '-')}`;

describe('lockout (one instance)', () => {
  let t: TestApp;
  let capture: SmtpCapture;
  const env = {
    TRUST_PROXY: 'true',
    AUTH_LOCKOUT_THRESHOLD: '3',
    AUTH_LOCKOUT_ACCOUNT_THRESHOLD: '5',
    AUTH_LOCKOUT_DURATION: '15m',
  };

  beforeAll(async () => {
    capture = await SmtpCapture.start();
    t = await TestApp.start({ ...env, MAIL_URL: capture.url, MAIL_POLL_INTERVAL: '50ms' });
  });

  afterAll(async () => {
    await t.close();
    await capture.stop();
  });

  afterEach(() => {
    jest.restoreAllMocks();
  });

  it('gives a known and an unknown address the same statuses, headers and Retry-After', async () => {
    const known = await signUp(t, capture);
    const answers = await failBoth([t], known.email, uniqueEmail('nobody'), 6);
    expect(answers.known.map(statusAndRetry)).toEqual([
      '401 -',
      '401 -',
      '401 -',
      '429 900',
      '429 900',
      '429 900',
    ]);
    expect(answers.unknown).toEqual(answers.known);
    // The lock is audited for both, once each; the known one names its account.
    const locks = await auditEvents(t, { event: 'auth.locked' });
    expect(locks.filter((e) => e.userId === known.id)).toHaveLength(1);
    expect(locks.find((e) => e.userId === known.id)?.metadata).toMatchObject({
      scope: 'client',
      failures: 3,
    });
  });

  it('does not lock the owner out on another client: 20 failures on client A, the owner signs in on B', async () => {
    const owner = await signUp(t, capture);
    const [attacker, home] = [freshClient(), freshClient()];
    const statuses = [];
    for (let i = 0; i < 20; i += 1) {
      statuses.push((await login(t, owner.email, WRONG, attacker)).status);
    }
    expect(statuses.slice(0, 3)).toEqual([401, 401, 401]);
    expect(new Set(statuses.slice(3))).toEqual(new Set([429]));
    // Client A is refused even with the right password; the owner on client B is not.
    expect((await login(t, owner.email, owner.password, attacker)).status).toBe(429);
    expect((await login(t, owner.email, owner.password, home)).status).toBe(200);

    const failed = await auditEvents(t, { event: 'auth.login_failed', userId: owner.id });
    expect(failed).toHaveLength(21);
    expect(failed.filter((e) => e.metadata?.reason === 'wrong_password')).toHaveLength(3);
    expect(failed.filter((e) => e.metadata?.reason === 'locked')).toHaveLength(18);
    expect(failed.every((e) => e.ip === attacker)).toBe(true);
    const [lock] = await auditEvents(t, { event: 'auth.locked', userId: owner.id });
    expect(lock).toMatchObject({ ip: attacker, metadata: { scope: 'client' } });
    expect(await auditEvents(t, { event: 'auth.login_succeeded', userId: owner.id })).toHaveLength(1);
  });

  it('locks an address everywhere after the account-wide threshold, across clients', async () => {
    const owner = await signUp(t, capture);
    // Five clients, one failure each: no client reaches its own threshold of 3.
    for (let i = 0; i < 5; i += 1) {
      expect((await login(t, owner.email, WRONG, freshClient())).status).toBe(401);
    }
    const elsewhere = await login(t, owner.email, owner.password, freshClient());
    expect(elsewhere.status).toBe(429);
    expect(elsewhere.headers.get('retry-after')).toBe('900');
    const [lock] = await auditEvents(t, { event: 'auth.locked', userId: owner.id });
    expect(lock.metadata).toMatchObject({ scope: 'account', failures: 1 });
  });

  it('locks for one fixed period: no doubling, a failure after it locks for the same period again', async () => {
    const owner = await signUp(t, capture);
    const client = freshClient();
    const clock = t.app.get(Clock);
    let now = Date.now();
    jest.spyOn(clock, 'now').mockImplementation(() => new Date(now));
    const retryAfters = [];
    for (let round = 0; round < 3; round += 1) {
      for (let i = 0; i < (round === 0 ? 3 : 1); i += 1) {
        expect((await login(t, owner.email, WRONG, client)).status).toBe(401);
      }
      const refused = await login(t, owner.email, WRONG, client);
      expect(refused.status).toBe(429);
      retryAfters.push(refused.headers.get('retry-after'));
      now += 15 * 60 * 1000 + 1000;
    }
    expect(retryAfters).toEqual(['900', '900', '900']);
    // A correct password after the period signs in and starts the count over.
    await logIn(t, owner, { 'X-Forwarded-For': client });
    expect(
      await t.dataSource.getRepository(LoginFailure).countBy({ emailHash: loginKeyOf(owner.email) }),
    ).toBe(0);
    const locks = await auditEvents(t, { event: 'auth.locked', userId: owner.id });
    // Three client locks, one per period; the fifth failure also reached the account-wide threshold (5).
    expect(locks.filter((e) => e.metadata?.scope === 'client')).toHaveLength(3);
    expect(locks.map((e) => new Date(String(e.metadata?.until)).getTime() - e.occurredAt.getTime())).toEqual(
      locks.map(() => 15 * 60 * 1000),
    );
  });

  it('never counts correct passwords, not even 8 in parallel', async () => {
    const owner = await signUp(t, capture);
    const client = freshClient();
    const results = await Promise.all(
      Array.from({ length: 8 }, () => login(t, owner.email, owner.password, client)),
    );
    expect(results.map((r) => r.status)).toEqual(Array.from({ length: 8 }, () => 200));
    expect(await auditEvents(t, { event: 'auth.login_failed', userId: owner.id })).toHaveLength(0);
  });

  it('checks at most AUTH_LOCKOUT_THRESHOLD of 20 concurrent wrong passwords, for a known and an unknown address alike', async () => {
    const known = await signUp(t, capture);
    const unknown = uniqueEmail('nobody-racing');
    const [knownClient, unknownClient] = [freshClient(), freshClient()];
    const race = (email: string, client: string) =>
      Promise.all(Array.from({ length: 20 }, () => login(t, email, WRONG, client)));
    const [knownAnswers, unknownAnswers] = await Promise.all([
      race(known.email, knownClient),
      race(unknown, unknownClient),
    ]);
    for (const answers of [knownAnswers, unknownAnswers]) {
      // A guess was either checked (401) or refused unchecked (429): never a 5xx.
      expect(tally(answers.map((r) => `${r.status} ${String(r.body.code)}`))).toEqual({
        '401 INVALID_CREDENTIALS': 3,
        '429 ACCOUNT_LOCKED': 17,
      });
    }
    const failed = await auditEvents(t, { event: 'auth.login_failed' });
    expect(tally(failed.filter((e) => e.ip === knownClient).map((e) => String(e.metadata?.reason)))).toEqual({
      wrong_password: 3,
      locked: 17,
    });
    expect(
      tally(failed.filter((e) => e.ip === unknownClient).map((e) => String(e.metadata?.reason))),
    ).toEqual({
      unknown_email: 3,
      locked: 17,
    });
    // One lock each, audited by the request that set it.
    const locks = await auditEvents(t, { event: 'auth.locked' });
    expect(locks.filter((e) => e.ip === knownClient).map((e) => e.metadata)).toEqual([
      expect.objectContaining({ scope: 'client', failures: 3 }),
    ]);
    expect(locks.filter((e) => e.ip === unknownClient)).toHaveLength(1);
    expect(
      await t.dataSource.getRepository(LoginFailure).findBy({ emailHash: loginKeyOf(known.email) }),
    ).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ client: '*', failures: 3, inFlight: 0 }),
        expect.objectContaining({ client: knownClient, failures: 3, inFlight: 0 }),
      ]),
    );
    // The owner on another client is not locked out.
    expect((await login(t, known.email, known.password, freshClient())).status).toBe(200);
  });

  it('does not let the right password that races in once the threshold is in flight sign in', async () => {
    const owner = await signUp(t, capture);
    const client = freshClient();
    // The wrong guesses wait inside the real password check until the right one has raced in.
    const gate = new Gate();
    const hasher = t.app.get(PasswordHasher);
    const verify = hasher.verify.bind(hasher);
    jest.spyOn(hasher, 'verify').mockImplementation(async (password, hash) => {
      if (password === WRONG) {
        await gate.pass();
      }
      return verify(password, hash);
    });
    const wrong = Array.from({ length: 6 }, () => login(t, owner.email, WRONG, client));
    await gate.reached(3);
    const right = login(t, owner.email, owner.password, client);
    await within(right, 500);
    gate.open();
    const answers = await Promise.all(wrong);
    const answer = await right;

    expect(`${answer.status} ${String(answer.body.code)}`).toBe('429 ACCOUNT_LOCKED');
    expect(tally(answers.map((r) => r.status))).toEqual({ 401: 3, 429: 3 });
    expect(await auditEvents(t, { event: 'auth.login_succeeded', userId: owner.id })).toHaveLength(0);
    const failed = await auditEvents(t, { event: 'auth.login_failed', userId: owner.id });
    expect(tally(failed.map((e) => String(e.metadata?.reason)))).toEqual({ wrong_password: 3, locked: 4 });
    const rows = await t.dataSource
      .getRepository(LoginFailure)
      .findBy({ emailHash: loginKeyOf(owner.email) });
    expect(rows.map((r) => r.inFlight)).toEqual([0, 0]);
  });

  it('ignores the places of checks a dead process left in flight once their counter has been idle for a lock period', async () => {
    const owner = await signUp(t, capture);
    const client = freshClient();
    // As a process that died mid-check would leave them: every place taken, 16 minutes ago.
    const longAgo = new Date(Date.now() - 16 * 60 * 1000);
    await t.dataSource.getRepository(LoginFailure).insert(
      [client, '*'].map((c) => ({
        emailHash: loginKeyOf(owner.email),
        client: c,
        failures: 0,
        inFlight: 5,
        lockedUntil: null,
        updatedAt: longAgo,
      })),
    );
    const started = performance.now();
    expect((await login(t, owner.email, WRONG, client)).status).toBe(401);
    expect(performance.now() - started).toBeLessThan(2000);
    const rows = await t.dataSource
      .getRepository(LoginFailure)
      .findBy({ emailHash: loginKeyOf(owner.email) });
    expect(rows.map((r) => [r.client, r.failures, r.inFlight]).sort()).toEqual([
      ['*', 1, 0],
      [client, 1, 0],
    ]);
    expect((await login(t, owner.email, owner.password, client)).status).toBe(200);
  });

  it('lets a locked owner reset the password, which ends every lock on the address', async () => {
    const owner: Account = await signUp(t, capture);
    const client = freshClient();
    for (let i = 0; i < 3; i += 1) {
      await login(t, owner.email, WRONG, client);
    }
    expect((await login(t, owner.email, owner.password, client)).status).toBe(429);
    const forgot = await t.request('/api/v1/auth/forgot-password', {
      method: 'POST',
      body: { email: owner.email },
      headers: { 'X-Forwarded-For': client },
    });
    expect(forgot.status).toBe(202);
    const token = tokenFrom(await mailTo(capture, owner.email, SUBJECTS.reset));
    const reset = await t.request('/api/v1/auth/reset-password', {
      method: 'POST',
      body: { token, password: 'a fresh passphrase now' },
    });
    expect(reset.status).toBe(204);
    await logIn(t, { email: owner.email, password: 'a fresh passphrase now' }, { 'X-Forwarded-For': client });
  });
});

describe('lockout on two instances sharing one database, without Redis', () => {
  let database: ThrowawayDatabase;
  const apps: TestApp[] = [];
  let capture: SmtpCapture;

  beforeAll(async () => {
    capture = await SmtpCapture.start();
    database = await createThrowawayDatabase();
    for (let i = 0; i < 2; i += 1) {
      apps.push(
        await TestApp.start(
          {
            TRUST_PROXY: 'true',
            AUTH_LOCKOUT_THRESHOLD: '5',
            MAIL_URL: capture.url,
            MAIL_POLL_INTERVAL: '50ms',
          },
          [],
          { database },
        ),
      );
    }
  });

  afterAll(async () => {
    for (const app of apps) {
      await app.close();
    }
    await database.drop();
    await capture.stop();
  });

  it('gives a known and an unknown address identical answers, alternating instances', async () => {
    const known = await signUp(apps[0], capture);
    const answers = await failBoth(apps, known.email, uniqueEmail('nobody-two'), 9);
    expect(answers.known.map(statusAndRetry)).toEqual([
      ...Array.from({ length: 5 }, () => '401 -'),
      ...Array.from({ length: 4 }, () => '429 900'),
    ]);
    expect(answers.unknown).toEqual(answers.known);
    expect(await auditEvents(apps[1], { event: 'auth.locked', userId: known.id })).toHaveLength(1);
  });
});

describe('a refusal for load is not a failure', () => {
  it('counts only the guesses whose password was checked, and logs AUTH_BUSY without a stack', async () => {
    const t = await TestApp.start({
      TRUST_PROXY: 'true',
      BCRYPT_COST: '11',
      HASH_QUEUE_LIMIT: '2',
      AUTH_LOCKOUT_THRESHOLD: '100',
    });
    try {
      const email = uniqueEmail('busy');
      const client = freshClient();
      const results = await Promise.all(Array.from({ length: 12 }, () => login(t, email, PASSWORD, client)));
      const busy = results.filter((r) => r.status === 503);
      const checked = results.filter((r) => r.status === 401);
      expect(busy.length).toBeGreaterThan(0);
      expect(busy.length + checked.length).toBe(12);
      expect(busy[0].body.code).toBe('AUTH_BUSY');
      const [counter] = await t.dataSource
        .getRepository(LoginFailure)
        .findBy({ emailHash: loginKeyOf(email), client });
      expect(counter.failures).toBe(checked.length);
      const failed = (await auditEvents(t, { event: 'auth.login_failed' })).filter((e) => e.ip === client);
      expect(failed).toHaveLength(checked.length);

      // Item 8: the expected 503 is one warning line per request with its code, never "Unhandled error".
      const logs = t.logs.join('');
      expect(logs).not.toMatch(/Unhandled error/);
      expect(logs).not.toMatch(/"stack"|at [\w.]+ \(.*\.js:\d+/);
      const refusals = logs.split('\n').filter((line) => line.includes('"code":"AUTH_BUSY"'));
      expect(refusals).toHaveLength(busy.length);
      expect(refusals.every((line) => line.includes('"level":40'))).toBe(true);
    } finally {
      await t.close();
    }
  });
});
