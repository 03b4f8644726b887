import 'reflect-metadata';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import type { Type } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { Test, type TestingModuleBuilder } from '@nestjs/testing';
import { getDataSourceToken } from '@nestjs/typeorm';
import type { DataSource } from 'typeorm';
import { ensureRootLogger, resetRootLogger } from './pino-root-logger.js';
import { createApp } from '../../src/app.factory.js';
import { listen, type ResolveHost } from '../../src/common/listen.js';
import { createAppLogger, loggerParams } from '../../src/common/logging.js';
import type { Config } from '../../src/config/config.js';
import { validateConfig } from '../../src/config/config.module.js';
import type { Feature } from '../../src/database/schema.js';
import { createThrowawayDatabase, type ThrowawayDatabase } from './database.js';
import { type OpenApiDocument, OpenApiResponseValidator } from './openapi-validator.js';

export interface ApiResponse<T = any> {
  status: number;
  headers: Headers;
  body: T;
  text: string;
}

export interface RequestOptions {
  method?: string;
  body?: unknown;
  /** Sent as is, without JSON encoding (for malformed-body tests). */
  rawBody?: string | Buffer;
  token?: string;
  headers?: Record<string, string>;
  /**
   * Skip the OpenAPI response check: only for requests that break the protocol on purpose (a
   * malformed request line the document cannot describe). Every other response is validated.
   */
  unvalidated?: true;
}

export interface StartOptions {
  /** Rewrites the throwaway database's URL the app connects with (e.g. through a TcpProxy). */
  mapDatabaseUrl?: (url: string) => string;
  /**
   * Run on this database instead of a new one, and leave it in place on close(): for tests with two
   * app instances on one database, or a restart. The caller creates it and drops it.
   */
  database?: ThrowawayDatabase;
  /** Features beyond the app's own (their modules, tables and migrations): a team's extension, say. */
  features?: readonly Feature[];
  /**
   * Replaces providers the way a team extending Gatehouse would, e.g.
   * `(app) => app.overrideProvider(MailSender).useValue(capture)`. The app is otherwise the real one.
   */
  override?: (builder: TestingModuleBuilder) => TestingModuleBuilder;
  /** Where the app listens (127.0.0.1 by default), and how a name there resolves. */
  host?: { name: string; resolve?: ResolveHost };
}

/** The real application on a real port with a database of its own; what the e2e tests talk to. */
export class TestApp {
  private constructor(
    readonly app: NestFastifyApplication,
    readonly url: string,
    readonly config: Config,
    readonly logs: string[],
    private readonly database: ThrowawayDatabase | undefined,
    private readonly scratch: string,
  ) {}

  private validator?: Promise<OpenApiResponseValidator>;

  /** The app's own served document (a test app with extra features serves a bigger one), fetched once. */
  private responseValidator(): Promise<OpenApiResponseValidator> {
    this.validator ??= fetch(`${this.url}/docs/openapi.json`).then(async (response) => {
      if (response.status !== 200) {
        throw new Error(`/docs/openapi.json answered ${response.status}`);
      }
      return new OpenApiResponseValidator((await response.json()) as OpenApiDocument);
    });
    return this.validator;
  }

  static async start(
    env: Record<string, string> = {},
    extraModules: Type[] = [],
    options: StartOptions = {},
  ): Promise<TestApp> {
    const database = options.database ?? (await createThrowawayDatabase());
    const scratch = mkdtempSync(join(tmpdir(), 'gatehouse-e2e-'));
    // The app's own ConfigModule validates this record; process.env plays no part.
    const config = await validateConfig({
      NODE_ENV: 'test',
      DATABASE_URL: options.mapDatabaseUrl ? options.mapDatabaseUrl(database.url) : database.url,
      APP_PUBLIC_URL: 'http://gatehouse.test',
      BCRYPT_COST: '4',
      LOG_LEVEL: 'info',
      MAIL_DIR: join(scratch, 'mail'),
      DB_POOL_SIZE: '5',
      ...env,
    });
    const logs: string[] = [];
    const logDestination = new Writable({
      write(chunk: Buffer, _encoding, callback) {
        logs.push(chunk.toString('utf8'));
        callback();
      },
    });
    // The newest app owns the process-wide root logger (older apps still open log there too).
    const logger = createAppLogger(config.values.app, logDestination);
    resetRootLogger();
    ensureRootLogger(loggerParams(logger).pinoHttp);
    const { override } = options;
    const app = await createApp({
      config,
      logger,
      extraModules,
      extraFeatures: options.features,
      instantiate: override
        ? async (root, adapter, appOptions) => {
            const moduleRef = await override(Test.createTestingModule({ imports: [root] })).compile();
            return moduleRef.createNestApplication<NestFastifyApplication>(adapter, appOptions);
          }
        : undefined,
    });
    await listen(app, 0, options.host?.name ?? '127.0.0.1', options.host?.resolve);
    const address = app.getHttpServer().address();
    const port = typeof address === 'object' && address ? address.port : 0;
    const owned = options.database ? undefined : database;
    const testApp = new TestApp(app, `http://127.0.0.1:${port}`, config.values, logs, owned, scratch);
    // Fetched now, so building the document never lands inside a test's timing or concurrency.
    await testApp.responseValidator();
    return testApp;
  }

  get dataSource(): DataSource {
    return this.app.get<DataSource>(getDataSourceToken());
  }

  async request<T = any>(path: string, options: RequestOptions = {}): Promise<ApiResponse<T>> {
    const headers: Record<string, string> = { ...options.headers };
    let body: string | Buffer | undefined;
    if (options.rawBody !== undefined) {
      body = options.rawBody;
    } else if (options.body !== undefined) {
      body = JSON.stringify(options.body);
      headers['content-type'] ??= 'application/json';
    }
    if (options.token) {
      headers.authorization = `Bearer ${options.token}`;
    }
    const response = await fetch(`${this.url}${path}`, { method: options.method ?? 'GET', headers, body });
    const text = await response.text();
    let parsed: unknown = text;
    if ((response.headers.get('content-type') ?? '').includes('json') && text.length > 0) {
      parsed = JSON.parse(text);
    }
    if (!options.unvalidated) {
      const method = options.method ?? 'GET';
      (await this.responseValidator()).check({
        method,
        url: path,
        status: response.status,
        headers: response.headers,
        text,
        body: parsed,
      });
    }
    return { status: response.status, headers: response.headers, body: parsed as T, text };
  }

  /**
   * Checks a response some other HTTP client got from this app (the typed client, say) against the
   * app's document, as `request()` does for its own.
   */
  async checkResponse(method: string, url: string, response: Response): Promise<void> {
    const copy = response.clone();
    const text = await copy.text();
    const json = (copy.headers.get('content-type') ?? '').includes('json') && text.length > 0;
    const { pathname, search } = new URL(url, this.url);
    (await this.responseValidator()).check({
      method,
      url: `${pathname}${search}`,
      status: copy.status,
      headers: copy.headers,
      text,
      body: json ? JSON.parse(text) : text,
    });
  }

  async close(): Promise<void> {
    if (this.validator) {
      (await this.validator).record();
    }
    await this.app.close();
    await this.database?.drop();
    rmSync(this.scratch, { recursive: true, force: true });
  }
}
