import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { type DynamicModule, HttpStatus, type NestApplicationOptions, RequestMethod } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import type { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, type OpenAPIObject, SwaggerModule } from '@nestjs/swagger';
import type { FastifyInstance, onSendHookHandler } from 'fastify';
import helmet from 'helmet';
import { Logger } from 'nestjs-pino';
import { AppModule, type AppModuleOptions } from './app.module.js';
import { registerBodyBudget } from './common/body-budget.js';
import {
  clientErrorHandler,
  closesUnfinished,
  frameworkErrors,
  type IdentifiedRequest,
  hasValidHost,
  nodeServerOptions,
  RAW_REQUEST_ID,
  type SecurityHeaders,
} from './common/client-errors.js';
import { ProblemDetailsFilter } from './common/exceptions.filter.js';
import { ProblemDetailsDto } from './common/dto/problem-details.dto.js';
import { JSON_MAX_DEPTH, JSON_MAX_ITEMS, type JsonShapeFault, jsonShapeFault } from './common/json-shape.js';
import { createAppLogger, enterRequestContext, RequestLog, sameLogger } from './common/logging.js';
import { finishDocument } from './common/openapi.js';
import { serveInOrder } from './common/pipelining.js';
import { AppException, PROBLEM_CONTENT_TYPE, problem } from './common/problem.js';
import { compilersOnDemand } from './common/schema-compilers.js';
import { GracefulFastifyAdapter, Shutdown } from './common/shutdown.js';
import { AppValidationPipe } from './common/validation.js';
import { MetricsService } from './metrics/metrics.service.js';
import openApiPluginMetadata from './metadata.js';

export const API_PREFIX = 'api/v1';

/** Routes served outside /api/v1: probes, metrics, docs and the HTML landing pages behind mailed links. */
const UNPREFIXED = [
  'health/live',
  'health/ready',
  'metrics',
  'verify-email',
  'reset-password',
  'pages/assets/:name',
];

/** Letters, digits and . _ - : up to 128 characters; anything else could forge log lines. */
const REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export interface CreateAppOptions extends AppModuleOptions {
  /**
   * Instantiates the root module; NestFactory.create by default. Tests pass one built on
   * @nestjs/testing to replace a provider the way a team would (a MailSender, say).
   */
  instantiate?: (
    root: DynamicModule,
    adapter: FastifyAdapter,
    options: NestApplicationOptions,
  ) => Promise<NestFastifyApplication>;
}

// main.ts listens through this: on every address of localhost (src/common/listen.ts).
export { listen } from './common/listen.js';

/**
 * Builds the fully configured application (not yet listening). main.ts, the CLI and every e2e test
 * go through here, so what is tested is what runs.
 */
