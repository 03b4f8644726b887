import { lookup } from 'node:dns/promises';
import type { Server } from 'node:http';
import { type AddressInfo, createServer, type Server as NetServer } from 'node:net';
import { Logger } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import type { GracefulFastifyAdapter } from './shutdown.js';

/** The addresses `localhost` resolves to, in the resolver's order. */
export type ResolveHost = (host: string) => Promise<string[]>;

const resolveHost: ResolveHost = async (host) =>
  (await lookup(host, { all: true })).map(({ address }) => address);

/** Another address of `localhost` that this machine cannot have: skipped, not fatal. */
const UNAVAILABLE = new Set(['EADDRNOTAVAIL', 'EAFNOSUPPORT']);

/**
 * Starts `app` listening on `host`; `localhost` on every address it resolves to (usually 127.0.0.1
 * and ::1), as Fastify does. Any other name binds its first address, as Node does.
 *
 * Fastify binds localhost's other addresses with HTTP servers of its own, made at listen time,
 * without anything the app installs on its server: the pipelining gate, the deferred `100 Continue`,
 * the problem+json answer to a malformed request. A client reaching the app over ::1 would meet none
 * of them. So the app's one server listens on the first address, and each other address relays the
 * connections it accepts to that server, and closes with it (GracefulFastifyAdapter.relay). An
 * address this machine cannot have (no IPv6) is logged and skipped; any other failure (another process
 * on [::1]:PORT, which would take that address's clients) stops the boot, as for the first address.
 */
export async function listen(
  app: NestFastifyApplication,
  port: number,
  host: string,
  resolve: ResolveHost = resolveHost,
): Promise<void> {
  const [first, ...others] = host === 'localhost' ? new Set(await resolve(host)) : [host];
  if (first === undefined) {
    throw new Error(`HOST ${host} resolves to no address`);
  }
  await app.listen(port, first);
  const server: Server = app.getHttpServer();
  const { port: bound } = server.address() as AddressInfo;
  const adapter = app.getHttpAdapter() as GracefulFastifyAdapter;
  for (const address of others) {
    // Every connection it accepts is the server's, as if the server had accepted it (with the
    // server's socket options: half-open allowed, no Nagle delay).
    const relay = createServer({ allowHalfOpen: true, noDelay: true }, (socket) =>
      server.emit('connection', socket),
    );
    try {
      await listenOn(relay, bound, address);
    } catch (error) {
      if (!UNAVAILABLE.has((error as NodeJS.ErrnoException).code ?? '')) {
        throw error;
      }
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
