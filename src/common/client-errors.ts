import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerOptions, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyBaseLogger, FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { declaresBody } from './body-budget.js';
import { PROBLEM_CONTENT_TYPE, problem } from './problem.js';

/**
 * The id Fastify gave a request (genReqId records it), kept on the raw request so that a request cut
 * by REQUEST_TIMEOUT is answered and logged under the id its other log lines carry.
 */
export const RAW_REQUEST_ID = Symbol('gatehouse.requestId');

/** A raw request with the id genReqId gave it. */
export type IdentifiedRequest = IncomingMessage & { [RAW_REQUEST_ID]?: string };

/** The headers every answer carries (helmet's, recorded once); what Fastify's hooks add elsewhere. */
export type SecurityHeaders = Readonly<Record<string, string>>;

/**
 * What Node's HTTP server refuses before Fastify sees a request: a request not received within
 * REQUEST_TIMEOUT, a header block over the size limit, bytes that are not HTTP. Fastify's default
 * answer is its own JSON shape; these are problem+json like every other refusal, with a stable code.
 */
const CLIENT_ERRORS: Record<string, { status: number; code: string; detail: string }> = {
  ERR_HTTP_REQUEST_TIMEOUT: {
    status: 408,
    code: 'REQUEST_TIMEOUT',
    detail: 'The request was not received in time; send it again, whole.',
  },
  HPE_HEADER_OVERFLOW: {
    status: 431,
    code: 'HEADERS_TOO_LARGE',
    detail: 'The request headers are larger than the server accepts.',
  },
};
const MALFORMED = { status: 400, code: 'MALFORMED_REQUEST', detail: 'The request is not valid HTTP.' };

/**
 * Whether a request's Host header is as RFC 9112 §3.2 requires: exactly one on an HTTP/1.1 request,
 * at most one on an HTTP/1.0 one. Node would refuse a missing one itself, with a bare 400 and no body
 * (its `requireHostHeader`, turned off in nodeServerOptions so that the answer is problem+json), and it
 * keeps only the first of two, where a proxy in front may have read the last.
 */
export function hasValidHost(request: Pick<IncomingMessage, 'rawHeaders' | 'httpVersion'>): boolean {
  const raw = request.rawHeaders;
  let hosts = 0;
  for (let i = 0; i < raw.length; i += 2) {
    const name = raw[i];
    if (name.length === 4 && name.toLowerCase() === 'host') {
      hosts += 1;
    }
  }
  return hosts === 1 || (hosts === 0 && request.httpVersion === '1.0');
}

/** How often a timeout of `timeoutMs` is checked: a quarter of it, between 250 ms and 30 s. */
export function checkingInterval(timeoutMs: number): number {
  return Math.min(30_000, Math.max(250, Math.floor(timeoutMs / 4)));
}

/**
 * Node checks the open connections for the timeout every `connectionsCheckingInterval` (30 s by
 * default), so a stalled request is cut between REQUEST_TIMEOUT and that much later: a quarter of the
 * timeout (at most Node's 30 s) keeps the overrun small without walking the connections more than
 * four times a second.
 * `headersTimeout` (60 s by default) must not exceed the request timeout: with it above, Node 20 and 24
 * cut a stalled body only when the headers' 60 s have passed (measured: 60.0 s with a 1 s timeout).
 * `requireHostHeader` is off because Node's answer to a request without Host is a bare 400; the app
 * refuses it itself, as problem+json (hasValidHost).
 */
export function nodeServerOptions(requestTimeoutMs: number): {
  requestTimeout: number;
  http: ServerOptions;
} {
  return {
    requestTimeout: requestTimeoutMs,
    http: {
      connectionsCheckingInterval: checkingInterval(requestTimeoutMs),
      headersTimeout: Math.min(requestTimeoutMs, 60_000),
      requireHostHeader: false,
    },
  };
}

/** Sockets whose request in flight is answered before they close (see clientErrorHandler). */
const closingAfterAnswer = new WeakSet<Socket>();

