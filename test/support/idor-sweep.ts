import { OWNED_RESOURCE } from '../../src/owned/owned-resource.decorator.js';
import { newUser, type SeededUser } from './factories.js';
import type { ApiResponse, TestApp } from './test-app.js';

type Schema = {
  $ref?: string;
  type?: string;
  format?: string;
  example?: unknown;
  nullable?: boolean;
  minimum?: number;
  minLength?: number;
  required?: string[];
  properties?: Record<string, Schema>;
  allOf?: Schema[];
};

interface Operation {
  [OWNED_RESOURCE]?: boolean;
  requestBody?: { content?: Record<string, { schema?: Schema }> };
}

interface OpenApi {
  paths: Record<string, Record<string, Operation>>;
  components?: { schemas?: Record<string, Schema> };
}

const METHODS = ['get', 'post', 'put', 'patch', 'delete'] as const;

export interface SweepResult {
  /** Collection paths found, e.g. `/api/v1/todos`. */
  collections: string[];
  /** Every owned operation attacked, as `METHOD path`. */
  attacked: string[];
}

/**
 * The IDOR sweep: every operation the OpenAPI document marks `x-owned-resource` (the
 * `@OwnedResource()` controllers) is attacked by a second account, with nothing written per route.
 * For each collection `/things`: the victim creates rows through `POST /things` (a body built from the
 * documented schema), then the attacker
 * - calls every `/things/{id}` operation with the victim's ids and must get exactly the 404 that a
 *   missing id gets (same status, same body but the request id);
 * - lists `GET /things` and must see none of the victim's ids;
 * - creates through `POST /things` and the row is the attacker's, invisible to the victim;
 * and afterwards every victim row reads back unchanged. An owned operation of any other shape fails
 * the sweep: it must be taught how to attack it before it ships.
 */
export async function sweepOwnedRoutes(t: TestApp): Promise<SweepResult> {
  const docResponse = await t.request<OpenApi>('/docs/openapi.json');
  if (docResponse.status !== 200) {
    throw new Error(`The OpenAPI document answered ${docResponse.status}`);
  }
  const doc = docResponse.body;
  const owned = Object.entries(doc.paths).flatMap(([path, operations]) =>
    METHODS.filter((method) => operations[method]?.[OWNED_RESOURCE]).map((method) => ({
      path,
      method,
      operation: operations[method],
    })),
  );
  const collections = [...new Set(owned.map(({ path }) => path.replace(/\/\{id\}$/, '')))].sort();
  const attacked: string[] = [];

  for (const collection of collections) {
    const routes = owned.filter(({ path }) => path === collection || path === `${collection}/{id}`);
    const strays = owned.filter(
      ({ path }) => path.startsWith(`${collection}/`) && path !== `${collection}/{id}`,
    );
    if (strays.length > 0) {
      throw new Error(
        `The IDOR sweep cannot attack ${strays.map((r) => `${r.method.toUpperCase()} ${r.path}`).join(', ')}: ` +
          'owned routes must be /things or /things/{id}, or the sweep must learn the new shape',
      );
    }
    const create = routes.find(({ path, method }) => path === collection && method === 'post');
    if (!create) {
      throw new Error(`The IDOR sweep needs POST ${collection} to create the victim's rows`);
    }
    const victim = await newUser(t);
    const attacker = await newUser(t);
    const bodyOf = (operation: Operation) => exampleBody(doc, operation);
    const victimIds: number[] = [];
    for (let i = 0; i < 2; i += 1) {
      const res = await t.request(collection, {
        method: 'POST',
        token: victim.accessToken,
        body: bodyOf(create.operation),
      });
      expectStatus(res, 201, `POST ${collection} as the victim`);
      victimIds.push((res.body as { id: number }).id);
    }
    const snapshot = async () => Promise.all(victimIds.map((id) => readAs(t, victim, `${collection}/${id}`)));
    const before = await snapshot();
    const missingId = Math.max(...victimIds) + 1_000_000;

    for (const { path, method, operation } of routes) {
      const verb = method.toUpperCase();
      if (path.endsWith('/{id}')) {
        const body = ['post', 'put', 'patch'].includes(method) ? bodyOf(operation) : undefined;
        const call = (id: number) =>
          t.request(`${collection}/${id}`, { method: verb, token: attacker.accessToken, body });
        const missing = await call(missingId);
        expectStatus(missing, 404, `${verb} ${path} with a missing id`);
        for (const id of victimIds) {
          const res = await call(id);
          expectStatus(res, 404, `${verb} ${path} with the victim's id ${id}`);
          if (JSON.stringify(withoutRequestId(res.body)) !== JSON.stringify(withoutRequestId(missing.body))) {
            throw new Error(`${verb} ${path}: the answer for someone else's row differs from a missing one`);
          }
        }
      } else if (method === 'get') {
        for (const query of ['', '?limit=100']) {
          const res = await t.request(`${collection}${query}`, { token: attacker.accessToken });
          expectStatus(res, 200, `GET ${collection}${query} as the attacker`);
          const ids = (res.body as { items: { id: number }[] }).items.map((item) => item.id);
          if (ids.some((id) => victimIds.includes(id))) {
            throw new Error(`GET ${collection} lists the victim's rows to the attacker`);
          }
        }
      } else if (method === 'post') {
        const res = await t.request(collection, {
          method: 'POST',
          token: attacker.accessToken,
          body: bodyOf(operation),
        });
        expectStatus(res, 201, `POST ${collection} as the attacker`);
        const id = (res.body as { id: number }).id;
        expectStatus(
          await readAs(t, attacker, `${collection}/${id}`),
          200,
          'the attacker reading their own row',
        );
        expectStatus(
          await readAs(t, victim, `${collection}/${id}`),
          404,
          "the victim reading the attacker's row",
        );
      } else {
        throw new Error(`The IDOR sweep cannot attack ${verb} ${path}`);
      }
      attacked.push(`${verb} ${path}`);
    }
    const after = await snapshot();
    if (JSON.stringify(after) !== JSON.stringify(before)) {
      throw new Error(`The victim's ${collection} rows changed during the sweep`);
    }
  }
  return { collections, attacked: attacked.sort() };
}

