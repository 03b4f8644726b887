import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { declaresBody } from './body-budget.js';
import { checkingInterval } from './client-errors.js';

/**
 * How many pipelined requests one connection may have waiting behind the one being answered. HTTP/1.1
 * clients that pipeline at all (browsers and the common libraries do not) send a few; a connection
 * with more waiting is closed.
 */
export const PIPELINE_DEPTH = 16;

/**
 * Why a connection was closed early: too many pipelined requests, a pipelined request with a body
 * (closed once the answer ahead of it is sent), or an answer not taken within REQUEST_TIMEOUT.
 */
export const DROPPED_CONNECTION_REASONS = [
  'pipeline_overflow',
  'pipelined_body',
  'response_stalled',
] as const;
export type DroppedConnection = (typeof DROPPED_CONNECTION_REASONS)[number];

type RequestListener = (req: IncomingMessage, res: ServerResponse) => void;

interface Line {
  /** The response of the request being handled now, until it closes. */
  current: ServerResponse | undefined;
  /** Requests that arrived behind it, handled one at a time in order. */
  waiting: Array<[IncomingMessage, ServerResponse]>;
  /** Set when the connection is to end once the current answer is sent: nothing more is handled. */
  ending: boolean;
  /** Bytes the socket had finished writing at the last check, and since when that has not moved. */
  flushed: number;
  stuckSince: number;
}

const LINE = Symbol('gatehouse.pipeline');
type LinedSocket = Socket & { [LINE]?: Line };

/**
 * Whether the answer being handled has been given in full (ended, and written through to the
 * socket) with nothing waiting behind it: a request arriving now is next, at once.
 */
function answeredInFull(line: Line, socket: Socket): boolean {
  return line.current?.writableEnded === true && socket.writableLength === 0 && line.waiting.length === 0;
}

/** What serveInOrder leaves to its caller: the stall check (run on its own interval) and its state. */
export interface InOrder {
  /** Closes the connections whose answer has not moved for the stall limit, as of `now`. */
  check(now?: number): void;
  /** Connections with a request being handled. */
  busyConnections(): number;
  /** Stops the interval (the server's 'close' does too). */
  stop(): void;
}

/**
 * Node's HTTP server hands the application every request of a pipelined batch at once, and queues
 * their answers in memory behind the first: one write of 500 `GET /docs/openapi.json`, from a client
 * that never reads, ran 500 handlers and put the app (with the image's 128 MB heap) out of memory
 * within a second (measured, 2026-12-07). Here a connection's requests are handled one at a time, the
 * next once the previous answer has left for the socket, so a client that does not read holds one
 * answer, not thousands; a connection with more than PIPELINE_DEPTH requests waiting is closed; and a
 * pipelined request with a body is not run while the answer ahead is being prepared: its body would wait
 * unread in the socket, outside the body budget, until Node's REQUEST_TIMEOUT cut it. The answer ahead
 * says `Connection: close` when it has not started, the connection ends once it is sent, and a
 * pipelining client retries the rest (RFC 9112 §9.3.2). Behind an answer already given in full, with
 * nothing waiting (a 404 or a preflight, answered at once), a request with a body is next like any other.
 *
 * Once an answer has started, its client must make progress taking it: a connection whose socket has
 * finished no write for `stallMs` (REQUEST_TIMEOUT) while answer bytes wait is closed. Checked on an
 * interval, by bytes written: a socket timeout would restart on bytes read, and a client that sends a
 * blank line now and then would keep its unread answer for ever. The clock starts at the answer, not
 * the request, so a sign-in waiting for its bcrypt turn under load is never cut. The grain is one
 * finished write (the large documents are sent in 64 kB pieces, src/app.factory.ts).
 *
 * It wraps the server's 'request' listener (Fastify's) rather than using Fastify's `serverFactory`,
 * which would leave the server's timeouts and the closing of idle connections to this code too. An
 * 'upgrade' listener (none today) would bypass it.
 */
