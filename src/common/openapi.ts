import {
  ApiProperty,
  type ApiPropertyOptions,
  DECORATORS,
  getSchemaPath,
  type OpenAPIObject,
} from '@nestjs/swagger';
import { PROBLEM_CONTENT_TYPE } from './problem.js';

/** The slices of OpenAPI 3 objects used here (@nestjs/swagger does not export its own types). */
interface SchemaObject {
  type?: string;
  enum?: unknown[];
  allOf?: SchemaObject[];
  properties?: Record<string, SchemaObject>;
  [keyword: string]: unknown;
}

export interface HeaderObject {
  description?: string;
  required?: boolean;
  schema?: SchemaObject;
}

interface ResponseObject {
  description: string;
  headers?: Record<string, HeaderObject>;
  content?: Record<string, { schema?: SchemaObject }>;
}

interface OperationObject {
  parameters?: Array<{ in?: string }>;
  requestBody?: unknown;
  responses: Record<string, ResponseObject>;
  [RATE_LIMITED]?: boolean;
}

/**
 * The OpenAPI side of the error contract (DESIGN §4 "The OpenAPI document is the contract"): every
 * error response is the one ProblemDetails schema, narrowed to the `code`s that operation can give,
 * so a client generator types errors and the e2e response validation fails on an undocumented code.
 */
export const PROBLEM_SCHEMA_NAME = 'ProblemDetails';
const PROBLEM_MEDIA_TYPE = PROBLEM_CONTENT_TYPE.split(';')[0];

/** Integer ids are INT UNSIGNED columns. */
export const ID_MAXIMUM = 4_294_967_295;

export type ProblemStatus = 400 | 401 | 403 | 404 | 408 | 409 | 413 | 414 | 415 | 429 | 431 | 500 | 503;

export interface ProblemOptions {
  /** Why the codes happen, when the code names alone do not say. */
  description?: string;
  /** Response headers the answer carries; `required` ones are checked on every such response. */
  headers?: Record<string, HeaderObject>;
}

type Responses = Record<string, ResponseObject>;

const HTTP_REASONS: Record<ProblemStatus, string> = {
  400: 'Bad request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not found',
  408: 'Request timeout',
  409: 'Conflict',
  413: 'Request body too large',
  414: 'URI too long',
  415: 'Unsupported media type',
  429: 'Too many requests',
  431: 'Request headers too large',
  500: 'Internal error',
  503: 'Service unavailable',
};

/** The codes an existing problem response already lists (read back from its schema). */
function codesOf(response: ResponseObject | undefined): string[] {
  const schema = response?.content?.[PROBLEM_MEDIA_TYPE]?.schema;
  const narrowed = schema?.allOf?.[1];
  const code = narrowed?.properties?.code;
  return (code?.enum as string[] | undefined) ?? [];
}

/** A header is required only if every contributor to the response requires it. */
function mergeHeaders(
  existing: Record<string, HeaderObject> | undefined,
  incoming: Record<string, HeaderObject> | undefined,
  existed: boolean,
): Record<string, HeaderObject> | undefined {
  if (!existing && !incoming) {
    return undefined;
  }
  const merged: Record<string, HeaderObject> = {};
  for (const name of new Set([...Object.keys(existing ?? {}), ...Object.keys(incoming ?? {})])) {
    const a = existing?.[name];
    const b = incoming?.[name];
    const required = existed ? Boolean(a?.required) && Boolean(b?.required) : Boolean(b?.required);
    // The first contributor's description and schema stay: the route's own, or the first app-wide
    // one (a lockout's Retry-After may be days, where the body budget's is a second).
    merged[name] = { ...b, ...a, required };
  }
  return merged;
}

/**
 * Adds `codes` to the problem response for `status` in `responses`, merging with what is there: the
 * union of the codes, the descriptions joined, headers required only where every source requires them.
 */
export function mergeProblem(
  responses: Responses,
  status: ProblemStatus,
  codes: readonly string[],
  options: ProblemOptions = {},
): void {
  const key = String(status);
  const existing = responses[key] as ResponseObject | undefined;
  const all = [...new Set([...codesOf(existing), ...codes])].sort();
  const lines = [
    ...(existing?.description ?? '').split('\n').filter((line) => line.startsWith('- ')),
    ...codes.map((code) => `- \`${code}\`${options.description ? `: ${options.description}` : ''}`),
  ];
  const headers = mergeHeaders(existing?.headers, options.headers, !!existing);
  responses[key] = {
    description: [HTTP_REASONS[status] + '. Codes:', ...new Set(lines)].join('\n'),
    ...(headers ? { headers } : {}),
    content: {
      [PROBLEM_MEDIA_TYPE]: {
        schema: {
          allOf: [
            { $ref: getSchemaPath(PROBLEM_SCHEMA_NAME) },
            { type: 'object', properties: { code: { type: 'string', enum: all } } },
          ],
        },
      },
    },
  };
}

