import type { Socket } from 'node:net';
import pino from 'pino';
import { clientErrorHandler, hasValidHost, nodeServerOptions, RAW_REQUEST_ID } from './client-errors.js';

/** The part of a socket the handler touches: what it wrote, and whether it closed it. */
function fakeSocket(
  state: {
    destroyed?: boolean;
    writable?: boolean;
    writableEnded?: boolean;
    headersSent?: boolean;
    requestId?: string;
  } = {},
) {
  const written: string[] = [];
  const socket = {
    destroyed: state.destroyed ?? false,
    writable: state.writable ?? true,
    writableEnded: state.writableEnded ?? false,
    remoteAddress: '192.0.2.7',
    _httpMessage:
      state.headersSent === undefined
        ? undefined
        : { headersSent: state.headersSent, req: { [RAW_REQUEST_ID]: state.requestId } },
    write: (chunk: string) => written.push(chunk),
    destroy: () => {
      socket.destroyed = true;
    },
  };
  return { socket, written, asSocket: socket as unknown as Socket };
}

const errorWith = (code: string) => Object.assign(new Error(code), { code });
const handler = clientErrorHandler(pino({ level: 'silent' }), { 'x-frame-options': 'DENY' });

describe(clientErrorHandler.name, () => {
  it.each([
    ['ERR_HTTP_REQUEST_TIMEOUT', 408, 'Request Timeout', 'REQUEST_TIMEOUT'],
    ['HPE_HEADER_OVERFLOW', 431, 'Request Header Fields Too Large', 'HEADERS_TOO_LARGE'],
    ['HPE_INVALID_METHOD', 400, 'Bad Request', 'MALFORMED_REQUEST'],
  ])(
    'should answer %s with one problem+json %i and close the socket',
    (code, status, reason, problemCode) => {
      const { socket, written, asSocket } = fakeSocket();
      handler(errorWith(code), asSocket);
      expect(written).toHaveLength(1);
      const [head, body] = written[0].split('\r\n\r\n');
      expect(head.split('\r\n')[0]).toBe(`HTTP/1.1 ${status} ${reason}`);
      expect(head).toMatch(/\r\ncontent-type: application\/problem\+json; charset=utf-8\r\n/);
      expect(head).toContain(`\r\ncontent-length: ${Buffer.byteLength(body)}\r\n`);
      expect(head).toMatch(/\r\nconnection: close\r\n/);
      expect(head).toMatch(/\r\nx-frame-options: DENY\r\n/);
      const requestId = /\r\nx-request-id: ([0-9a-f-]{36})$/.exec(head)?.[1];
      expect(JSON.parse(body)).toEqual({
        type: `urn:gatehouse:problem:${problemCode.toLowerCase().replace(/_/g, '-')}`,
        title: reason,
        status,
        detail: expect.any(String),
        code: problemCode,
        requestId,
      });
      expect(socket.destroyed).toBe(true);
    },
  );

  it('should write nothing on a reset or destroyed connection', () => {
    const reset = fakeSocket();
    handler(errorWith('ECONNRESET'), reset.asSocket);
    const gone = fakeSocket({ destroyed: true });
    handler(errorWith('ERR_HTTP_REQUEST_TIMEOUT'), gone.asSocket);
    expect([...reset.written, ...gone.written]).toEqual([]);
  });

  it('should close a connection that has ended its side (lingering after its answer) without a word or a log line', () => {
    const lines: string[] = [];
    const logged = clientErrorHandler(
      pino({ level: 'info' }, { write: (line: string) => lines.push(line) }),
      {},
    );
    const lingering = fakeSocket({ writable: false, writableEnded: true });
    logged(errorWith('HPE_INVALID_EOF_STATE'), lingering.asSocket);
    expect(lingering.written).toEqual([]);
    expect(lingering.socket.destroyed).toBe(true);
    expect(lines).toEqual([]);
  });

  it('should only close a socket whose response has begun, never write a second status line into it', () => {
    const begun = fakeSocket({ headersSent: true });
    handler(errorWith('ERR_HTTP_REQUEST_TIMEOUT'), begun.asSocket);
    expect(begun.written).toEqual([]);
    expect(begun.socket.destroyed).toBe(true);
    const notYet = fakeSocket({ headersSent: false, requestId: 'the-request-s-own-id' });
    handler(errorWith('ERR_HTTP_REQUEST_TIMEOUT'), notYet.asSocket);
    expect(notYet.written).toHaveLength(1);
    // A request cut mid-body is answered under the id Fastify gave it, as its other log lines are.
    expect(notYet.written[0]).toContain('\r\nx-request-id: the-request-s-own-id\r\n');
    expect(JSON.parse(notYet.written[0].split('\r\n\r\n')[1])).toMatchObject({
      requestId: 'the-request-s-own-id',
    });
  });
});

describe(nodeServerOptions.name, () => {
  it('should keep the headers timeout within the request timeout, or Node waits for the longer one', () => {
    expect(nodeServerOptions(1000)).toEqual({
      requestTimeout: 1000,
      http: { connectionsCheckingInterval: 250, headersTimeout: 1000, requireHostHeader: false },
    });
    expect(nodeServerOptions(30_000).http).toEqual({
      connectionsCheckingInterval: 7500,
      headersTimeout: 30_000,
      requireHostHeader: false,
    });
    expect(nodeServerOptions(3_600_000).http).toEqual({
      connectionsCheckingInterval: 30_000,
      headersTimeout: 60_000,
      requireHostHeader: false,
    });
  });
});

describe(hasValidHost.name, () => {
  const request = (httpVersion: string, ...rawHeaders: string[]) => ({ httpVersion, rawHeaders });

  it('should want exactly one Host on HTTP/1.1, whatever its case, and at most one on HTTP/1.0', () => {
    expect(hasValidHost(request('1.1', 'Host', 'a.test', 'Accept', '*/*'))).toBe(true);
    expect(hasValidHost(request('1.1', 'accept', '*/*', 'hOsT', ''))).toBe(true);
    expect(hasValidHost(request('1.0', 'Accept', '*/*'))).toBe(true);
    expect(hasValidHost(request('1.0', 'host', 'a.test'))).toBe(true);
    expect(hasValidHost(request('1.1', 'Accept', '*/*'))).toBe(false);
    expect(hasValidHost(request('1.1', 'Host', 'a.test', 'HOST', 'b.test'))).toBe(false);
    expect(hasValidHost(request('1.0', 'Host', 'a.test', 'Host', 'a.test'))).toBe(false);
    // Names that merely contain "host" are other headers.
    expect(hasValidHost(request('1.1', 'X-Forwarded-Host', 'b.test', 'Hosts', 'c', 'Host', 'a.test'))).toBe(
      true,
    );
  });
});