export async function createApp(options: CreateAppOptions): Promise<NestFastifyApplication> {
  const { app: appConfig } = options.config.values;
  // One logger for Nest (nestjs-pino) and Fastify, which logs each request (RequestLog).
  const logger = options.logger ?? createAppLogger(appConfig, options.logDestination);
  const requestLog = new RequestLog();
  // Fastify runs no hooks for what its router refuses (frameworkErrors): those answers are logged and
  // timed when sent, by the metrics once the app has built them.
  const built: { metrics?: MetricsService } = {};
  const adapter = new GracefulFastifyAdapter(
    {
      loggerInstance: logger,
      logController: requestLog,
      childLoggerFactory: sameLogger,
      bodyLimit: appConfig.bodyLimit,
      // A client that stalls mid-request holds its connection and the body read so far; without a
      // timeout (Fastify's default) that is for ever, and a thousand of them fill the container.
      // Node's own answer to a request without Host is a bare 400: hardenFastify answers it instead.
      ...nodeServerOptions(appConfig.requestTimeoutMs),
      clientErrorHandler: clientErrorHandler(logger, SECURITY_HEADERS),
      frameworkErrors: frameworkErrors(SECURITY_HEADERS, (request, reply) => {
        requestLog.requestCompleted(null, request, reply);
        built.metrics?.requestAnswered(request, reply);
      }),
      trustProxy: appConfig.trustProxy,
      requestIdHeader: false,
      genReqId: (req: IdentifiedRequest) => {
        const given = req.headers['x-request-id'];
        const id = typeof given === 'string' && REQUEST_ID.test(given) ? given : randomUUID();
        // Kept on the raw request for the 408 of a request cut mid-body (src/common/client-errors.ts).
        req[RAW_REQUEST_ID] = id;
        return id;
      },
      // Prototype-poisoning keys (__proto__, constructor.prototype) are refused, not silently dropped.
      onProtoPoisoning: 'error',
      onConstructorPoisoning: 'error',
      routerOptions: { ignoreTrailingSlash: true },
      // While the server drains (SIGTERM), a request already on a kept-alive connection is served, with
      // `Connection: close`, rather than refused with a 503: the database is still there for it.
      return503OnClosing: false,
      // No route declares a JSON schema; ajv and fast-json-stringify load if one ever does.
      schemaController: { compilersFactory: compilersOnDemand() },
    },
    appConfig.shutdownGraceMs,
  );
  const instantiate = options.instantiate ?? ((root, http, opts) => NestFactory.create(root, http, opts));
  const app = await instantiate(AppModule.forRoot({ ...options, logger }), adapter, {
    bufferLogs: true,
    // A wiring error is thrown to the caller (main.ts logs it and exits 1) instead of Nest calling
    // process.exit() itself, which in a test worker would end the thread and hang the run.
    abortOnError: false,
    // Fastify's own JSON parser only: Nest's would add urlencoded bodies, which no route accepts.
    bodyParser: false,
  });
  app.useLogger(app.get(Logger));
  dropUnmountedClsEnhancers(app);
  // SIGTERM: the adapter stops accepting and drains requests, the worker finishes or releases its
  // claims, the pools close, within SHUTDOWN_GRACE (src/common/shutdown.ts). Then exit(0) rather than
  // a re-raised signal, so the asynchronous log destination is flushed: the last lines are not lost.
  const shutdown = app.get(Shutdown);
  adapter.onStop = () => shutdown.begin();
  app.enableShutdownHooks(undefined, { useProcessExit: true });
  app.setGlobalPrefix(API_PREFIX, {
    exclude: UNPREFIXED.map((path) => ({ path, method: RequestMethod.ALL })),
  });
  app.useGlobalFilters(new ProblemDetailsFilter());
  app.useGlobalPipes(new AppValidationPipe());
  if (appConfig.corsOrigins.length > 0) {
    app.enableCors({
      origin: appConfig.corsOrigins,
      credentials: false,
      maxAge: 600,
      // What a browser client on another origin needs to read: when to retry, what is left of its
      // budget, why a token was refused, and the id to quote to an operator.
      exposedHeaders: ['Retry-After', 'RateLimit', 'RateLimit-Policy', 'WWW-Authenticate', 'X-Request-Id'],
      // @fastify/cors answers an OPTIONS without Origin or Access-Control-Request-Method with a bare
      // text/plain 400; it gets the same empty 204 as a preflight instead (allowing nothing more: the
      // origin rule still decides Access-Control-Allow-Origin).
      strictPreflight: false,
      // After the app's own onRequest checks (Host, X-Request-Id, the security headers): in Nest's
      // default place, the adapter's first hook, a preflight was answered before any of them ran.
      hook: 'preParsing',
    });
  }

  const fastify: FastifyInstance = app.getHttpAdapter().getInstance();
  const metrics = app.get(MetricsService);
  built.metrics = metrics;
  metrics.instrument(fastify);
  registerSecurityHeaders(fastify);
  metrics.watchBodyBudget(
    registerBodyBudget(
      fastify,
      {
        bodyLimit: appConfig.bodyLimit,
        total: appConfig.bodyBudget,
        perClient: appConfig.bodyBudgetPerClient,
      },
      (budget) => metrics.bodyRefused(budget),
    ),
  );
  hardenFastify(fastify);
  // One request at a time per connection, and answers a client stops reading do not stay for ever.
  serveInOrder(fastify.server, appConfig.requestTimeoutMs, (why) => metrics.connectionDropped(why));
  // The @nestjs/swagger CLI plugin's view of DTOs and controllers, generated by `npm run openapi`.
  await SwaggerModule.loadPluginMetadata(openApiPluginMetadata);
  setUpOpenApi(app);
  return app;
}

