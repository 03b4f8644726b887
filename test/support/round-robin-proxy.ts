import http from 'node:http';

/**
 * A small load balancer for the scale-out test: each HTTP request goes to the next backend in turn
 * (per request, not per connection, so one keep-alive client still reaches every instance), and the
 * answer says which one served it in `x-backend` (the backend's index). The backends see the proxy's
 * loopback address as the client, as they would behind a balancer without TRUST_PROXY.
 */
export class RoundRobinProxy {
  private next = 0;
  /** How many requests each backend served. */
  readonly served: number[];

  private constructor(
    private readonly server: http.Server,
    private readonly backends: string[],
    readonly url: string,
  ) {
    this.served = backends.map(() => 0);
  }

  static async start(backends: string[]): Promise<RoundRobinProxy> {
    const agent = new http.Agent({ keepAlive: true });
    const server = http.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    const port = typeof address === 'object' && address ? address.port : 0;
    const proxy = new RoundRobinProxy(server, backends, `http://127.0.0.1:${port}`);
    server.on('request', (req: http.IncomingMessage, res: http.ServerResponse) =>
      proxy.forward(req, res, agent),
    );
    return proxy;
  }

  private forward(req: http.IncomingMessage, res: http.ServerResponse, agent: http.Agent): void {
    const index = this.next;
    this.next = (this.next + 1) % this.backends.length;
    this.served[index] += 1;
    const target = new URL(req.url ?? '/', this.backends[index]);
    const upstream = http.request(
      target,
      { method: req.method, headers: { ...req.headers, host: target.host }, agent },
      (answer) => {
        res.writeHead(answer.statusCode ?? 502, { ...answer.headers, 'x-backend': String(index) });
        answer.pipe(res);
      },
    );
    upstream.on('error', (error) => {
      // A balancer's own answer when the backend fails: the test counts it as the 5xx it is.
      if (!res.headersSent) {
        res.writeHead(502, { 'content-type': 'text/plain', 'x-backend': String(index) });
      }
      res.end(`bad gateway: ${error.message}`);
    });
    req.pipe(upstream);
  }

  async stop(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise((resolve) => this.server.close(resolve));
  }
}
