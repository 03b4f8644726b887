import http from 'node:http';

export type Outcome = { startedAt: number; endedAt: number; what?: string } & (
  | { kind: 'complete'; status: number }
  | { kind: 'refused' | 'reset-before-response' | 'reset-mid-body'; error: string }
);

/**
 * One request over node:http, classified by how it ended: a complete answer (status line, headers and
 * exactly Content-Length bytes of body), a refused connection, or a reset before or during the answer.
 */
export function classify(
  url: string,
  path: string,
  agent: http.Agent | false,
  body?: unknown,
  clock: () => number = Date.now,
): Promise<Outcome> {
  const startedAt = clock();
  return new Promise((resolve) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(
      `${url}${path}`,
      {
        method: payload ? 'POST' : 'GET',
        agent,
        headers: payload ? { 'content-type': 'application/json' } : {},
      },
      (res) => {
        let received = 0;
        res.on('data', (chunk: Buffer) => (received += chunk.length));
        res.on('end', () => {
          const expected = Number(res.headers['content-length'] ?? received);
          resolve(
            received === expected && res.complete
              ? { kind: 'complete', status: res.statusCode ?? 0, startedAt, endedAt: clock() }
              : {
                  kind: 'reset-mid-body',
                  error: `${received}/${expected} bytes`,
                  startedAt,
                  endedAt: clock(),
                },
          );
        });
        res.on('error', (error) =>
          resolve({ kind: 'reset-mid-body', error: error.message, startedAt, endedAt: clock() }),
        );
      },
    );
    req.on('error', (error: NodeJS.ErrnoException) =>
      resolve({
        kind: error.code === 'ECONNREFUSED' ? 'refused' : 'reset-before-response',
        error: error.code ?? error.message,
        startedAt,
        endedAt: clock(),
      }),
    );
    req.end(payload);
  });
}
