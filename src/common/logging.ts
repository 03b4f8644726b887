import type { IncomingMessage, ServerResponse } from 'node:http';
import { RequestMethod } from '@nestjs/common';
import type { Params } from 'nestjs-pino';
import { pino } from 'pino';
import type { AppConfig } from '../config/config.js';

/** Keys whose values never reach a log line, at the top of a logged object or up to two levels down. */
export const SECRET_KEYS: ReadonlySet<string> = new Set([
  'password',
  'currentPassword',
  'newPassword',
  'token',
  'refreshToken',
  'accessToken',
  'passwordHash',
  'mfaToken',
  'recoveryCode',
  'recoveryCodes',
  'currentCode',
  'secret',
  'otpauthUrl',
  'totpSecret',
  'totpPendingSecret',
  'authorization',
  'cookie',
  'set-cookie',
]);

export const CENSOR = '[redacted]';

/**
 * Paths pino's own redaction covers: a failed query's bound values can hold a password hash or a
 * token hash, and MySQL's driver also inlines them into the statement it reports (`sql`), on the error
 * and on its driverError. Request bodies are not logged at all, and the request/response serializers
 * print no headers.
 */
export const REDACT_PATHS = [
  'err.parameters',
  'err.driverError.parameters',
  'err.sql',
  'err.driverError.sql',
];

/**
 * SECRET_KEYS anywhere in the top three levels of a logged object, replaced in a copy (the caller's
 * object is never changed; one with nothing to hide is returned as it is). pino's redaction can say
 * the same with `*.password` and `*.*.password` paths, but its wildcards cost ~55 µs on every line,
 * request lines included (bench/README.md): a tenth of an authenticated request.
 */
export function redactSecrets(object: Record<string, unknown>, depth = 2): Record<string, unknown> {
  let copy: Record<string, unknown> | undefined;
  for (const key in object) {
    if (depth === 2 && SERIALIZED_KEYS.has(key)) {
      continue;
    }
    const value = object[key];
    let replacement = value;
    if (SECRET_KEYS.has(key)) {
      replacement = CENSOR;
    } else if (depth > 0 && isNestedRecord(value)) {
      replacement = redactSecrets(value, depth - 1);
    }
    if (replacement !== value) {
      copy ??= (Array.isArray(object) ? [...object] : { ...object }) as Record<string, unknown>;
      copy[key] = replacement;
    }
  }
  return copy ?? object;
}

/**
 * Top-level keys whose serializer decides what is printed (`req` and `res` print no headers, `err`
 * is covered by REDACT_PATHS). pino-http logs the raw request and response objects under them: a walk
 * through those (sockets, parsers, headers) would cost more than the line.
 */
const SERIALIZED_KEYS: ReadonlySet<string> = new Set(['req', 'res', 'err']);

/** Plain objects and class instances (a DTO logged by mistake); errors keep their serializer. */
function isNestedRecord(value: unknown): value is Record<string, unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    !(value instanceof Error) &&
    !(value instanceof Date) &&
    !ArrayBuffer.isView(value)
  );
}

export function loggerParams(app: AppConfig, destination?: NodeJS.WritableStream): Params {
  const pretty = app.nodeEnv === 'development' && destination === undefined && process.stdout.isTTY;
  return {
    // One middleware route for everything; the library's default adds the prefix-excluded paths a
    // second time, which logged those requests twice.
    forRoutes: [{ path: '{*splat}', method: RequestMethod.ALL }],
    pinoHttp: [
      {
        level: app.logLevel,
        redact: { paths: REDACT_PATHS, censor: CENSOR },
        formatters: { log: redactSecrets },
        // Fastify already chose the id (from a valid X-Request-Id or a new UUID); use the same one.
        genReqId: (req: IncomingMessage & { id?: string }) => req.id ?? '',
        // The caller's id goes into the completion line itself. As customProps it made pino-http build
        // two more child loggers per request (one before the guard ran, always without a user).
        customSuccessObject: (req: RequestWithUser, _res: ServerResponse, value: Record<string, unknown>) =>
          withCaller(req, value),
        autoLogging: {
          ignore: (req: IncomingMessage & { originalUrl?: string }) =>
            /^\/health\//.test(req.originalUrl ?? req.url ?? ''),
        },
        // pino-http invents an Error (with a stack pointing into pino-http) for every 5xx response the
        // app answered on purpose, such as 503 AUTH_BUSY; the exception filter already logged why.
        customErrorObject: (
          req: RequestWithUser,
          res: ServerResponse & { err?: unknown },
          error: Error,
          value: Record<string, unknown>,
        ) => {
          if (res.err === undefined && /^failed with status code \d{3}$/.test(error.message)) {
            const { err: _synthetic, ...rest } = value;
            return withCaller(req, rest);
          }
          return withCaller(req, value);
        },
        serializers: {
          req: (req: { id: string; method: string; url: string }) => ({
            id: req.id,
            method: req.method,
            url: redactQuery(req.url),
          }),
          res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
        },
        ...(pretty ? { transport: { target: 'pino-pretty', options: { singleLine: true } } } : {}),
      },
      // Without a destination of the caller's, stdout through an asynchronous SonicBoom: a request's log
      // line no longer blocks the event loop on a write(2) (a tenth of an authenticated request's CPU
      // in the bench profile). Lines are written as soon as the previous write finishes (no minLength
      // buffering), and pino flushes what is pending when the process exits.
      ...(destination ? [destination] : pretty ? [] : [pino.destination({ sync: false })]),
    ] as Params['pinoHttp'],
  };
}

type RequestWithUser = IncomingMessage & { user?: { id: number } };

/**
 * A completion line's object, with `userId` when the request was authenticated. pino-http builds a
 * fresh object for every line, so it is added in place rather than copied (once per request).
 */
function withCaller(req: RequestWithUser, value: Record<string, unknown>): Record<string, unknown> {
  if (req.user) {
    value.userId = req.user.id;
  }
  return value;
}

/** Landing-page links carry tokens in the query string; the log keeps the path only. */
function redactQuery(url: string): string {
  const index = url.indexOf('?');
  return index === -1 ? url : `${url.slice(0, index)}?[redacted]`;
}
