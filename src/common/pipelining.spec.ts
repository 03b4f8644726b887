import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import { type DroppedConnection, type InOrder, PIPELINE_DEPTH, serveInOrder } from './pipelining.js';

const STALL_MS = 5_000;

/** A real node:http server behind serveInOrder, whose handler the test decides, on a loopback port. */
async function startServer(handle: (req: IncomingMessage, res: ServerResponse) => void) {
  const server: Server = createServer(handle);
  const dropped: DroppedConnection[] = [];
  const inOrder: InOrder = serveInOrder(server, STALL_MS, (why) => dropped.push(why));
  inOrder.stop(); // the test runs the check itself, with its own clock
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  const { port } = server.address() as AddressInfo;
  return { server, port, dropped, inOrder };
}

/** Writes `bytes` on a new connection and resolves with everything read until the server closes it. */
function exchange(port: number, bytes: string): Promise<string> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(bytes));
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => undefined);
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
  });
}

const get = (path: string, headers = 'Host: test\r\n') => `GET ${path} HTTP/1.1\r\n${headers}\r\n`;
const statuses = (text: string) => [...text.matchAll(/HTTP\/1\.1 (\d{3})/g)].map((match) => Number(match[1]));
const sleep = (ms: number) => new Promise((done) => setTimeout(done, ms));

