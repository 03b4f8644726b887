import { IsNull } from 'typeorm';
import { PROBE_SECRET, ProbeModule } from './support/probe.module.js';
import { Session } from '../src/auth/session.entity.js';
import { newUser } from './support/factories.js';
import { TestApp } from './support/test-app.js';

describe('the request pipeline', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await TestApp.start({ BODY_LIMIT: '16kb' }, [ProbeModule]);
  });

  afterAll(async () => {
    await t.close();
  });

  const expectProblem = (
    res: { status: number; headers: Headers; body: any },
    status: number,
    code: string,
  ) => {
    expect(res.status).toBe(status);
    expect(res.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(res.body).toMatchObject({ status, code, type: expect.any(String), title: expect.any(String) });
    expect(typeof res.body.detail).toBe('string');
    expect(res.body.requestId).toBe(res.headers.get('x-request-id'));
  };

  it('runs no global interceptor and one global guard, the authentication guard', () => {
    // nestjs-cls adds a no-op global guard and interceptor of its own; the interceptor alone put every
    // request through Nest's rxjs chain. createApp takes both out (dropUnmountedClsEnhancers).
    const config = (
      t.app as unknown as { config: { getGlobalInterceptors(): unknown[]; getGlobalGuards(): unknown[] } }
    ).config;
    expect(config.getGlobalInterceptors()).toEqual([]);
    expect(config.getGlobalGuards().map((guard) => (guard as object).constructor.name)).toEqual([
      'JwtAuthGuard',
    ]);
  });

  it('boots on an empty database with every migration applied', async () => {
    const applied = await t.dataSource.query('SELECT name FROM migrations');
    expect(applied.map((row: { name: string }) => row.name)).toEqual([
      'InitialSchema1795392000000',
      'RefreshTokenHistory1795400000000',
      'MailBudget1795410000000',
      'LoginFailures1795420000000',
      'TotpSecondFactor1795430000000',
      'LoginChecksInFlight1795440000000',
    ]);
    const pending = await t.dataSource.driver.createSchemaBuilder().log();
    expect(pending.upQueries).toEqual([]);
  });

  it('accepts a valid body', async () => {
    const res = await t.request('/api/v1/probe/echo', { method: 'POST', body: { name: 'ok', count: 3 } });
    expect(res.status).toBe(201);
    expect(res.body).toEqual({ name: 'ok', count: 3 });
  });

  it('answers a validation error with every bad field', async () => {
    const res = await t.request('/api/v1/probe/echo', {
      method: 'POST',
      body: { name: 'x'.repeat(21), count: 'many' },
    });
    expectProblem(res, 400, 'VALIDATION_FAILED');
    const fields = res.body.errors.map((e: { field: string }) => e.field);
    expect(fields).toEqual(expect.arrayContaining(['name', 'count']));
  });

  it('lists at most 100 errors, each within the document’s lengths, however many fields a client invents', async () => {
    const user = await newUser(t);
    const invented = Object.fromEntries(Array.from({ length: 150 }, (_, i) => [`extra${i}`, 1]));
    const longName = 'n'.repeat(5000);
    // Each answer is checked against the document by t.request: 150 errors, or a 5,000-character field,
    // broke its ProblemDetails schema.
    const body = await t.request('/api/v1/todos', {
      method: 'POST',
      token: user.accessToken,
      body: { title: 'ok', [longName]: 1, ...invented },
    });
    expectProblem(body, 400, 'VALIDATION_FAILED');
    expect(body.body.errors).toHaveLength(100);
    expect(body.body.errors[0]).toEqual({ field: `${'n'.repeat(255)}…`, message: expect.any(String) });
    expect(body.body.errors[0].message).toHaveLength(1024);
    const query = await t.request(
      `/api/v1/todos?${Array.from({ length: 150 }, (_, i) => `q${i}=1`).join('&')}`,
      { token: user.accessToken },
    );
    // A query string does not get that far: past 32 parameters it is refused whole.
    expectProblem(query, 400, 'QUERY_TOO_WIDE');
    expect(query.body.errors).toBeUndefined();
    expect(query.body.detail).toBe('The query string has more than 32 parameters.');
  });

  it('rejects unknown fields', async () => {
    const res = await t.request('/api/v1/probe/echo', {
      method: 'POST',
      body: { name: 'ok', isAdmin: true },
    });
    expectProblem(res, 400, 'VALIDATION_FAILED');
    expect(res.body.errors).toEqual([expect.objectContaining({ field: 'isAdmin' })]);
  });

  it('rejects unknown fields named like a member every object inherits, in a body and in a query', async () => {
    // class-transformer does not copy these onto the DTO, so the whitelist never saw them: 201 and 200.
    for (const rawBody of ['{"name":"ok","constructor":{"a":1}}', '{"name":"ok","toString":1}']) {
      const res = await t.request('/api/v1/probe/echo', {
        method: 'POST',
        rawBody,
        headers: { 'content-type': 'application/json' },
      });
      expectProblem(res, 400, 'VALIDATION_FAILED');
      expect(res.body.errors).toEqual([
        {
          field: expect.stringMatching(/^(constructor|toString)$/),
          message: expect.stringMatching(/should not exist$/),
        },
      ]);
    }
    const user = await newUser(t);
    for (const query of ['constructor=1', 'toString=1', 'hasOwnProperty=1', '__proto__=1']) {
      const res = await t.request(`/api/v1/todos?${query}`, { token: user.accessToken });
      expectProblem(res, 400, 'VALIDATION_FAILED');
      expect(res.body.errors).toEqual([{ field: query.split('=')[0], message: expect.any(String) }]);
    }
    // Listed with the other unknown fields, in one answer.
    const both = await t.request('/api/v1/todos?foo=1&constructor=1', { token: user.accessToken });
    expectProblem(both, 400, 'VALIDATION_FAILED');
    expect(both.body.errors.map((e: { field: string }) => e.field).sort()).toEqual(['constructor', 'foo']);
    expect((await t.request('/api/v1/todos', { token: user.accessToken })).status).toBe(200);
  });

  it.each([
    ['an array', '[1,2]'],
    ['a string', '"name"'],
    ['null', 'null'],
    ['a number', '42'],
  ])('refuses %s as a body', async (_label, rawBody) => {
    const res = await t.request('/api/v1/probe/echo', {
      method: 'POST',
      rawBody,
      headers: { 'content-type': 'application/json' },
    });
    expectProblem(res, 400, 'BODY_NOT_OBJECT');
  });

  it('answers malformed JSON with 400', async () => {
    const res = await t.request('/api/v1/probe/echo', {
      method: 'POST',
      rawBody: '{"name": ',
      headers: { 'content-type': 'application/json' },
    });
    expectProblem(res, 400, 'MALFORMED_JSON');
  });

  it('reads a body sent to an operation that takes none as the document says, and takes an empty JSON body as none', async () => {
    // Clients that set Content-Type: application/json on every request call logout with no body.
    const user = await newUser(t);
    const logout = (rawBody: string, contentType = 'application/json') =>
      t.request('/api/v1/auth/logout', {
        method: 'POST',
        rawBody,
        token: user.accessToken,
        headers: { 'content-type': contentType },
      });
    // Each answer is checked against the document by t.request: these used to be missing from it.
    expectProblem(await logout('{"all": '), 400, 'MALFORMED_JSON');
    expectProblem(await logout(`${'['.repeat(20)}${']'.repeat(20)}`), 400, 'BODY_TOO_DEEP');
    expectProblem(await logout('all'), 400, 'MALFORMED_JSON');
    expectProblem(await logout('all', 'text/plain'), 415, 'UNSUPPORTED_MEDIA_TYPE');
    expectProblem(await logout('x'.repeat(17_000)), 413, 'PAYLOAD_TOO_LARGE');
    expect(
      await t.dataSource.getRepository(Session).countBy({ id: user.sessionId, revokedAt: IsNull() }),
    ).toBe(1);
    expect((await logout('')).status).toBe(204);
    expect(
      await t.dataSource.getRepository(Session).countBy({ id: user.sessionId, revokedAt: IsNull() }),
    ).toBe(0);

    // An operation that takes a body, sent an empty one, lists what the body lacks.
    const empty = await t.request('/api/v1/auth/login', {
      method: 'POST',
      rawBody: '',
      headers: { 'content-type': 'application/json' },
    });
    expectProblem(empty, 400, 'VALIDATION_FAILED');
    expect(new Set(empty.body.errors.map((error: { field: string }) => error.field))).toEqual(
      new Set(['email', 'password']),
    );
  });

  it('refuses __proto__ and constructor.prototype keys', async () => {
    for (const rawBody of [
      '{"name":"a","__proto__":{"isAdmin":true}}',
      '{"name":"a","constructor":{"prototype":{"x":1}}}',
    ]) {
      const res = await t.request('/api/v1/probe/echo', {
        method: 'POST',
        rawBody,
        headers: { 'content-type': 'application/json' },
      });
      expectProblem(res, 400, 'MALFORMED_JSON');
    }
    expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
  });

  it('refuses a body nested deeper than the limit with 400 BODY_TOO_DEEP, before parsing or validating it', async () => {
    const hostile = [
      // 45,000 nested arrays fit under the default BODY_LIMIT and used to overflow the stack in
      // validation (a 500); this app's limit is smaller, the answer the same.
      `{"name":${'['.repeat(400)}${']'.repeat(400)}}`,
      `{"name":"a","extra":${'{"a":'.repeat(9)}1${'}'.repeat(9)}}`,
    ];
    for (const rawBody of hostile) {
      const res = await t.request('/api/v1/probe/echo', {
        method: 'POST',
        rawBody,
        headers: { 'content-type': 'application/json' },
      });
      expectProblem(res, 400, 'BODY_TOO_DEEP');
    }
    // A bracket inside a string is text, not nesting.
    const fine = await t.request('/api/v1/probe/echo', { method: 'POST', body: { name: '[[[[[[[[[[[[' } });
    expect(fine.status).toBe(201);
    expect(t.logs.join('')).not.toMatch(/RangeError|Maximum call stack/);
  });

  it('answers an oversized body with 413', async () => {
    const res = await t.request('/api/v1/probe/echo', { method: 'POST', body: { name: 'x'.repeat(20_000) } });
    expectProblem(res, 413, 'PAYLOAD_TOO_LARGE');
  });

  it('answers a 10 MB body with 413 and keeps serving', async () => {
    const res = await t.request('/api/v1/probe/echo', {
      method: 'POST',
      rawBody: Buffer.alloc(10 * 1024 * 1024, 'a'),
      headers: { 'content-type': 'application/json' },
    });
    expectProblem(res, 413, 'PAYLOAD_TOO_LARGE');
    expect((await t.request('/health/live')).status).toBe(200);
  });

  it.each(['text/plain', 'application/x-www-form-urlencoded', 'application/xml'])(
    'answers a %s body with 415',
    async (contentType) => {
      const res = await t.request('/api/v1/probe/echo', {
        method: 'POST',
        rawBody: 'name=ok',
        headers: { 'content-type': contentType },
      });
      expectProblem(res, 415, 'UNSUPPORTED_MEDIA_TYPE');
    },
  );

  it('answers an unknown route with a 404 problem', async () => {
    expectProblem(await t.request('/api/v1/no-such-route'), 404, 'NOT_FOUND');
    expectProblem(await t.request('/nowhere'), 404, 'NOT_FOUND');
    // Methods no route takes: 404 too, and a QUERY without the Content-Type RFC 10008 requires is a
    // 400 that says so, not "not valid JSON" for a request that sent no body.
    expectProblem(await t.request('/api/v1/todos', { method: 'PROPFIND' }), 404, 'NOT_FOUND');
    const query = await t.request('/api/v1/todos', { method: 'QUERY' });
    expectProblem(query, 400, 'BAD_REQUEST');
    expect(query.body.detail).toBe('The request has no Content-Type.');
    expectProblem(
      await t.request('/api/v1/todos', { method: 'QUERY', body: { title: 'x' } }),
      404,
      'NOT_FOUND',
    );
  });

  it('turns a thrown Error into a 500 that leaks nothing', async () => {
    const res = await t.request('/api/v1/probe/crash');
    expectProblem(res, 500, 'INTERNAL_ERROR');
    expect(res.text).not.toMatch(/secret internal detail|crash\.ts|\/srv\/|at \w+ \(/);
    // The operator still gets the details, tied to the request id.
    expect(t.logs.join('')).toContain(res.body.requestId);
  });

  it('turns a database error into a 500 without SQL, driver codes or paths', async () => {
    const res = await t.request('/api/v1/probe/sql-crash');
    expectProblem(res, 500, 'INTERNAL_ERROR');
    expect(res.text).not.toMatch(/no_such_table|SELECT|ER_|SQLITE|QueryFailed|node_modules/i);
    // Logged once, with the cause, but never with a bound value (MySQL inlines them into err.sql).
    const logged = t.logs.join('');
    expect(logged).toContain('no_such_table_for_probe');
    expect(logged).not.toContain(PROBE_SECRET);
  });

  it('protects every route without @Public()', async () => {
    const anonymous = await t.request('/api/v1/probe/protected');
    expectProblem(anonymous, 401, 'UNAUTHENTICATED');
    // RFC 6750 §3: the bare challenge without a token, invalid_token when one was presented.
    expect(anonymous.headers.get('www-authenticate')).toBe('Bearer realm="gatehouse"');
    const forged = await t.request('/api/v1/probe/protected', { token: 'not-a-jwt' });
    expectProblem(forged, 401, 'UNAUTHENTICATED');
    expect(forged.headers.get('www-authenticate')).toMatch(
      /^Bearer realm="gatehouse", error="invalid_token"/,
    );
  });

  it('echoes a valid X-Request-Id and generates one otherwise', async () => {
    const given = await t.request('/api/v1/no-such-route', { headers: { 'x-request-id': 'trace-123.abc' } });
    expect(given.headers.get('x-request-id')).toBe('trace-123.abc');
    const generated = await t.request('/health/live');
    expect(generated.headers.get('x-request-id')).toMatch(/^[0-9a-f-]{36}$/);
    expect(t.logs.join('')).toContain('trace-123.abc');
  });

  it('refuses an invalid X-Request-Id', async () => {
    for (const bad of ['has space', 'x'.repeat(129), 'semi;colon', '{"json":1}']) {
      const res = await t.request('/health/live', { headers: { 'x-request-id': bad } });
      expectProblem(res, 400, 'INVALID_REQUEST_ID');
      expect(res.headers.get('x-request-id')).not.toBe(bad);
    }
  });

  it("logs one completion line per request with the caller's id and never the token", async () => {
    const user = await newUser(t);
    const requestId = `log-line-${user.id}`;
    const res = await t.request('/api/v1/probe/protected', {
      token: user.accessToken,
      headers: { 'x-request-id': requestId },
    });
    expect(res.status).toBe(200);
    // The line is written when the response finishes, just after the client has it.
    await new Promise((resolve) => setTimeout(resolve, 50));
    const lines = t.logs
      .join('')
      .split('\n')
      .filter((line) => line.includes(`"id":"${requestId}"`) && line.includes('request completed'));
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0])).toMatchObject({ userId: user.id, res: { statusCode: 200 } });
    expect(t.logs.join('')).not.toContain(user.accessToken);
  });

  it('logs a 5xx as "request errored", and no line for a probe', async () => {
    const crash = await t.request('/api/v1/probe/crash', { headers: { 'x-request-id': 'log-crash' } });
    expect(crash.status).toBe(500);
    const live = await t.request('/health/live', { headers: { 'x-request-id': 'log-live' } });
    expect(live.status).toBe(200);
    await new Promise((resolve) => setTimeout(resolve, 50));
    const lines = t.logs.join('').split('\n');
    const completion = lines
      .filter((line) => line.includes('"id":"log-crash"'))
      .map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(completion).toHaveLength(1);
    expect(completion[0]).toMatchObject({ msg: 'request errored', res: { statusCode: 500 } });
    expect(lines.filter((line) => line.includes('log-live'))).toEqual([]);
  });

  it('puts the request id and the caller on every line a request logs, concurrent requests apart', async () => {
    const [alice, bob] = [await newUser(t), await newUser(t)];
    const note = (user: typeof alice, name: string) =>
      t.request('/api/v1/probe/noted', {
        method: 'POST',
        body: { name },
        token: user.accessToken,
        headers: { 'x-request-id': `noted-${name}` },
      });
    const answers = await Promise.all([note(alice, `a${alice.id}`), note(bob, `b${bob.id}`)]);
    expect(answers.map((res) => res.status)).toEqual([201, 201]);
    const lineOf = (name: string) =>
      JSON.parse(
        t.logs
          .join('')
          .split('\n')
          .find((line) => line.includes(`"noted ${name}"`)) ?? '{}',
      ) as Record<string, unknown>;
    expect(lineOf(`a${alice.id}`)).toMatchObject({ requestId: `noted-a${alice.id}`, userId: alice.id });
    expect(lineOf(`b${bob.id}`)).toMatchObject({ requestId: `noted-b${bob.id}`, userId: bob.id });
  });

  it('sends the same security headers on an authenticated answer and on a refusal before routing', async () => {
    const user = await newUser(t);
    const ok = await t.request('/api/v1/probe/protected', { token: user.accessToken });
    const refused = await t.request('/health/live', { headers: { 'x-request-id': 'has space' } });
    for (const res of [ok, refused]) {
      expect(res.headers.get('content-security-policy')).toContain("default-src 'self'");
      expect(res.headers.get('strict-transport-security')).toBe('max-age=31536000; includeSubDomains');
      expect(res.headers.get('x-frame-options')).toBe('SAMEORIGIN');
    }
    expect(refused.status).toBe(400);
  });

  it('sends the security headers', async () => {
    const res = await t.request('/api/v1/no-such-route');
    expect(res.headers.get('strict-transport-security')).toMatch(/max-age=\d+/);
    expect(res.headers.get('x-content-type-options')).toBe('nosniff');
    expect(res.headers.get('content-security-policy')).toContain("frame-ancestors 'none'");
    expect(res.headers.get('referrer-policy')).toBe('no-referrer');
    expect(res.headers.get('x-powered-by')).toBeNull();
    expect(res.headers.get('cache-control')).toBe('no-store');
  });

  it('sends no CORS headers when no origin is configured', async () => {
    const res = await t.request('/health/live', { headers: { origin: 'https://evil.example' } });
    expect(res.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('writes nothing for rejected requests', async () => {
    const before = await t.dataSource.query('SELECT COUNT(*) AS n FROM audit_events');
    await t.request('/api/v1/probe/echo', {
      method: 'POST',
      rawBody: '{bad',
      headers: { 'content-type': 'application/json' },
    });
    const after = await t.dataSource.query('SELECT COUNT(*) AS n FROM audit_events');
    expect(Number(after[0].n)).toBe(Number(before[0].n));
  });
});

describe('CORS', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await TestApp.start({ CORS_ORIGINS: 'https://app.example' });
  });

  afterAll(async () => {
    await t.close();
  });

  it('allows only the configured origins', async () => {
    const allowed = await t.request('/health/live', { headers: { origin: 'https://app.example' } });
    expect(allowed.headers.get('access-control-allow-origin')).toBe('https://app.example');
    expect(allowed.headers.get('access-control-expose-headers')).toBe(
      'Retry-After, RateLimit, RateLimit-Policy, WWW-Authenticate, X-Request-Id',
    );
    const other = await t.request('/health/live', { headers: { origin: 'https://evil.example' } });
    expect(other.headers.get('access-control-allow-origin')).toBeNull();
  });

  it('answers a preflight with 204, and an OPTIONS that is not one with the same empty 204, never bare text', async () => {
    const preflight = await t.request('/api/v1/todos', {
      method: 'OPTIONS',
      headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('https://app.example');
    const partial: Array<Record<string, string>> = [
      {},
      { origin: 'https://app.example' },
      { 'access-control-request-method': 'POST' },
    ];
    for (const headers of partial) {
      const bare = await t.request('/api/v1/todos', { method: 'OPTIONS', headers });
      expect({ status: bare.status, text: bare.text }).toEqual({ status: 204, text: '' });
    }
    // A preflight goes through the same checks as every request, and carries the same headers.
    expect(preflight.headers.get('strict-transport-security')).toMatch(/max-age=/);
    const badId = await t.request('/api/v1/todos', {
      method: 'OPTIONS',
      headers: {
        origin: 'https://app.example',
        'access-control-request-method': 'POST',
        'x-request-id': 'a b',
      },
      unvalidated: true,
    });
    expect({ status: badId.status, code: badId.body.code }).toEqual({
      status: 400,
      code: 'INVALID_REQUEST_ID',
    });
  });
});