type Handler = (...args: unknown[]) => unknown;

function mergeIntoHandler(
  handler: Handler,
  status: ProblemStatus,
  codes: readonly string[],
  options?: ProblemOptions,
) {
  const responses = { ...(Reflect.getMetadata(DECORATORS.API_RESPONSE, handler) as Responses | undefined) };
  mergeProblem(responses, status, codes, options);
  Reflect.defineMetadata(DECORATORS.API_RESPONSE, responses, handler);
}

/**
 * `@ApiProblem(404, ['TODO_NOT_FOUND'])` on a route or a controller: documents a problem+json answer
 * and the codes it may carry. Several uses for one status (a controller's, a guard's, a route's)
 * add up instead of replacing each other, in whatever order they are applied.
 */
export function ApiProblem(
  status: ProblemStatus,
  codes: readonly string[],
  options?: ProblemOptions,
): ClassDecorator & MethodDecorator {
  return ((target: object, _key?: string | symbol, descriptor?: TypedPropertyDescriptor<unknown>) => {
    if (descriptor) {
      mergeIntoHandler(descriptor.value as Handler, status, codes, options);
      return descriptor;
    }
    // A class decorator runs after every method decorator of the class: merge into each handler.
    const prototype = (target as { prototype: object }).prototype;
    for (const name of Object.getOwnPropertyNames(prototype)) {
      const value = Object.getOwnPropertyDescriptor(prototype, name)?.value as unknown;
      if (name !== 'constructor' && typeof value === 'function') {
        mergeIntoHandler(value as Handler, status, codes, options);
      }
    }
    return undefined;
  }) as ClassDecorator & MethodDecorator;
}

/** Marks an operation as rate limited: every answer may carry the RateLimit fields (see finishDocument). */
export const RATE_LIMITED = 'x-gatehouse-rate-limited';

export const RATE_LIMIT_HEADERS: Record<string, HeaderObject> = {
  RateLimit: {
    description:
      'Per limit on this route: `"<name>";r=<remaining>;t=<seconds until reset>` (draft-ietf-httpapi-ratelimit-headers)',
    schema: {
      type: 'string',
      maxLength: 256,
      pattern: '^"[a-z]+";r=\\d+;t=\\d+(, "[a-z]+";r=\\d+;t=\\d+)*$',
    },
  },
  'RateLimit-Policy': {
    description: 'Per limit on this route: `"<name>";q=<quota>;w=<window seconds>`',
    schema: {
      type: 'string',
      maxLength: 256,
      pattern: '^"[a-z]+";q=\\d+;w=\\d+(, "[a-z]+";q=\\d+;w=\\d+)*$',
    },
  },
};

const REQUEST_ID_HEADER: HeaderObject = {
  description: 'The request id (the one sent, if valid, else a new UUID): quote it to an operator.',
  required: true,
  schema: { type: 'string', maxLength: 128, pattern: '^[A-Za-z0-9._:-]{1,128}$' },
};

const DEPENDENCY_RETRY_AFTER_HEADER: HeaderObject = {
  description: 'Seconds to wait before retrying.',
  required: false,
  schema: { type: 'integer', format: 'int32', minimum: 1, maximum: 3600 },
};

const BODY_RETRY_AFTER_HEADER: HeaderObject = {
  description: 'Seconds to wait before retrying.',
  required: true,
  schema: { type: 'integer', format: 'int32', minimum: 1, maximum: 3600 },
};

const METHODS = ['get', 'put', 'post', 'delete', 'patch'] as const;

/**
 * What every operation can answer because of the app itself rather than its route: an invalid
 * X-Request-Id, a missing or doubled Host, a path that does not decode or bytes that are not HTTP
 * (400), a request not received within REQUEST_TIMEOUT (408), headers over Node's limit (431), a
 * path parameter over the router's limit (414), an unexpected error (500), a dependency out of reach
 * (503); for every operation that takes a query, one over QUERY_MAX_PARAMETERS (400); and for every
 * operation that reads a body (one that takes a body, and every POST, PUT, PATCH and DELETE) the body
 * parser's answers (bad JSON, too deep, too wide, not an object, too large, not JSON) and the body
 * budget (429, 503). Also adds the RateLimit fields to every answer of a rate-limited operation, and
 * the request id header to every answer.
 */