describe(serveInOrder.name, () => {
  let close: (() => Promise<void>) | undefined;
  afterEach(async () => {
    await close?.();
    close = undefined;
  });
  const started = async (handle: (req: IncomingMessage, res: ServerResponse) => void) => {
    const running = await startServer(handle);
    close = () =>
      new Promise((done) => {
        running.server.closeAllConnections();
        running.server.close(() => done());
      });
    return running;
  };

  it('handles pipelined requests one at a time, in order, each after the answer before it has gone', async () => {
    let inFlight = 0;
    let most = 0;
    const handled: string[] = [];
    const { port } = await started((req, res) => {
      inFlight += 1;
      most = Math.max(most, inFlight);
      handled.push(req.url ?? '');
      // The first answer is the slowest: handled at once, the others would all be in flight with it.
      setTimeout(
        () => {
          inFlight -= 1;
          res.end(`${req.url}\n`);
        },
        req.url === '/1' ? 50 : 5,
      );
    });
    const text = await exchange(
      port,
      get('/1') + get('/2') + get('/3') + get('/4', 'Host: test\r\nConnection: close\r\n'),
    );
    expect(most).toBe(1);
    expect(handled).toEqual(['/1', '/2', '/3', '/4']);
    expect(text.match(/\/\d$/gm)).toEqual(['/1', '/2', '/3', '/4']);
  });

  it(`closes a connection with more than ${PIPELINE_DEPTH} waiting, running none of them`, async () => {
    const handled: string[] = [];
    const { port, dropped, inOrder } = await started((req, res) => {
      handled.push(req.url ?? '');
      setTimeout(() => res.end('ok'), 20);
    });
    const text = await exchange(
      port,
      Array.from({ length: PIPELINE_DEPTH + 2 }, (_, index) => get(`/${index}`)).join(''),
    );
    expect(dropped).toEqual(['pipeline_overflow']);
    expect(handled).toEqual(['/0']);
    expect(statuses(text)).toEqual([]);
    await sleep(50);
    expect(inOrder.busyConnections()).toBe(0);
  });

  it('does not run a pipelined request with a body: the connection ends after the answer ahead of it', async () => {
    const handled: string[] = [];
    const { port, dropped } = await started((req, res) => {
      handled.push(`${req.method} ${req.url}`);
      setTimeout(() => res.end('ok'), 20);
    });
    const text = await exchange(
      port,
      get('/first') + 'POST /upload HTTP/1.1\r\nHost: test\r\nContent-Length: 5\r\n\r\nhello' + get('/after'),
    );
    expect(handled).toEqual(['GET /first']);
    expect(statuses(text)).toEqual([200]);
    expect(dropped).toEqual(['pipelined_body']);
  });

  it('runs nothing more on a connection an answer closed (Connection: close, as while the server drains), and forgets it', async () => {
    const handled: string[] = [];
    const { port, inOrder } = await started((req, res) => {
      handled.push(req.url ?? '');
      res.setHeader('connection', 'close');
      setTimeout(() => res.end('ok'), 20);
    });
    const text = await exchange(port, get('/a') + get('/b') + get('/c'));
    expect(statuses(text)).toEqual([200]);
    expect(handled).toEqual(['/a']);
    expect(inOrder.busyConnections()).toBe(0);
  });

  it('forgets a connection Node itself answered and closed (a request without Host), with a request queued behind', async () => {
    const { port, inOrder } = await started((_req, res) => {
      setTimeout(() => res.end('ok'), 20);
    });
    // Node answers the second itself (400, Connection: close); the third is handed over behind it,
    // and its response never gets the socket, so it never closes.
    const text = await exchange(port, get('/a') + get('/b', '') + get('/c'));
    expect(statuses(text)).toEqual([200, 400]);
    await sleep(50);
    expect(inOrder.busyConnections()).toBe(0);
  });

  it('keeps order around an answer Node writes itself (417 for an unknown Expect) on a kept-alive connection', async () => {
    const { port } = await started((req, res) => {
      setTimeout(() => res.end(`${req.url}\n`), 20);
    });
    const text = await exchange(
      port,
      get('/a') +
        get('/b', 'Host: test\r\nExpect: something\r\n') +
        get('/c', 'Host: test\r\nConnection: close\r\n'),
    );
    expect(statuses(text)).toEqual([200, 417, 200]);
    expect(text.match(/\/[ac]$/gm)).toEqual(['/a', '/c']);
  });

  describe('the stall check', () => {
    const BIG = Buffer.alloc(16 * 1024 * 1024, 'x');
    /** A client that reads nothing, asking for 16 MB written in 64 kB pieces (more than the kernel takes). */
    const stalledClient = async (port: number) => {
      const socket = net.connect(port, '127.0.0.1');
      await new Promise((done) => socket.once('connect', done));
      socket.on('error', () => undefined);
      socket.pause();
      socket.write(get('/big'));
      return socket;
    };
    const writeInPieces = (res: ServerResponse) => {
      let offset = 0;
      const more = () => {
        while (offset < BIG.length) {
          const piece = BIG.subarray(offset, offset + 64 * 1024);
          offset += piece.length;
          if (!res.write(piece)) {
            res.once('drain', more);
            return;
          }
        }
        res.end();
      };
      more();
    };

    it('closes a connection whose answer has not moved for the limit, and not before', async () => {
      const { port, dropped, inOrder } = await started((_req, res) => writeInPieces(res));
      const client = await stalledClient(port);
      await sleep(300);
      const t0 = Date.now();
      inOrder.check(t0);
      inOrder.check(t0 + STALL_MS - 1);
      expect(dropped).toEqual([]);
      inOrder.check(t0 + STALL_MS);
      expect(dropped).toEqual(['response_stalled']);
      expect(inOrder.busyConnections()).toBe(0);
      client.destroy();
    });

    it('does not close a connection whose client keeps reading, however long the answer takes', async () => {
      let answering: net.Socket | undefined;
      const { port, dropped, inOrder } = await started((_req, res) => {
        answering = res.socket ?? undefined;
        writeInPieces(res);
      });
      const client = await stalledClient(port);
      await sleep(300);
      /** What the kernel has taken of the answer so far. */
      const sent = () => (answering ? answering.bytesWritten - answering.writableLength : 0);
      let clock = Date.now();
      // Each round: the limit passes on the check's clock, but the client has read a little meanwhile,
      // enough for the server to get more of the answer out (waited for: on a busy machine that takes
      // longer than any fixed pause).
      for (let round = 0; round < 4; round += 1) {
        inOrder.check(clock);
        const before = sent();
        for (let waited = 0; sent() === before && waited < 5000; waited += 5) {
          client.read(64 * 1024);
          await sleep(5);
        }
        expect(sent()).toBeGreaterThan(before);
        clock += STALL_MS;
        inOrder.check(clock);
      }
      expect(dropped).toEqual([]);
      expect(inOrder.busyConnections()).toBe(1);
      client.destroy();
    });

    it('does not count a handler that has not answered yet, however long it takes', async () => {
      let answer: (() => void) | undefined;
      const { port, dropped, inOrder } = await started((_req, res) => {
        answer = () => res.end('late');
      });
      const client = await stalledClient(port);
      await sleep(50);
      inOrder.check(0);
      inOrder.check(10 * STALL_MS);
      expect(dropped).toEqual([]);
      expect(inOrder.busyConnections()).toBe(1);
      answer?.();
      client.destroy();
    });
  });
});