/** The part of Nest's ApplicationConfig (not exported by @nestjs/core) that holds the global enhancers. */
interface GlobalEnhancers {
  getGlobalInterceptors(): unknown[];
  getGlobalGuards(): unknown[];
}

/**
 * nestjs-cls (6.x and 7.0 alike) registers a global guard and a global interceptor even when neither
 * is mounted: a plain `{ canActivate: () => true }` and `{ intercept: (_, next) => next.handle() }`.
 * The interceptor alone put every request through Nest's rxjs interceptor chain (defer, mergeAll, an
 * AsyncResource bind, an Observable turned back into a promise). Gatehouse mounts neither: the unit of
 * work opens its own CLS context per transaction. So both are taken out before the routes are built
 * (the router reads the global enhancers then); test/foundation checks that none is left.
 */
function dropUnmountedClsEnhancers(app: NestFastifyApplication): void {
  const config = (app as unknown as { config: GlobalEnhancers }).config;
  const unmounted = (enhancer: unknown, method: string) =>
    typeof enhancer === 'object' &&
    enhancer !== null &&
    Object.getPrototypeOf(enhancer) === Object.prototype &&
    Object.keys(enhancer).join() === method;
  for (const [list, method] of [
    [config.getGlobalInterceptors(), 'intercept'],
    [config.getGlobalGuards(), 'canActivate'],
  ] as const) {
    for (let i = list.length - 1; i >= 0; i -= 1) {
      if (unmounted(list[i], method)) {
        list.splice(i, 1);
      }
    }
  }
}

/**
 * Helmet's headers, worked out once. `helmet(options)` parses the CSP directives and assembles every
 * header when it is called, and @fastify/helmet called it on every request (a measurable share of an
 * authenticated request's CPU); the middleware it returns then sets a dozen headers one by one. For
 * options that do not vary per request (no CSP nonces), the middleware sets the same headers on every
 * response: they are recorded from one run and added to each reply in one step.
 */
function recordSecurityHeaders(): Record<string, string> {
  const securityHeaders = helmet({
    contentSecurityPolicy: {
      directives: {
        defaultSrc: ["'self'"],
        baseUri: ["'self'"],
        formAction: ["'self'"],
        frameAncestors: ["'none'"],
        imgSrc: ["'self'", 'data:'],
        objectSrc: ["'none'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'", "'unsafe-inline'"],
        upgradeInsecureRequests: null,
      },
    },
    strictTransportSecurity: { maxAge: 31536000, includeSubDomains: true },
    referrerPolicy: { policy: 'no-referrer' },
    crossOriginEmbedderPolicy: false,
  });
  const headers: Record<string, string> = {};
  const recorder = {
    setHeader: (name: string, value: string) => void (headers[name.toLowerCase()] = value),
    removeHeader: () => undefined,
  };
  securityHeaders(
    recorder as unknown as IncomingMessage,
    recorder as unknown as ServerResponse,
    () => undefined,
  );
  return headers;
}

/** Also written by the answers Fastify's hooks never see: client errors and router errors. */
const SECURITY_HEADERS: SecurityHeaders = recordSecurityHeaders();

function registerSecurityHeaders(fastify: FastifyInstance): void {
  fastify.addHook('onRequest', (_request, reply, done) => {
    reply.headers(SECURITY_HEADERS);
    done();
  });
}

const SHAPE_FAULTS: Record<JsonShapeFault, string> = {
  BODY_TOO_DEEP: `The request body nests arrays or objects deeper than ${JSON_MAX_DEPTH} levels.`,
  BODY_TOO_WIDE: `The request body holds more than ${JSON_MAX_ITEMS} object members and array elements.`,
};