export function finishDocument(document: OpenAPIObject): OpenAPIObject {
  for (const pathItem of Object.values(document.paths) as Array<
    Record<string, OperationObject | undefined>
  >) {
    for (const method of METHODS) {
      const operation = pathItem[method];
      if (!operation) {
        continue;
      }
      const responses = operation.responses as Responses;
      // What Node refuses before any route is found (src/common/client-errors.ts) can meet any operation.
      mergeProblem(responses, 400, [
        'INVALID_REQUEST_ID',
        'INVALID_HOST',
        'MALFORMED_URL',
        'MALFORMED_REQUEST',
      ]);
      mergeProblem(responses, 408, ['REQUEST_TIMEOUT'], {
        description: 'the whole request did not arrive within `REQUEST_TIMEOUT`; the connection is closed',
      });
      mergeProblem(responses, 431, ['HEADERS_TOO_LARGE'], {
        description: 'the request headers are larger than the server accepts; the connection is closed',
      });
      mergeProblem(responses, 500, ['INTERNAL_ERROR']);
      mergeProblem(responses, 503, ['DEPENDENCY_UNAVAILABLE'], {
        description:
          'the database (or another service the request needs) cannot be reached, or is too busy to take the request; retry after `Retry-After` seconds, and keep your tokens',
        headers: { 'Retry-After': DEPENDENCY_RETRY_AFTER_HEADER },
      });
      const hasQuery = (operation.parameters ?? []).some((parameter) => parameter.in === 'query');
      if ((operation.parameters ?? []).some((parameter) => parameter.in === 'path')) {
        mergeProblem(responses, 414, ['URI_TOO_LONG'], {
          description: 'a path parameter is longer than 100 characters',
        });
      }
      if (operation.requestBody || hasQuery) {
        // The global ValidationPipe: one 400 listing every failed check in errors[].
        mergeProblem(responses, 400, ['VALIDATION_FAILED']);
      }
      if (hasQuery) {
        mergeProblem(responses, 400, ['QUERY_TOO_WIDE']);
      }
      // Fastify reads a body sent with any method but GET, to an operation that takes none too (which
      // then ignores it), so what reading it can answer belongs to every such operation.
      if (operation.requestBody) {
        mergeProblem(responses, 400, [
          'MALFORMED_JSON',
          'BODY_TOO_DEEP',
          'BODY_TOO_WIDE',
          'BODY_NOT_OBJECT',
          'BAD_REQUEST',
        ]);
      } else if (method !== 'get') {
        mergeProblem(responses, 400, ['MALFORMED_JSON', 'BODY_TOO_DEEP', 'BODY_TOO_WIDE', 'BAD_REQUEST']);
      }
      if (operation.requestBody || method !== 'get') {
        mergeProblem(responses, 413, ['PAYLOAD_TOO_LARGE']);
        // The body budget (src/common/body-budget.ts), checked before the body is read.
        mergeProblem(responses, 429, ['TOO_MANY_BODIES'], {
          description:
            'this client is already sending `BODY_BUDGET_PER_CLIENT` bytes of request bodies; this one was not read',
          headers: { 'Retry-After': BODY_RETRY_AFTER_HEADER },
        });
        mergeProblem(responses, 503, ['SERVER_BUSY'], {
          description: 'the server is receiving `BODY_BUDGET` bytes of request bodies; this one was not read',
          headers: { 'Retry-After': BODY_RETRY_AFTER_HEADER },
        });
        mergeProblem(responses, 415, ['UNSUPPORTED_MEDIA_TYPE']);
      }
      const limited = operation[RATE_LIMITED] === true;
      delete operation[RATE_LIMITED];
      for (const [status, response] of Object.entries(responses)) {
        const extra = limited && /^[24]/.test(status) ? RATE_LIMIT_HEADERS : {};
        response.headers = { 'X-Request-Id': REQUEST_ID_HEADER, ...extra, ...response.headers };
      }
    }
  }
  return document;
}

/**
 * The format of every email address in the document. Addresses are accepted as RFC 6531 allows them,
 * with a UTF-8 local part or an internationalized domain (stored in NFC, lower-cased), so the format
 * is JSON Schema's `idn-email`: `email` is ASCII only, and a client holding to it would refuse the
 * profile of a user named `josé@example.com`.
 */
export const EMAIL_FORMAT = 'idn-email';

/** An integer id of an INT UNSIGNED column. */
export const ApiIdProperty = (options: ApiPropertyOptions = {}) =>
  ApiProperty({ type: 'integer', format: 'int64', minimum: 1, maximum: ID_MAXIMUM, example: 42, ...options });

/** An ISO 8601 instant in UTC, as `Date.toISOString()` prints it. */
export const ApiDateTimeProperty = (options: ApiPropertyOptions = {}) =>
  ApiProperty({
    type: String,
    format: 'date-time',
    maxLength: 64,
    example: '2030-01-02T09:30:00.000Z',
    ...options,
  });
