import { createServer, type Server } from 'node:net';
import { GracefulFastifyAdapter } from './shutdown.js';

const listening = async (): Promise<Server> => {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', done));
  return server;
};

describe(GracefulFastifyAdapter.name, () => {
  it('should close a relay with the server, and one that comes once the stop has begun at once', async () => {
    const adapter = new GracefulFastifyAdapter({}, 1000);
    const before = await listening();
    adapter.relay(before);
    expect(before.listening).toBe(true);
    await adapter.close();
    expect(before.listening).toBe(false);
    // Bound while the stop ran (a SIGTERM during boot): it must not go on accepting.
    const after = await listening();
    adapter.relay(after);
    expect(after.listening).toBe(false);
  });
});
