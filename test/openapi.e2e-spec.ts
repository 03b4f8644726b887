import { readFileSync } from 'node:fs';
import { OpenApiResponseValidator } from './support/openapi-validator.js';
import { TestApp } from './support/test-app.js';

type Schema = {
  $ref?: string;
  type?: string;
  maxLength?: number;
  default?: unknown;
  allOf?: Schema[];
  properties?: Record<string, Schema>;
  required?: string[];
  items?: Schema;
  enum?: unknown[];
};

interface Parameter {
  name: string;
  in: string;
  required?: boolean;
  schema?: Schema;
}

interface Operation {
  operationId?: string;
  tags?: string[];
  parameters?: Parameter[];
  requestBody?: { content: Record<string, { schema: Schema }> };
  responses: Record<
    string,
    { headers?: Record<string, { required?: boolean }>; content?: Record<string, { schema: Schema }> }
  >;
}

interface Document {
  servers?: Array<{ url: string }>;
  tags?: Array<{ name: string; description?: string }>;
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, Schema>; securitySchemes: Record<string, { description?: string }> };
}

const committed = JSON.parse(readFileSync('openapi.json', 'utf8')) as Document;

function operations(doc: Document): Array<{ where: string; path: string; operation: Operation }> {
  return Object.entries(doc.paths).flatMap(([path, item]) =>
    Object.entries(item).map(([method, operation]) => ({
      where: `${method.toUpperCase()} ${path}`,
      path,
      operation,
    })),
  );
}

function resolve(schema: Schema): Schema {
  return schema.$ref ? resolve(committed.components.schemas[schema.$ref.split('/').pop()!]) : schema;
}

/** `path: type` of every string in a schema, through $ref, allOf, properties and items. */
function unboundedStrings(schema: Schema, path: string, seen = new Set<Schema>()): string[] {
  const resolved = resolve(schema);
  if (seen.has(resolved)) {
    return [];
  }
  seen.add(resolved);
  const own = resolved.type === 'string' && resolved.maxLength === undefined && !resolved.enum ? [path] : [];
  return [
    ...own,
    ...(resolved.allOf ?? []).flatMap((part) => unboundedStrings(part, path, seen)),
    ...Object.entries(resolved.properties ?? {}).flatMap(([name, property]) =>
      unboundedStrings(property, `${path}.${name}`, seen),
    ),
    ...(resolved.items ? unboundedStrings(resolved.items, `${path}[]`, seen) : []),
  ];
}

