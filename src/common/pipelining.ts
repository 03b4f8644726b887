import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';

/**
 * How many pipelined requests one connection may have waiting behind the one being answered. HTTP/1.1
 * clients that pipeline at all (browsers and the common libraries do not) send a few; a connection
 * with more waiting is closed.
 */
export const PIPELINE_DEPTH = 16;

/** Why a connection was closed without its answers: too many pipelined requests, or answers not read. */
export type DroppedConnection = 'pipeline_overflow' | 'response_stalled';

type RequestListener = (req: IncomingMessage, res: ServerResponse) => void;

interface Line {
  /** The response of the request being handled now, until it closes. */
  current: ServerResponse | undefined;
  /** Requests that arrived behind it, handled one at a time in order. */
  waiting: Array<[IncomingMessage, ServerResponse]>;
  /** Bytes the socket had finished writing at the last check, and since when that has not moved. */
  flushed: number;
  stuckSince: number;
}

const LINE = Symbol('gatehouse.pipeline');
type LinedSocket = Socket & { [LINE]?: Line };

/**
 * Node's HTTP server hands the application every request of a pipelined batch at once, and queues
 * their answers in memory behind the first: one write of 500 `GET /docs/openapi.json`, from a client
 * that never reads, ran 500 handlers and put the app (with the image's 128 MB heap) out of memory
 * within a second (measured, 2026-12-07). Here a connection's requests are handled one at a time, the
 * next once the previous answer has left for the socket, so a client that does not read holds one
 * answer, not thousands; and a connection with more than PIPELINE_DEPTH requests waiting is closed.
 *
 * And once an answer has started, its client must make progress taking it: a connection whose socket
 * has finished no write for `stallMs` (REQUEST_TIMEOUT) while answer bytes wait is closed. Checked on
 * an interval, by bytes written: a socket timeout would restart on bytes read, and a client that sends
 * a blank line now and then would keep its unread answer for ever. The clock starts at the answer, not
 * the request, so a sign-in waiting for its bcrypt turn under load is never cut. The grain is one
 * completed write: an answer written whole (the OpenAPI document, 234-354 kB) must all reach the
 * kernel within `stallMs`, so at the 30 s default a client slower than about 10 kB/s is cut.
 *
 * It wraps the server's 'request' listener (Fastify's) rather than using Fastify's `serverFactory`,
 * which would leave the server's timeouts and the closing of idle connections to this code too.
 * Returns a function that stops the interval (the server's 'close' does it too).
 */
export function serveInOrder(
  server: Server,
  stallMs: number,
  onDropped: (why: DroppedConnection) => void,
): () => void {
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
    // 'close' follows 'finish' and also comes when the connection dies first.
    res.once('close', () => next(socket, line));
    handle(req, res);
  };
  const next = (socket: LinedSocket, line: Line) => {
    line.current = undefined;
    line.stuckSince = 0;
    busy.delete(socket);
    const waiting = line.waiting.shift();
    if (waiting === undefined || socket.destroyed) {
      line.waiting.length = 0;
      return;
    }
    dispatch(socket, line, ...waiting);
  };

  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const socket = req.socket as LinedSocket;
    if (socket.destroyed) {
      return;
    }
    const line = (socket[LINE] ??= { current: undefined, waiting: [], flushed: 0, stuckSince: 0 });
    if (line.current === undefined) {
      dispatch(socket, line, req, res);
    } else if (line.waiting.length < PIPELINE_DEPTH) {
      line.waiting.push([req, res]);
    } else {
      onDropped('pipeline_overflow');
      line.waiting.length = 0;
      socket.destroy();
    }
  });

  const check = () => {
    const now = Date.now();
    for (const socket of busy) {
      const line = socket[LINE];
      if (!line?.current?.headersSent || socket.writableLength === 0) {
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
  // A quarter of the limit, as Node checks REQUEST_TIMEOUT: cut between stallMs and 1.25 × stallMs.
  const interval = setInterval(check, Math.min(30_000, Math.max(250, Math.floor(stallMs / 4))));
  interval.unref();
  const stop = () => clearInterval(interval);
  server.once('close', stop);
  return stop;
}