function hardenFastify(fastify: FastifyInstance): void {
  // Only JSON is accepted; Fastify would otherwise parse text/plain into a string body.
  fastify.removeContentTypeParser(['text/plain']);
  // Fastify's own JSON parser (prototype poisoning refused), behind a check of nesting depth and width
  // that runs before anything parses or validates the body (DESIGN §5 "Bounded by design").
  const parseJson = fastify.getDefaultJsonParser('error', 'error');
  fastify.removeContentTypeParser('application/json');
  fastify.addContentTypeParser('application/json', { parseAs: 'string' }, (request, body, done) => {
    // An empty body is no body, whatever its Content-Type says: clients that set JSON on every request
    // can call an operation that takes none, and one that takes a DTO answers VALIDATION_FAILED.
    if (body === '') {
      done(null, undefined);
      return;
    }
    const fault = jsonShapeFault(body as string);
    if (fault !== undefined) {
      done(new AppException(HttpStatus.BAD_REQUEST, fault, SHAPE_FAULTS[fault]), undefined);
      return;
    }
    void parseJson(request, body as string, done);
  });

  // The per-request hooks are callback-style: an async hook costs a promise and its microtasks on
  // every request. A hook that answers itself does not call done().
  fastify.addHook('onRequest', (request, reply, done) => {
    const given = request.headers['x-request-id'];
    const refusal =
      given !== undefined && (typeof given !== 'string' || !REQUEST_ID.test(given))
        ? (['INVALID_REQUEST_ID', 'X-Request-Id must be 1-128 characters of A-Z a-z 0-9 . _ : -.'] as const)
        : hasValidHost(request.raw)
          ? undefined
          : (['INVALID_HOST', 'An HTTP/1.1 request must carry exactly one Host header.'] as const);
    if (refusal !== undefined) {
      const body = problem(400, refusal[0], refusal[1], String(request.id));
      void reply.code(400).header('x-request-id', String(request.id)).type(PROBLEM_CONTENT_TYPE).send(body);
      return;
    }
    done();
  });

  fastify.addHook('preHandler', enterRequestContext);

  fastify.addHook('onSend', (request, reply, payload, done) => {
    reply.header('x-request-id', String(request.id));
    if (!request.raw.complete) {
      reply.headers(closesUnfinished(request));
    }
    // Auth and user data must never sit in a shared cache.
    if (request.url.startsWith(`/${API_PREFIX}/`) && !reply.hasHeader('cache-control')) {
      reply.header('cache-control', 'no-store');
    }
    done(null, payload);
  });
}

/** Tags, in the order Swagger UI lists them. */
const TAGS: Array<[name: string, description: string]> = [
  ['auth', 'Sign-up, email verification, sign-in, token refresh, sign-out, password reset and sessions.'],
  ['users', 'The signed-in account: profile, password, deletion and its own security trail.'],
  ['todos', 'The caller’s own todos (a verified email is required); someone else’s are 404.'],
  ['admin', 'Operator tools for accounts with the admin role; every action is audited.'],
  ['health', 'Liveness and readiness probes for orchestrators.'],
  ['metrics', 'Prometheus metrics.'],
];

const BEARER_DESCRIPTION =
  'An access token from `login`, `login/mfa` or `refresh`: a JWS per RFC 7519 that follows the JSON Web ' +
  'Token Best Current Practices of RFC8725. Signed with HS256, the only algorithm accepted (never `none`); ' +
  '`iss`, `aud` and `exp` (15 minutes by default) are checked on every request, `sub` is the user id and ' +
  '`sid` the session, which must still be live, so sign-out, password changes and disabling take effect ' +
  'at once. A refused token answers 401 `UNAUTHENTICATED` with `WWW-Authenticate: Bearer ' +
  'error="invalid_token"`: refresh and retry once.';

/** operationIds name what an operation does (`login`, `listTodos`); this is for routes that set none. */
function operationId(controllerKey: string, methodKey: string): string {
  return `${methodKey}${controllerKey.replace(/Controller$/, '')}`;
}