describe('the OpenAPI document', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await TestApp.start();
  });

  afterAll(async () => {
    await t.close();
  });

  it('is served at /docs/openapi.json with bearer auth declared', async () => {
    const res = await t.request('/docs/openapi.json');
    expect(res.status).toBe(200);
    expect(res.body.openapi).toMatch(/^3\./);
    expect(res.body.components.securitySchemes.bearer).toMatchObject({ type: 'http', scheme: 'bearer' });
    expect(Object.keys(res.body.paths)).toEqual(expect.arrayContaining(['/health/live', '/health/ready']));
  });

  it('serves the Swagger UI at /docs', async () => {
    const res = await t.request('/docs');
    expect(res.status).toBe(200);
    expect(res.text).toContain('swagger-ui');
  });

  it('serves the UI’s script, which embeds the document, as UTF-8 and the same each time', async () => {
    const [first, second] = [
      await t.request('/docs/swagger-ui-init.js'),
      await t.request('/docs/swagger-ui-init.js'),
    ];
    expect(first.status).toBe(200);
    expect(first.headers.get('content-type')).toBe('application/javascript; charset=utf-8');
    // Characters outside Latin-1 (the document's typographic apostrophes) arrive intact.
    expect(first.text).toContain('caller’s own todos');
    expect(second.text).toBe(first.text);
  });

  it('matches the committed openapi.json (run `npm run openapi` after changing the API)', async () => {
    const served = (await t.request('/docs/openapi.json')).body;
    expect(served).toEqual(committed);
  });

  it('gives every operation a unique, readable operationId (`login`, `listTodos`)', () => {
    const ids = operations(committed).map(
      ({ where, operation }) => `${operation.operationId ?? ''} ${where}`,
    );
    const bad = ids.filter((id) => !/^[a-z][a-zA-Z0-9]* /.test(id) || /Controller|_/.test(id.split(' ')[0]));
    expect(bad).toEqual([]);
    const names = ids.map((id) => id.split(' ')[0]);
    expect(new Set(names).size).toBe(names.length);
  });

  it('declares every path parameter of every operation, as a required bounded integer for ids', () => {
    const missing = operations(committed).flatMap(({ where, path, operation }) =>
      [...path.matchAll(/\{([^}]+)\}/g)]
        .map((match) => match[1])
        .filter((name) => {
          const declared = operation.parameters?.find((p) => p.in === 'path' && p.name === name);
          return !declared?.required || declared.schema?.type !== 'integer';
        })
        .map((name) => `${where} {${name}}`),
    );
    expect(missing).toEqual([]);
  });

  it('gives every error response the one ProblemDetails schema, narrowed to the codes it can carry', () => {
    const bad = operations(committed).flatMap(({ where, operation }) =>
      Object.entries(operation.responses)
        .filter(([status]) => Number(status) >= 400)
        .filter(([, response]) => {
          const schema = response.content?.['application/problem+json']?.schema;
          const codes = schema?.allOf?.[1]?.properties?.code?.enum ?? [];
          return schema?.allOf?.[0]?.$ref !== '#/components/schemas/ProblemDetails' || codes.length === 0;
        })
        .map(([status]) => `${where} ${status}`),
    );
    expect(bad).toEqual([]);
    expect(committed.components.schemas.ProblemDetails.required).toEqual(
      expect.arrayContaining(['type', 'title', 'status', 'detail', 'code', 'requestId']),
    );
    expect(resolve(committed.components.schemas.ProblemDetails.properties!.errors.items!).required).toEqual([
      'field',
      'message',
    ]);
  });

  it('bounds every string of every request body and query, and makes no defaulted field required', () => {
    const unbounded = operations(committed).flatMap(({ where, operation }) => [
      ...Object.values(operation.requestBody?.content ?? {}).flatMap(({ schema }) =>
        unboundedStrings(schema, `${where} body`),
      ),
      ...(operation.parameters ?? [])
        .filter((p) => p.in === 'query')
        .flatMap((p) => unboundedStrings(p.schema!, `${where} ?${p.name}`)),
    ]);
    expect(unbounded).toEqual([]);
    const defaulted = operations(committed).flatMap(({ where, operation }) =>
      Object.values(operation.requestBody?.content ?? {}).flatMap(({ schema }) => {
        const body = resolve(schema);
        return Object.entries(body.properties ?? {})
          .filter(([name, property]) => property.default !== undefined && body.required?.includes(name))
          .map(([name]) => `${where} ${name}`);
      }),
    );
    expect(defaulted).toEqual([]);
  });

  it('documents Retry-After on every 429 and the RateLimit fields on the answers of limited routes', () => {
    // A 429 is also the body budget's (TOO_MANY_BODIES, on every operation that reads a body); a route is
    // rate limited when its 429 can be RATE_LIMITED.
    const codes429 = (operation: Operation): unknown[] =>
      operation.responses['429']?.content?.['application/problem+json']?.schema?.allOf?.[1]?.properties?.code
        ?.enum ?? [];
    const bad = operations(committed)
      .filter(({ operation }) => operation.responses['429'])
      .flatMap(({ where, operation }) => [
        ...(operation.responses['429'].headers?.['Retry-After']?.required
          ? []
          : [`${where} 429 Retry-After`]),
        ...(codes429(operation).includes('RATE_LIMITED')
          ? Object.entries(operation.responses)
              .filter(([status]) => /^[24]/.test(status))
              .filter(([, response]) => !response.headers?.RateLimit || !response.headers['RateLimit-Policy'])
              .map(([status]) => `${where} ${status} RateLimit`)
          : []),
      ]);
    expect(bad).toEqual([]);
    expect(codes429(committed.paths['/api/v1/auth/login'].post)).toEqual(
      expect.arrayContaining(['RATE_LIMITED', 'TOO_MANY_BODIES']),
    );
    // Logout takes no body but reads one sent to it, so the budget's 429 is its only one; a GET reads none.
    expect(codes429(committed.paths['/api/v1/auth/logout'].post)).toEqual(['TOO_MANY_BODIES']);
    expect(committed.paths['/api/v1/auth/logout'].post.responses['204'].headers?.RateLimit).toBeUndefined();
    expect(committed.paths['/api/v1/users/me'].get.responses['429']).toBeUndefined();
    const createTodo = committed.paths['/api/v1/todos'].post;
    expect(codes429(createTodo)).toEqual(['TOO_MANY_BODIES']);
    expect(createTodo.responses['201'].headers?.RateLimit).toBeUndefined();
  });

  it('lists 503 AUTH_BUSY on every operation that takes a password, whose check can be refused for load', () => {
    const takingPasswords = operations(committed).filter(({ operation }) => {
      const body = operation.requestBody?.content['application/json']?.schema;
      return Object.keys((body && resolve(body).properties) ?? {}).some((name) => /password/i.test(name));
    });
    expect(takingPasswords.length).toBeGreaterThanOrEqual(6);
    const codes503 = (operation: Operation): unknown[] =>
      operation.responses['503']?.content?.['application/problem+json']?.schema?.allOf?.[1]?.properties?.code
        ?.enum ?? [];
    expect(takingPasswords.filter(({ operation }) => !codes503(operation).includes('AUTH_BUSY'))).toEqual([]);
  });

  it('has servers, described tags and a bearer scheme that states its JWT rules (RFC 8725)', () => {
    expect(committed.servers?.length).toBeGreaterThan(0);
    const described = new Set(committed.tags?.filter((tag) => tag.description).map((tag) => tag.name));
    const used = new Set(operations(committed).flatMap(({ operation }) => operation.tags ?? []));
    expect([...used].filter((tag) => !described.has(tag))).toEqual([]);
    expect(committed.components.securitySchemes.bearer.description).toMatch(/RFC8725[\s\S]*HS256/);
  });

  describe('the response validation every e2e request goes through', () => {
    const validator = new OpenApiResponseValidator(committed);
    const problem = (code: string, status: number) =>
      JSON.stringify({
        type: `urn:gatehouse:problem:${code.toLowerCase().replace(/_/g, '-')}`,
        title: 'x',
        status,
        detail: 'x',
        code,
        requestId: 'r1',
      });
    const response = (status: number, text: string, headers: Record<string, string> = {}) => ({
      method: 'GET',
      url: '/api/v1/todos/7?x=1',
      status,
      headers: new Headers({ 'content-type': 'application/problem+json', 'x-request-id': 'r1', ...headers }),
      text,
      body: JSON.parse(text) as unknown,
    });

    it('passes a documented answer', () => {
      expect(() => validator.check(response(404, problem('TODO_NOT_FOUND', 404)))).not.toThrow();
    });

    it('fails an undocumented status', () => {
      expect(() => validator.check(response(409, problem('CONFLICT', 409)))).toThrow(/409 is not documented/);
    });

    it('fails a code the operation does not list', () => {
      expect(() => validator.check(response(404, problem('USER_NOT_FOUND', 404)))).toThrow(/does not match/);
    });

    it('fails a 401 without its WWW-Authenticate challenge', () => {
      expect(() => validator.check(response(401, problem('UNAUTHENTICATED', 401)))).toThrow(
        /WWW-Authenticate/,
      );
    });

    it('fails a body that breaks its schema', () => {
      const todo = { id: 'seven', title: 'x', description: null, completed: false, dueAt: null };
      expect(() =>
        validator.check({
          ...response(200, JSON.stringify(todo), { 'content-type': 'application/json' }),
        }),
      ).toThrow(/does not match/);
    });
  });
});
