import { createServer as createHttpServer, type Server } from 'node:http';
import { createServer, isIP, type Server as NetServer } from 'node:net';
import { networkInterfaces } from 'node:os';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { listen } from './listen.js';
import { GracefulFastifyAdapter } from './shutdown.js';

const HAS_IPV6_LOOPBACK = Object.values(networkInterfaces()).some((addresses) =>
  addresses?.some(({ address }) => address === '::1'),
);

/**
 * What listen() uses of a Nest application, on a plain HTTP server that binds 127.0.0.1 for any name:
 * the hosts it was asked for.
 */
function fakeApp() {
  const server: Server = createHttpServer((_request, response) => response.end('ok'));
  const adapter = new GracefulFastifyAdapter({}, 1000);
  const asked: string[] = [];
  const app = {
    listen: (port: number, host: string) => {
      asked.push(host);
      return new Promise((done) =>
        server.listen(port, isIP(host) === 0 ? '127.0.0.1' : host, () => done(server)),
      );
    },
    getHttpServer: () => server,
    getHttpAdapter: () => adapter,
  } as unknown as NestFastifyApplication;
  const close = async () => {
    await adapter.close();
    await new Promise((done) => server.close(done));
  };
  return { app, asked, close };
}

const unexpected = () => Promise.reject(new Error('looked up'));

describe(listen.name, () => {
  it.each(['127.0.0.1', 'gatehouse.internal'])(
    'should look up localhost alone, and bind any other host as given (%s)',
    async (host) => {
      // A name other than localhost binds its first address, as Node does: not every record it has.
      const { app, asked, close } = fakeApp();
      try {
        await listen(app, 0, host, unexpected);
        expect(asked).toEqual([host]);
      } finally {
        await close();
      }
    },
  );

  it('should skip an address of localhost this machine cannot have', async () => {
    const { app, asked, close } = fakeApp();
    try {
      await listen(app, 0, 'localhost', () => Promise.resolve(['127.0.0.1', '198.51.100.1']));
      expect(asked).toEqual(['127.0.0.1']);
    } finally {
      await close();
    }
  });

  (HAS_IPV6_LOOPBACK ? it : it.skip)(
    'should stop the boot when another process holds an address of localhost',
    async () => {
      const squatter: NetServer = createServer();
      await new Promise<void>((done) => squatter.listen(0, '::1', done));
      const { port } = squatter.address() as { port: number };
      const { app, close } = fakeApp();
      try {
        await expect(
          listen(app, port, 'localhost', () => Promise.resolve(['127.0.0.1', '::1'])),
        ).rejects.toThrow(/EADDRINUSE/);
      } finally {
        await close();
        await new Promise((done) => squatter.close(done));
      }
    },
  );
});
