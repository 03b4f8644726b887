import type { IncomingHttpHeaders, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { FastifyInstance } from 'fastify';
import { clientKey } from './client-key.js';
import { PROBLEM_CONTENT_TYPE, problem } from './problem.js';

export interface BodyBudgetLimits {
  /** BODY_LIMIT: the most one body may hold. */
  bodyLimit: number;
  /** BODY_BUDGET: the most all bodies being received may hold together. */
  total: number;
  /** BODY_BUDGET_PER_CLIENT: the most one client's bodies may hold together. */
  perClient: number;
}

/** Which budget a refused body would have gone over: its client's (429) or the server's (503). */
export type BodyBudgetRefusal = 'client' | 'total';

/**
 * What a request's body may hold while it is received: its declared Content-Length (Fastify refuses
 * a longer one with 413 before reading it), BODY_LIMIT when it is chunked, nothing without a body.
 */
export function declaredBodySize(headers: IncomingHttpHeaders, bodyLimit: number): number {
  const length = headers['content-length'];
  if (length !== undefined) {
    const bytes = Number(length);
    return Number.isSafeInteger(bytes) && bytes >= 0 ? Math.min(bytes, bodyLimit) : bodyLimit;
  }
  return headers['transfer-encoding'] === undefined ? 0 : bodyLimit;
}

/** Whether a request says a body follows it (a Content-Length other than 0, or a Transfer-Encoding). */
export function declaresBody(headers: IncomingHttpHeaders): boolean {
  return declaredBodySize(headers, 1) > 0;
}

/** Set on the response of a request whose client waits for `100 Continue` before it sends its body. */
const AWAITS_CONTINUE = Symbol('gatehouse.awaitsContinue');
type ContinuableResponse = ServerResponse & { [AWAITS_CONTINUE]?: true };

/**
 * Lets the app decide when a client that sent `Expect: 100-continue` may send its body. Without a
 * `checkContinue` listener Node answers `100 Continue` as soon as the headers arrive, so a client told
 * 429, 503 or 413 a moment later has already started uploading the body it was refused (curl sends up
 * to 1 MB more). With it, the request reaches the app's request listener like any other, and
 * registerBodyBudget asks for the body only once it is admitted and Fastify starts reading it. A
 * request answered without the `100 Continue` has its connection closed after the answer (Node does
 * that), so its unsent body is never mistaken for the next request.
 * Node raises this only for HTTP/1.1: an HTTP/1.0 client is never sent a 1xx (RFC 9110 §15.2).
 * Other expectations are ignored, as RFC 9110 §10.1.1 allows, rather than answered with Node's bare 417.
 */
function deferContinue(server: Pick<Server, 'on' | 'emit'>): void {
  server.on('checkContinue', (request: IncomingMessage, response: ContinuableResponse) => {
    if (declaresBody(request.headers)) {
      response[AWAITS_CONTINUE] = true;
    } else {
      // Nothing to wait for; answered without a 100, the connection would close.
      response.writeContinue();
    }
    server.emit('request', request, response);
  });
  server.on('checkExpectation', (request: IncomingMessage, response: ServerResponse) => {
    server.emit('request', request, response);
  });
}

/**
 * Sends the `100 Continue` a request is waiting for once something starts reading its body: Fastify
 * does that only for a media type it has a parser for and a declared length within the route's
 * body limit. A 415 or 413 is sent first, so the client never starts the body it was refused. Node
 * resumes an unread request itself once the answer is sent; the 100 is too late by then.
 */
function askForBodyWhenRead(request: IncomingMessage, response: ContinuableResponse): void {
  if (response[AWAITS_CONTINUE] === true) {
    request.once('resume', () => {
      if (!response.headersSent) {
        response.writeContinue();
      }
    });
  }
}

/**
 * The bytes of request bodies being received, in total and per client (DESIGN §5 "Bounded by
 * design"). Fastify holds a body in memory until the last byte arrives, before any guard runs, so
 * without a budget a thousand clients that send most of a body and stall fill the process
 * (REQUEST_TIMEOUT frees them, but only after it has passed).
 */
export class BodyBudget {
  private total = 0;
  private readonly byClient = new Map<string, number>();

  constructor(private readonly limits: Pick<BodyBudgetLimits, 'total' | 'perClient'>) {}

  /** Reserves `bytes` for `client`, or says which budget it would exceed. */
  take(client: string, bytes: number): BodyBudgetRefusal | undefined {
    const held = this.byClient.get(client) ?? 0;
    if (held + bytes > this.limits.perClient) {
      return 'client';
    }
    if (this.total + bytes > this.limits.total) {
      return 'total';
    }
    this.byClient.set(client, held + bytes);
    this.total += bytes;
    return undefined;
  }

  /** Returns what `take` reserved. */
  give(client: string, bytes: number): void {
    const held = (this.byClient.get(client) ?? 0) - bytes;
    if (held > 0) {
      this.byClient.set(client, held);
    } else {
      this.byClient.delete(client);
    }
    this.total -= bytes;
  }

  /** Bytes reserved now, in total and by `client`. */
  held(client?: string): number {
    return client === undefined ? this.total : (this.byClient.get(client) ?? 0);
  }
}

const REFUSALS = {
  client: {
    status: 429,
    code: 'TOO_MANY_BODIES',
    detail: 'This client is already sending as many request bodies as it may at once; finish those first.',
  },
  total: {
    status: 503,
    code: 'SERVER_BUSY',
    detail: 'The server is receiving as many request bodies as it can hold; try again shortly.',
  },
} as const;

/**
 * Checks each body against the budget before Fastify reads it (`preParsing`), and returns it when the
 * body is in or the connection goes. A refused request is answered at once, its body unread; an
 * admitted one that waits for `100 Continue` (deferContinue) gets it when its body is read.
 */
export function registerBodyBudget(
  fastify: FastifyInstance,
  limits: BodyBudgetLimits,
  onRefused: (budget: BodyBudgetRefusal) => void = () => undefined,
): BodyBudget {
  const budget = new BodyBudget(limits);
  deferContinue(fastify.server);
  fastify.addHook('preParsing', (request, reply, payload, done) => {
    const bytes = declaredBodySize(request.headers, limits.bodyLimit);
    // Fastify never reads a GET's or HEAD's body: Node discards it once the answer is sent, holding
    // no more of it than the socket's buffer meanwhile.
    if (bytes === 0 || request.method === 'GET' || request.method === 'HEAD') {
      done(null, payload);
      return;
    }
    const client = clientKey(request.ip);
    const refused = budget.take(client, bytes);
    if (refused !== undefined) {
      onRefused(refused);
      const { status, code, detail } = REFUSALS[refused];
      // Its connection closes after the answer, as every answer's whose body has not all arrived
      // does (closesUnfinished in the onSend hook): the rest of that body is taken and dropped for
      // LINGER_MS at most, never read into memory.
      void reply
        .code(status)
        .header('retry-after', '1')
        .type(PROBLEM_CONTENT_TYPE)
        .send(problem(status, code, detail, String(request.id)));
      return;
    }
    // Returned once the body is in (the request's 'close' follows its 'end'), or once the request or
    // its response is closed, whichever comes first. Neither alone is enough: a response queued behind
    // another on a pipelined connection is never closed when the connection dies, and a client that
    // stops reading its answers would keep the reservation for as long as it likes.
    let held = true;
    const giveBack = () => {
      if (held) {
        held = false;
        budget.give(client, bytes);
      }
    };
    request.raw.once('close', giveBack);
    reply.raw.once('close', giveBack);
    askForBodyWhenRead(request.raw, reply.raw);
    done(null, payload);
  });
  return budget;
}
