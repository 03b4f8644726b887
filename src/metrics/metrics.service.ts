import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { DataSource } from 'typeorm';
import type { BodyBudget, BodyBudgetRefusal } from '../common/body-budget.js';
import { DROPPED_CONNECTION_REASONS, type DroppedConnection } from '../common/pipelining.js';
import { MailService } from '../mail/mail.service.js';

type OutboxStats = Awaited<ReturnType<MailService['outboxStats']>>;

/** The parts of mysql2's Pool read or wrapped here (internals: mysql2 exposes no pool statistics). */
interface MysqlPool {
  _allConnections?: { length: number };
  _freeConnections?: { length: number };
  _connectionQueue?: { length: number };
  getConnection?: (callback: (error: unknown, connection: unknown) => void) => void;
}

/** How a login attempt ended; the auth code reports each one through MetricsService.loginAttempt. */
export const LOGIN_OUTCOMES = [
  'success',
  'invalid_credentials',
  'email_not_verified',
  'account_disabled',
  'locked',
  'throttled',
] as const;
export type LoginOutcome = (typeof LOGIN_OUTCOMES)[number];

/** Label of requests that matched no route: one series for all of them, never the raw URL. */
const UNMATCHED_ROUTE = '(unmatched)';

/**
 * Prometheus metrics for /metrics. Each app owns its Registry (never prom-client's global one), so
 * several apps in one process (the e2e suite) keep separate counts. Series:
 *
 * - `gatehouse_http_request_duration_seconds{method,route,status}` histogram; `route` is the route
 *   template (`/api/v1/todos/:id`), so ids never explode the label set;
 * - `gatehouse_login_attempts_total{outcome}` — call `loginAttempt(outcome)` once per login;
 * - `gatehouse_throttle_hits_total{route}` — call `throttleHit(route)` on every 429 from a throttle;
 * - `gatehouse_request_body_bytes_in_flight` (read at scrape time) and
 *   `gatehouse_request_bodies_refused_total{budget="client"|"total"}`: the body budget
 *   (src/common/body-budget.ts);
 * - `gatehouse_connections_dropped_total{reason="pipeline_overflow"|"pipelined_body"|"response_stalled"}`:
 *   connections closed early by src/common/pipelining.ts;
 * - `gatehouse_mail_outbox_messages{status="pending"|"dead"}`, read at scrape time; absent while
 *   the database cannot be read (a stale number would hide the outage);
 * - `gatehouse_database_up` 1 when the scrape could read the database, else 0;
 * - `gatehouse_db_pool_connections_in_use`, read at scrape time (best effort);
 * - `gatehouse_db_pool_waiting` (queries queued for a free connection, at scrape time) and
 *   `gatehouse_db_pool_acquire_seconds` histogram (how long each checkout waited), MySQL only;
 * - Node's process metrics (`process_*`, `nodejs_*`; `nodejs_eventloop_lag_p99_seconds` covers the
 *   interval since the previous scrape).
 */
@Injectable()
export class MetricsService {
  readonly registry = new Registry();

