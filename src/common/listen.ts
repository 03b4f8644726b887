import { lookup } from 'node:dns/promises';
import type { Server } from 'node:http';
import { type AddressInfo, createServer, isIP, type Server as NetServer } from 'node:net';
import { Logger } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { GracefulFastifyAdapter } from './shutdown.js';

/** The addresses a host name resolves to, in the resolver's order. */
export type ResolveHost = (host: string) => Promise<string[]>;

const resolveHost: ResolveHost = async (host) =>
  (await lookup(host, { all: true })).map(({ address }) => address);

/**
 * Starts `app` listening on `host`: an address, or a name (`localhost`) on every address it resolves
 * to (127.0.0.1 and ::1 on most machines).
 *
 * Given a name, Fastify itself would bind its other addresses with HTTP servers of its own, made at
 * listen time, without anything the app installs on its server: the pipelining gate, the deferred
 * `100 Continue`, the problem+json answer to a malformed request. A client reaching the app over ::1
 * would meet none of them. So the app's one server listens on the name's first address, and each other
 * address relays the connections it accepts to that server, and closes with it
 * (GracefulFastifyAdapter.relay). Another address this machine cannot bind (no IPv6, say) is logged
 * and skipped, as Fastify skips it; the first must bind, as with Fastify.
 */
export async function listen(
  app: NestFastifyApplication,
  port: number,
  host: string,
  resolve: ResolveHost = resolveHost,
): Promise<void> {
  const [first, ...others] = isIP(host) === 0 ? new Set(await resolve(host)) : [host];
  if (first === undefined) {
    throw new Error(`HOST ${host} resolves to no address`);
  }
  await app.listen(port, first);
  const server: Server = app.getHttpServer();
  const { port: bound } = server.address() as AddressInfo;
  const adapter = app.getHttpAdapter() as GracefulFastifyAdapter;
  for (const address of others) {
    // Every connection it accepts is the server's, as if the server had accepted it.
    const relay = createServer({ noDelay: true }, (socket) => server.emit('connection', socket));
    try {
      await listenOn(relay, bound, address);
    } catch (error) {
      new Logger('Gatehouse').warn(
        `Not listening on ${address}, one of the addresses of ${host}: ${(error as Error).message}`,
      );
      continue;
    }
    adapter.relay(relay);
  }
}

function listenOn(server: NetServer, port: number, host: string): Promise<void> {
  return new Promise((done, fail) => {
    server.once('error', fail);
    server.listen(port, host, () => {
      server.removeListener('error', fail);
      done();
    });
  });
}