describe('the access-token guard', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await TestApp.start({}, [ProbeModule]);
  });

  afterAll(async () => {
    await t.close();
  });

  it('lets a live session through and stops it once the session is revoked', async () => {
    const user = await newUser(t);
    const ok = await t.request('/api/v1/probe/protected', { token: user.accessToken });
    expect(ok.status).toBe(200);
    expect(ok.body).toEqual({ id: user.id });

    await t.dataSource
      .getRepository(Session)
      .update({ id: user.sessionId }, { revokedAt: new Date(), revokedReason: 'logout' });
    const revoked = await t.request('/api/v1/probe/protected', { token: user.accessToken });
    expect(revoked.status).toBe(401);
    expect(revoked.body.code).toBe('UNAUTHENTICATED');
    // A well-formed token of a dead session is an invalid token too: refresh or sign in again.
    expect(revoked.headers.get('www-authenticate')).toContain('error="invalid_token"');
  });

  it('stops a token whose session has passed its absolute expiry', async () => {
    const user = await newUser(t);
    expect((await t.request('/api/v1/probe/protected', { token: user.accessToken })).status).toBe(200);
    await t.dataSource
      .getRepository(Session)
      .update({ id: user.sessionId }, { expiresAt: new Date(Date.now() - 1000) });
    expect((await t.request('/api/v1/probe/protected', { token: user.accessToken })).status).toBe(401);
  });
});