/** Fastify's `clientErrorHandler`: one problem+json answer on the raw socket, then the socket closes. */
export function clientErrorHandler(logger: FastifyBaseLogger, securityHeaders: SecurityHeaders) {
  const fixedHeaders = Object.entries({
    ...securityHeaders,
    'content-type': PROBLEM_CONTENT_TYPE,
    'cache-control': 'no-store',
    connection: 'close',
  })
    .map(([name, value]) => `${name}: ${value}\r\n`)
    .join('');
  return (error: NodeJS.ErrnoException, socket: Socket): void => {
    // A reset connection has no one left to answer.
    if (error.code === 'ECONNRESET' || socket.destroyed) {
      return;
    }
    // One whose side has ended, lingering after its answer (closesUnfinished), is owed nothing more:
    // what the client does with it now (half-close mid-body, more bytes) is not an error to log.
    if (socket.writableEnded) {
      socket.destroy();
      return;
    }
    const known = (error.code && CLIENT_ERRORS[error.code]) || MALFORMED;
    // The request in flight on this socket, if its headers had arrived: a stalled body.
    const current = (socket as Socket & { _httpMessage?: ServerResponse & { req?: IdentifiedRequest } })
      ._httpMessage;
    if (current?.req?.complete === true && !current.writableEnded) {
      if (closingAfterAnswer.has(socket)) {
        return; // more of the same bytes: Node's parser reports each chunk that follows
      }
      closingAfterAnswer.add(socket);
      // A request received whole is being answered, and what follows it is refused: bytes that are not
      // HTTP, headers over the limit, a next request that does not arrive in time. That request has
      // run, or is running: the client is owed its answer, not a 400, 431 or 408 under its id (a
      // client that then retried would do it twice). The answer goes out with `Connection: close`, and
      // what follows it is not answered.
      if (!current.headersSent) {
        current.shouldKeepAlive = false;
      }
      current.once('finish', () => socket.end());
      logger.info(
        { requestId: current.req[RAW_REQUEST_ID], code: known.code, remoteAddress: socket.remoteAddress },
        'what follows a request is refused; the connection closes after its answer',
      );
      return;
    }
    const requestId = current?.req?.[RAW_REQUEST_ID] ?? randomUUID();
    logger.info(
      { requestId, code: known.code, status: known.status, remoteAddress: socket.remoteAddress },
      'client error',
    );
    // A response being written on this socket is not interrupted by a second status line: the
    // connection only closes, as Node's own handler does. (One already sent for a request whose body
    // had not all arrived closed its connection: the onSend hook in app.factory.ts.)
    if (socket.writable && !current?.headersSent) {
      const details = problem(known.status, known.code, known.detail, requestId);
      const body = JSON.stringify(details);
      socket.write(
        `HTTP/1.1 ${known.status} ${details.title}\r\n${fixedHeaders}` +
          `content-length: ${Buffer.byteLength(body)}\r\nx-request-id: ${requestId}\r\n\r\n${body}`,
      );
    }
    socket.destroy(error);
  };
}

/**
 * Fastify's `frameworkErrors`: what its router refuses before a route is found (a path that does not
 * decode, a path parameter over its length limit) is problem+json too, not Fastify's own JSON. The
 * app's hooks do not run for these answers, so the headers they would add are set here, and
 * `onAnswered` is told once each is sent: the request log and the metrics would not see it otherwise.
 */
export function frameworkErrors(
  securityHeaders: SecurityHeaders,
  onAnswered: (request: FastifyRequest, reply: FastifyReply) => void = () => undefined,
) {
  return (error: FastifyError, request: FastifyRequest, reply: FastifyReply): void => {
    reply.raw.once('finish', () => onAnswered(request, reply));
    const [status, code, detail] =
      error.code === 'FST_ERR_BAD_URL'
        ? [400, 'MALFORMED_URL', 'The request path is not a valid URL path.']
        : error.code === 'FST_ERR_MAX_PARAM_LENGTH'
          ? [414, 'URI_TOO_LONG', 'A path segment is longer than any route accepts.']
          : [500, 'INTERNAL_ERROR', 'The request could not be processed.'];
    void reply
      .code(status)
      .headers({ ...securityHeaders, 'x-request-id': String(request.id), 'cache-control': 'no-store' })
      .headers(closesUnfinished(request))
      .type(PROBLEM_CONTENT_TYPE)
      .send(problem(status, code, detail, String(request.id)));
  };
}

/** How long a connection closed under a body still arriving goes on taking (and dropping) it. */
export const LINGER_MS = 2_000;

/**
 * `Connection: close` for an answer sent before its request's body has all arrived (a 413, a 415, a
 * 404 or a refusal that reads no body). Kept open, the rest of that body, or REQUEST_TIMEOUT's 408 for
 * it, would follow the answer on a connection the client takes to be free.
 *
 * The connection is not cut the moment the answer is out, though: a socket closed with bytes still
 * coming makes the kernel reset the connection, and a client still writing its body then reads the
 * reset instead of the answer (Node's fetch got EPIPE for 13 of 20 3 MB bodies refused 413). As
 * nginx's lingering close does, the server ends its side after the answer and goes on taking, and
 * dropping, what the client sends for up to LINGER_MS (or until REQUEST_TIMEOUT, if that comes first),
 * so that the client can finish and read it.
 */
export function closesUnfinished(request: FastifyRequest): Record<string, string> {
  if (request.raw.complete || !declaresBody(request.headers)) {
    return {};
  }
  lingerOnClose(request.raw.socket);
  return { connection: 'close' };
}

/** Sockets already set to linger. */
const lingering = new WeakSet<Socket>();

/**
 * Node closes a connection after an answer marked `Connection: close` with `destroySoon()`: the end of
 * its side, then the socket destroyed as soon as the answer is written, whatever is still arriving.
 * Here the end comes at once and the destroy LINGER_MS later (or when the client closes first); Node's
 * parser meanwhile drops the rest of the refused body.
 */
function lingerOnClose(socket: Socket): void {
  if (lingering.has(socket)) {
    return;
  }
  lingering.add(socket);
  socket.destroySoon = function (this: Socket) {
    this.end();
    const cut = setTimeout(() => this.destroy(), LINGER_MS);
    cut.unref();
    this.once('close', () => clearTimeout(cut));
  };
}
