import { AsyncLocalStorage } from 'node:async_hooks';
import { type FastifyBaseLogger, type FastifyReply, type FastifyRequest, LogController } from 'fastify';
import type { Params } from 'nestjs-pino';
import { type Logger, type LoggerOptions, pino } from 'pino';
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
 * is covered by REDACT_PATHS). The request log passes Fastify's request and reply objects under them:
 * a walk through those (sockets, parsers, headers) would cost more than the line.
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

/**
 * The app's one pino logger: JSON lines to stdout, or to `destination` (tests read what was logged).
 * Every line written while a request is handled carries its `requestId`, and its `userId` once the
 * access-token guard has accepted the caller (`logContext`).
 */
export function createAppLogger(app: AppConfig, destination?: NodeJS.WritableStream): Logger {
  const pretty = app.nodeEnv === 'development' && destination === undefined && process.stdout.isTTY;
  const options: LoggerOptions = {
    level: app.logLevel,
    redact: { paths: REDACT_PATHS, censor: CENSOR },
    formatters: { log: redactSecrets },
    mixin: logContext,
    // pino's default merges into the mixin's object; outside a request there is nothing to merge.
    mixinMergeStrategy: (line, context) => (context === NO_CONTEXT ? line : Object.assign(context, line)),
    serializers: {
      req: (req: { id: string; method: string; url: string }) => ({
        id: req.id,
        method: req.method,
        url: redactQuery(req.url),
      }),
      res: (res: { statusCode: number }) => ({ statusCode: res.statusCode }),
    },
    ...(pretty ? { transport: { target: 'pino-pretty', options: { singleLine: true } } } : {}),
  };
  if (destination) {
    return pino(options, destination);
  }
  if (pretty) {
    return pino(options);
  }
  // Written in 4 KB batches, by libuv's pool (a write never blocks the event loop), and at least once a
  // second; pino writes what is left when the process exits. One write per line cost each request a
  // thread-pool round trip, ~1.2 futex calls and 0.7 write(2) (strace -c -f over 2,000 GET /todos).
  return pino(options, pino.destination({ sync: false, minLength: 4096, periodicFlush: 1000 }));
}

/**
 * nestjs-pino's parameters: Nest's logger (`app.useLogger`, `new Logger(…)` in services) writes
 * through the app's logger, and Fastify logs the requests (RequestLog). `useExisting` is the
 * library's mode for a Fastify adapter that has its own logger; with no route for its middleware,
 * no request goes through @fastify/middie and pino-http, which built two child loggers and a
 * serialized copy of the request for every request (a sixth of an authenticated GET's instructions).
 */
export function loggerParams(logger: Logger): Params {
  return { pinoHttp: { logger }, useExisting: true, forRoutes: [] };
}

/**
 * Fastify's request logging, one line per request when it completes (`request completed`, or
 * `request errored` for a 5xx): the request as id, method and path, the status, the time taken in
 * ms and the caller's id. Probes (/health/*) are not logged. Fastify's `request.log` is the app's
 * logger itself (`sameLogger`): the request id comes from the request context, not from a child
 * logger made for every request.
 */
export class RequestLog extends LogController {
  override isLogDisabled(request: FastifyRequest): boolean {
    return request.url.startsWith('/health/');
  }

  override incomingRequest(): void {
    // One line per request, when it completes.
  }

  override requestCompleted(error: Error | null | undefined, request: FastifyRequest, reply: FastifyReply) {
    if (this.isLogDisabled(request)) {
      return;
    }
    const user = (request as RequestWithUser).user;
    const line: Record<string, unknown> = {
      req: request,
      res: reply,
      responseTime: Math.round(reply.elapsedTime),
    };
    if (user) {
      line.userId = user.id;
    }
    if (error) {
      line.err = error;
    }
    request.log.info(line, error || reply.statusCode >= 500 ? 'request errored' : 'request completed');
  }
}

/** Fastify's child logger factory: no child per request (see RequestLog). */
export const sameLogger = (logger: FastifyBaseLogger): FastifyBaseLogger => logger;

type RequestWithUser = FastifyRequest & { user?: { id: number } };

/**
 * What the lines logged while a request is handled say about it. A small record of its own, not the
 * request: a timer or socket made during the request keeps its async context alive as long as it
 * lives, and with it whatever the context holds.
 */
interface LogContext {
  requestId: string;
  userId?: number;
}

const requestContext = new AsyncLocalStorage<LogContext>();
const NO_CONTEXT: Readonly<Record<string, never>> = Object.freeze({});

/**
 * pino's mixin: `requestId` (and `userId` once the caller is known) on every line logged while a
 * request is handled, a service's `new Logger(…)` lines included; nothing outside one. A field the
 * logged object names itself wins.
 */
function logContext(): Record<string, unknown> {
  const context = requestContext.getStore();
  if (!context) {
    return NO_CONTEXT;
  }
  return context.userId === undefined
    ? { requestId: context.requestId }
    : { requestId: context.requestId, userId: context.userId };
}

/**
 * A Fastify preHandler hook: the route's handler (Nest's guards, pipes, controller and filters, and
 * every promise they start) runs inside the request's log context. Entered this late because a body
 * is read in the socket's own context: a context entered at onRequest would be lost by then.
 */
export function enterRequestContext(request: FastifyRequest, _reply: FastifyReply, done: () => void): void {
  requestContext.run({ requestId: String(request.id) }, done);
}

/** Names the caller on the lines the current request logs from now on (the access-token guard). */
export function logAsCaller(userId: number): void {
  const context = requestContext.getStore();
  if (context) {
    context.userId = userId;
  }
}

/** Landing-page links carry tokens in the query string; the log keeps the path only. */
function redactQuery(url: string): string {
  const index = url.indexOf('?');
  return index === -1 ? url : `${url.slice(0, index)}?[redacted]`;
}