export function serveInOrder(
  server: Server,
  stallMs: number,
  onDropped: (why: DroppedConnection) => void,
): InOrder {
  const listeners = server.listeners('request') as RequestListener[];
  if (listeners.length !== 1) {
    throw new Error(`Expected Fastify's one request listener, found ${listeners.length}`);
  }
  const [handle] = listeners;
  server.removeListener('request', handle);
  /** Sockets with a request being handled: the ones the stall check looks at. */
  const busy = new Set<LinedSocket>();

  const dispatch = (socket: LinedSocket, line: Line, req: IncomingMessage, res: ServerResponse) => {
    line.current = res;
    busy.add(socket);
    // 'close' follows 'finish', and comes when the connection dies while this response holds it. A
    // response still queued behind another (Node's own 400 or 417) never closes: the socket's 'close'
    // below covers that.
    res.once('close', () => next(socket, line));
    handle(req, res);
  };
  const next = (socket: LinedSocket, line: Line) => {
    line.current = undefined;
    line.stuckSince = 0;
    busy.delete(socket);
    // An answer that closed the connection (Connection: close, as every answer while the server
    // drains) leaves nothing to answer the rest on.
    if (line.ending || socket.destroyed || socket.writableEnded) {
      line.waiting.length = 0;
      if (line.ending) {
        socket.destroySoon();
      }
      return;
    }
    const waiting = line.waiting.shift();
    if (waiting !== undefined) {
      dispatch(socket, line, ...waiting);
    }
  };
  const lineOf = (socket: LinedSocket): Line => {
    let line = socket[LINE];
    if (line === undefined) {
      const created: Line = { current: undefined, waiting: [], ending: false, flushed: 0, stuckSince: 0 };
      line = socket[LINE] = created;
      socket.once('close', () => {
        busy.delete(socket);
        created.current = undefined;
        created.waiting.length = 0;
      });
    }
    return line;
  };

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket as LinedSocket;
    // A connection whose side has ended (closed after an answer, lingering while the client finishes
    // a refused body: closesUnfinished) takes no more requests: one parsed there is not run.
    if (socket.destroyed || socket.writableEnded) {
      return;
    }
    const line = lineOf(socket);
    if (line.ending) {
      return;
    }
    if (line.current === undefined) {
      dispatch(socket, line, req, res);
    } else if (declaresBody(req.headers) && !answeredInFull(line, socket)) {
      onDropped('pipelined_body');
      line.ending = true;
      line.waiting.length = 0;
      // The answer ahead says so, unless it has started (a streamed document).
      if (!line.current.headersSent) {
        line.current.setHeader('connection', 'close');
      }
    } else if (line.waiting.length < PIPELINE_DEPTH) {
      line.waiting.push([req, res]);
    } else {
      onDropped('pipeline_overflow');
      line.waiting.length = 0;
      socket.destroy();
    }
  });

  let closed = false;
  const check = (now = Date.now()) => {
    if (closed && busy.size === 0) {
      stop();
      return;
    }
    for (const socket of busy) {
      const line = socket[LINE];
      if (line === undefined || !line.current?.headersSent || socket.writableLength === 0) {
        if (line) {
          line.stuckSince = 0;
        }
        continue;
      }
      const flushed = socket.bytesWritten - socket.writableLength;
      if (line.stuckSince === 0 || flushed !== line.flushed) {
        line.flushed = flushed;
        line.stuckSince = now;
      } else if (now - line.stuckSince >= stallMs) {
        onDropped('response_stalled');
        busy.delete(socket);
        socket.destroy();
      }
    }
  };
  // Like Node's check of REQUEST_TIMEOUT: a connection is cut between stallMs and 1.25 × stallMs.
  const interval = setInterval(check, checkingInterval(stallMs));
  interval.unref();
  const stop = () => clearInterval(interval);
  // The server closes once the connections it accepted have ended; those relayed to it from another
  // address of localhost (src/common/listen.ts) may still be answering: the check goes on until they end.
  server.once('close', () => {
    closed = true;
    check();
  });
  return { check, busyConnections: () => busy.size, stop };
}