  private readonly requestDuration = new Histogram({
    name: 'gatehouse_http_request_duration_seconds',
    help: 'HTTP request duration by route template and status code',
    labelNames: ['method', 'route', 'status'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });

  private readonly logins = new Counter({
    name: 'gatehouse_login_attempts_total',
    help: 'Login attempts by outcome',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });

  private readonly throttleHits = new Counter({
    name: 'gatehouse_throttle_hits_total',
    help: 'Requests refused with 429 by a rate limit, by route template',
    labelNames: ['route'] as const,
    registers: [this.registry],
  });

  private readonly bodyRefusals = new Counter({
    name: 'gatehouse_request_bodies_refused_total',
    help: 'Request bodies refused unread because their client (429) or the server (503) was at its body budget',
    labelNames: ['budget'] as const,
    registers: [this.registry],
  });

  private readonly droppedConnections = new Counter({
    name: 'gatehouse_connections_dropped_total',
    help: 'Connections closed early: too many pipelined requests, a pipelined request with a body behind an answer still being prepared, or an answer not taken within REQUEST_TIMEOUT',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });

  /** The database reads of the scrape in progress, shared by the gauges that report them. */
  private databaseRead: Promise<OutboxStats | null> = Promise.resolve(null);

  constructor(
    private readonly mail: MailService,
    @InjectDataSource() private readonly dataSource: DataSource,
  ) {
    for (const outcome of LOGIN_OUTCOMES) {
      // Every outcome is exported from the start (at 0), so rate() and alerts see the series.
      this.logins.inc({ outcome }, 0);
    }
    for (const budget of ['client', 'total'] as const) {
      this.bodyRefusals.inc({ budget }, 0);
    }
    for (const reason of DROPPED_CONNECTION_REASONS) {
      this.droppedConnections.inc({ reason }, 0);
    }
    const outboxGauge = new Gauge({
      name: 'gatehouse_mail_outbox_messages',
      help: 'Mail outbox rows waiting to be sent (pending) or given up on (dead)',
      labelNames: ['status'] as const,
      registers: [this.registry],
      collect: async () => {
        const stats = await this.databaseRead;
        outboxGauge.reset();
        if (stats) {
          outboxGauge.set({ status: 'pending' }, stats.pending);
          outboxGauge.set({ status: 'dead' }, stats.dead);
        }
      },
    });
    const databaseUp = new Gauge({
      name: 'gatehouse_database_up',
      help: 'Whether this scrape could read the database (1) or not (0)',
      registers: [this.registry],
      collect: async () => {
        databaseUp.set((await this.databaseRead) ? 1 : 0);
      },
    });
    const poolGauge = new Gauge({
      name: 'gatehouse_db_pool_connections_in_use',
      help: 'Database connections currently checked out of the pool',
      registers: [this.registry],
      collect: () => {
        poolGauge.set(this.connectionsInUse());
      },
    });
    const waitingGauge = new Gauge({
      name: 'gatehouse_db_pool_waiting',
      help: 'Queries waiting for a free database connection (MySQL pool queue)',
      registers: [this.registry],
      collect: () => {
        waitingGauge.set(this.pool()?._connectionQueue?.length ?? 0);
      },
    });
    this.timePoolCheckouts();
    collectDefaultMetrics({ register: this.registry });
  }

  private readonly poolAcquire = new Histogram({
    name: 'gatehouse_db_pool_acquire_seconds',
    help: 'Time a query waited to check a connection out of the MySQL pool',
    buckets: [0.0005, 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [this.registry],
  });

  /** Counts one login attempt. */
  loginAttempt(outcome: LoginOutcome): void {
    this.logins.inc({ outcome });
  }

  /** Counts one request refused by a throttle; pass the route template, never the raw URL. */
  throttleHit(route: string): void {
    this.throttleHits.inc({ route });
  }

  /** Exports the bytes of request bodies being received, read from `budget` at each scrape. */
  watchBodyBudget(budget: BodyBudget): void {
    const gauge = new Gauge({
      name: 'gatehouse_request_body_bytes_in_flight',
      help: 'Bytes reserved by request bodies being received (declared lengths), against BODY_BUDGET',
      registers: [this.registry],
      collect: () => {
        gauge.set(budget.held());
      },
    });
  }

  /** Counts one body refused by the body budget. */
  bodyRefused(budget: BodyBudgetRefusal): void {
    this.bodyRefusals.inc({ budget });
  }

  /** Counts one connection closed by src/common/pipelining.ts. */
  connectionDropped(reason: DroppedConnection): void {
    this.droppedConnections.inc({ reason });
  }

  /** The Prometheus text exposition of every series. */
  render(): Promise<string> {
    // Read once per scrape; a database out of reach leaves its gauges out, never fails the scrape.
    this.databaseRead = this.mail.outboxStats().catch(() => null);
    return this.registry.metrics();
  }

  get contentType(): string {
    return this.registry.contentType;
  }

  /**
   * Times every response, errors and 404s included (a Nest interceptor would miss requests refused by
   * guards or unmatched routes). Called once by createApp, before the routes are registered.
   */
  instrument(fastify: FastifyInstance): void {
    fastify.addHook('onResponse', (request, reply, done) => {
      this.requestAnswered(request, reply);
      done();
    });
  }

  /** Times one answer; instrument() calls it for every request that reaches a route's hooks. */
  requestAnswered(request: FastifyRequest, reply: FastifyReply): void {
    this.requestDuration.observe(
      {
        method: request.method,
        route: request.routeOptions.url ?? UNMATCHED_ROUTE,
        status: String(reply.statusCode),
      },
      reply.elapsedTime / 1000,
    );
  }

  /** mysql2's pool behind TypeORM's MySQL driver; undefined on SQLite. */
  private pool(): MysqlPool | undefined {
    return (this.dataSource.driver as unknown as { pool?: MysqlPool }).pool;
  }

  /**
   * Pool wait, the time between asking for a connection and getting one, which no driver reports:
   * TypeORM checks every connection out through pool.getConnection(callback), timed here.
   */
  private timePoolCheckouts(): void {
    const pool = this.pool();
    if (typeof pool?.getConnection !== 'function') {
      return;
    }
    const checkOut = pool.getConnection.bind(pool);
    pool.getConnection = (callback) => {
      const started = performance.now();
      checkOut((error, connection) => {
        this.poolAcquire.observe((performance.now() - started) / 1000);
        callback(error, connection);
      });
    };
  }

  /**
   * mysql2 keeps no public counter, so its pool internals are read (all minus free connections).
   * SQLite has one connection: 1 while a transaction holds it, else 0.
   */
  private connectionsInUse(): number {
    const driver = this.dataSource.driver as unknown as { databaseConnection?: { inTransaction?: boolean } };
    const pool = this.pool();
    if (pool?._allConnections && pool._freeConnections) {
      return Math.max(0, pool._allConnections.length - pool._freeConnections.length);
    }
    return driver.databaseConnection?.inTransaction ? 1 : 0;
  }
}
