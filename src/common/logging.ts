import type { IncomingMessage, ServerResponse } from 'node:http';
import { RequestMethod } from '@nestjs/common';
import type { Params } from 'nestjs-pino';
import type { AppConfig } from '../config/config.js';

/**
 * Paths pino must never print. Request bodies are not logged at all; these cover headers and any
 * object a developer logs by mistake.
 */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'res.headers["set-cookie"]',
  // A failed query's bound values can hold a password hash or a token hash; MySQL's driver also
  // inlines them into the statement it reports (`sql`), on the error and on its driverError.
  'err.parameters',
  'err.driverError.parameters',
  'err.sql',
  'err.driverError.sql',
  ...[
    'password',
    'currentPassword',
    'newPassword',
    'token',
    'refreshToken',
    'accessToken',
    'passwordHash',
  ].flatMap((key) => [key, `*.${key}`, `*.*.${key}`]),
];

export function loggerParams(app: AppConfig, destination?: NodeJS.WritableStream): Params {
  const pretty = app.nodeEnv === 'development' && destination === undefined && process.stdout.isTTY;
  return {
    // One middleware route for everything; the library's default adds the prefix-excluded paths a
    // second time, which logged those requests twice.
    forRoutes: [{ path: '{*splat}', method: RequestMethod.ALL }],
    pinoHttp: [
      {
        level: app.logLevel,
        redact: { paths: REDACT_PATHS, censor: '[redacted]' },
        // Fastify already chose the id (from a valid X-Request-Id or a new UUID); use the same one.
        genReqId: (req: IncomingMessage & { id?: string }) => req.id ?? '',
        customProps: (req: IncomingMessage & { user?: { id: number } }) => ({ userId: req.user?.id }),
        autoLogging: {
          ignore: (req: IncomingMessage & { originalUrl?: string }) =>
            /^\/health\//.test(req.originalUrl ?? req.url ?? ''),
        },
        // pino-http invents an Error (with a stack pointing into pino-http) for every 5xx response the
        // app answered on purpose, such as 503 AUTH_BUSY; the exception filter already logged why.
        customErrorObject: (
          _req: IncomingMessage,
          res: ServerResponse & { err?: unknown },
          error: Error,
          value: Record<string, unknown>,
        ) => {
          if (res.err === undefined && /^failed with status code \d{3}$/.test(error.message)) {
            const { err: _synthetic, ...rest } = value;
            return rest;
          }
          return value;
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
      ...(destination ? [destination] : []),
    ] as Params['pinoHttp'],
  };
}

/** Landing-page links carry tokens in the query string; the log keeps the path only. */
function redactQuery(url: string): string {
  const index = url.indexOf('?');
  return index === -1 ? url : `${url.slice(0, index)}?[redacted]`;
}
