import type { Server } from 'node:http';
import type { Server as NetServer } from 'node:net';
import { Injectable, Logger, type OnApplicationShutdown } from '@nestjs/common';
import { ConfigService } from '@nestjs/config';
import { FastifyAdapter } from '@nestjs/platform-fastify';
import type { FastifyServerOptions } from 'fastify';
import type { Config } from '../config/config.js';

/**
 * The process's stop (DESIGN §8), shared by everything that drains on SIGTERM, so that one
 * SHUTDOWN_GRACE bounds them all: the HTTP server (GracefulFastifyAdapter) and the outbox worker start
 * draining at the same moment and give up at the same deadline, rather than one grace after another.
 */
@Injectable()
export class Shutdown implements OnApplicationShutdown {
  readonly graceMs: number;
  private deadline?: number;
  private startedAt = 0;
  private readonly listeners: Array<() => void> = [];

  constructor(config: ConfigService<Config, true>) {
    this.graceMs = config.getOrThrow('app', { infer: true }).shutdownGraceMs;
  }

  get started(): boolean {
    return this.deadline !== undefined;
  }

  /** Starts the grace; later calls change nothing. */
  begin(): void {
    if (this.deadline !== undefined) {
      return;
    }
    this.startedAt = Date.now();
    this.deadline = this.startedAt + this.graceMs;
    this.listeners.splice(0).forEach((listener) => listener());
  }

  /** Runs `listener` when the stop begins (at once if it has). */
  onBegin(listener: () => void): void {
    if (this.started) {
      listener();
    } else {
      this.listeners.push(listener);
    }
  }

  onApplicationShutdown(signal?: string): void {
    if (this.started) {
      new Logger('Shutdown').log(`Stopped ${Date.now() - this.startedAt} ms after ${signal ?? 'close()'}`);
    }
  }

  /** What is left of the grace (all of it before the stop begins). */
  remainingMs(): number {
    return this.deadline === undefined ? this.graceMs : Math.max(0, this.deadline - Date.now());
  }
}

/** How long a kept-alive connection may stay idle once the stop begins (a request may be on its way). */
const IDLE_WINDOW_MS = 1000;

/**
 * Nest's FastifyAdapter, closing in the order a load balancer needs. Nest's own order runs the
 * modules' destroy hooks (the outbox worker's drain among them) while the server still accepts
 * connections, and then waits for in-flight requests without a bound. Here the first step of the stop
 * (Nest calls beforeClose() before any hook) closes the listening sockets at once (new connections are
 * refused; requests arriving on kept-alive ones are answered with `Connection: close`, which the app
 * factory asks for by turning Fastify's return503OnClosing off), lets the requests in flight finish,
 * and after SHUTDOWN_GRACE closes the connections of those still running.
 * Only then do the hooks close the worker and the pools: no request ever finds its database gone.
 */
export class GracefulFastifyAdapter extends FastifyAdapter {
  private draining?: Promise<void>;
  /** Listening sockets on localhost's other addresses (src/common/listen.ts). */
  private readonly relays: NetServer[] = [];
  /** Called once, as the stop begins; createApp points it at Shutdown.begin(). */
  onStop?: () => void;

  constructor(
    options: FastifyServerOptions,
    private readonly graceMs: number,
  ) {
    super(options);
    // Once the stop begins, every answer closes its connection, those of requests already in flight
    // too (Fastify marks only requests that arrive after): no client sends another request on it that
    // could meet the close of idle connections below.
    // Callback-style, like the app's other per-request hooks: an async hook costs a promise and its
    // microtasks on every reply.
    this.getInstance().addHook('onSend', (_request, reply, payload, done) => {
      if (this.draining) {
        void reply.header('connection', 'close');
      }
      done(null, payload);
    });
  }

  // Typed void in AbstractHttpAdapter, but Nest awaits it (NestApplication.prepareClose), and the
  // hooks that close the worker and the pools must wait for the drain.
  // eslint-disable-next-line @typescript-eslint/no-misused-promises
  override beforeClose(): Promise<void> {
    super.beforeClose();
    return this.drain();
  }

  override close(): Promise<void> {
    return this.drain();
  }

  /**
   * Closes `relay` (a listener on another address of localhost, src/common/listen.ts) with the
   * server, and waits in the stop for the connections it accepted: they are the server's to answer,
   * but the server's own close() waits only for the connections it accepted itself. A relay that
   * comes once the stop has begun is closed at once.
   */
  relay(relay: NetServer): void {
    if (this.draining) {
      relay.close();
    } else {
      this.relays.push(relay);
    }
  }

  private drain(): Promise<void> {
    this.draining ??= (async () => {
      this.onStop?.();
      const logger = new Logger('Shutdown');
      const started = Date.now();
      const server: Server | undefined = this.getHttpServer();
      const listening = server?.listening === true;
      if (listening) {
        logger.log(`Stopping: new connections are refused; requests in flight have ${this.graceMs} ms`);
      }
      // Node's server.close() also closes every connection it deems idle, among them kept-alive ones
      // a request is arriving on and new ones whose first bytes are not read yet: those clients would
      // get a reset and no answer. So idle connections get IDLE_WINDOW_MS to send their next request
      // (answered in full, with Connection: close) before they are closed.
      const closeIdle = server?.closeIdleConnections.bind(server);
      if (server && closeIdle) {
        server.closeIdleConnections = () => undefined;
      }
      const idleTimer = setTimeout(() => closeIdle?.(), Math.min(IDLE_WINDOW_MS, this.graceMs));
      let cut = false;
      // Past the grace, whatever is still running loses its connection; the promise below settles then.
      const graceTimer = setTimeout(() => {
        cut = true;
        server?.closeAllConnections();
      }, this.graceMs);
      const relaysClosed = this.relays.map((relay) => new Promise((done) => relay.close(done)));
      try {
        await Promise.all([super.close(), ...relaysClosed]);
      } finally {
        clearTimeout(idleTimer);
        clearTimeout(graceTimer);
      }
      if (listening) {
        const how = cut
          ? 'SHUTDOWN_GRACE ran out; the connections still busy were closed'
          : 'every request answered';
        logger.log(`HTTP server closed after ${Date.now() - started} ms: ${how}`);
      }
    })();
    return this.draining;
  }
}