export function buildOpenApiDocument(app: NestFastifyApplication): OpenAPIObject {
  const builder = new DocumentBuilder()
    .setTitle('Gatehouse')
    .setDescription(
      'Authentication and user management with a user-scoped Todo API. Errors are RFC 9457 problem+json ' +
        '(the `ProblemDetails` schema) with a stable `code` and the `requestId` to quote to an operator; ' +
        'each operation lists the codes it can answer.',
    )
    .setVersion('1')
    .addBearerAuth({ type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: BEARER_DESCRIPTION });
  for (const [name, description] of TAGS) {
    builder.addTag(name, description);
  }
  const document = SwaggerModule.createDocument(app, builder.build(), {
    extraModels: [ProblemDetailsDto],
    operationIdFactory: operationId,
  });
  // Relative: every deployment (local, staging, production) serves its own document at /docs.
  document.servers = [
    {
      url: '/',
      description: 'The Gatehouse instance serving this document (local, staging or production alike)',
      'x-internal': false,
    } as OpenAPIObject['servers'] extends Array<infer S> | undefined ? S : never,
  ];
  return finishDocument(document);
}

/** Sent in pieces, so a slow client's progress shows at every piece (src/common/pipelining.ts). */
const PIECE_BYTES = 64 * 1024;

/** `bytes` as a stream of 64 kB views of it: no copy, and every answer shares the one buffer. */
function inPieces(bytes: Buffer): Readable {
  const pieces: Buffer[] = [];
  for (let offset = 0; offset < bytes.length; offset += PIECE_BYTES) {
    pieces.push(bytes.subarray(offset, offset + PIECE_BYTES));
  }
  return Readable.from(pieces);
}

/**
 * The document is fixed once the app is built, so it is built and encoded once, on first request,
 * into bytes every answer shares (an answer a slow client has not taken yet holds no copy).
 * @nestjs/swagger's own routes would serialize it on every request: 10 ms for the JSON and 75-135 ms
 * of blocked event loop for the YAML (measured), which any anonymous client could ask for in a loop.
 */
function setUpOpenApi(app: NestFastifyApplication): void {
  let document: OpenAPIObject | undefined;
  const built = () => (document ??= buildOpenApiDocument(app));
  let json: Buffer | undefined;
  let yaml: Promise<Buffer> | undefined;
  const fastify: FastifyInstance = app.getHttpAdapter().getInstance();
  fastify.get('/docs/openapi.json', (_request, reply) => {
    json ??= Buffer.from(JSON.stringify(built()));
    void reply.type('application/json; charset=utf-8').send(inPieces(json));
  });
  fastify.get('/docs/openapi.yaml', async (_request, reply) => {
    // Loaded on first use (the YAML writer is not worth its place in every boot), and written once even
    // when the first requests come together.
    yaml ??= import('yaml').then(({ stringify }) =>
      Buffer.from(stringify(built(), { aliasDuplicateObjects: false })),
    );
    return reply.type('text/yaml; charset=utf-8').send(inPieces(await yaml));
  });
  // Swagger UI's script (swagger-ui-init.js, 504 kB: it embeds the whole document) is kept by
  // @nestjs/swagger as a string, which Node joins to the headers into a new string for every answer: 100
  // clients that did not read it put the 128 MB heap out of memory. Sent as bytes encoded once instead.
  const sendAsBytes = (): onSendHookHandler => {
    let script: { text: string; bytes: Buffer } | undefined;
    return (_request, reply, payload, done) => {
      if (typeof payload !== 'string') {
        done(null, payload);
        return;
      }
      if (script?.text !== payload) {
        script = { text: payload, bytes: Buffer.from(payload) };
      }
      void reply.type('application/javascript; charset=utf-8');
      done(null, inPieces(script.bytes));
    };
  };
  fastify.addHook('onRoute', (route) => {
    if (route.url.startsWith('/docs/') && route.url.endsWith('/swagger-ui-init.js')) {
      route.onSend = [route.onSend ?? []].flat().concat(sendAsBytes());
    }
  });
  SwaggerModule.setup('docs', app, built, {
    raw: false,
    swaggerOptions: { persistAuthorization: true, displayRequestDuration: true, tagsSorter: 'alpha' },
    customSiteTitle: 'Gatehouse API',
  });
}