async function readAs(t: TestApp, user: SeededUser, path: string): Promise<ApiResponse> {
  const res = await t.request(path, { token: user.accessToken });
  return { ...res, body: res.status === 200 ? res.body : undefined };
}

function expectStatus(res: ApiResponse, status: number, what: string): void {
  if (res.status !== status) {
    throw new Error(`${what}: expected ${status}, got ${res.status} ${res.text}`);
  }
}

function withoutRequestId(body: unknown): unknown {
  if (body && typeof body === 'object') {
    const { requestId: _ignored, ...rest } = body as Record<string, unknown>;
    return rest;
  }
  return body;
}

/** A body the operation accepts, from its documented schema: examples where given, else a minimal value. */
function exampleBody(doc: OpenApi, operation: Operation): unknown {
  const schema = operation.requestBody?.content?.['application/json']?.schema;
  return schema ? exampleOf(doc, schema) : undefined;
}

function exampleOf(doc: OpenApi, schema: Schema): unknown {
  if (schema.$ref) {
    const name = schema.$ref.replace('#/components/schemas/', '');
    return exampleOf(doc, doc.components?.schemas?.[name] ?? {});
  }
  if (schema.allOf) {
    return Object.assign({}, ...schema.allOf.map((part) => exampleOf(doc, part)));
  }
  if (schema.example !== undefined) {
    return schema.example;
  }
  if (schema.properties) {
    return Object.fromEntries(
      Object.entries(schema.properties).map(([name, property]) => [name, exampleOf(doc, property)]),
    );
  }
  if (schema.type === 'integer' || schema.type === 'number') {
    return schema.minimum ?? 1;
  }
  if (schema.type === 'boolean') {
    return true;
  }
  if (schema.type === 'string') {
    return schema.format === 'date-time'
      ? new Date().toISOString()
      : 'x'.repeat(Math.max(1, schema.minLength ?? 1));
  }
  return null;
}
