// The raw baseline: a bare node:http server answering a static JSON body about the size of a todo
// page. Measured in the same run as the app so results read as ratios, not as machine-specific numbers.
import { createServer } from 'node:http';

const body = JSON.stringify({
  items: Array.from({ length: 20 }, (_, i) => ({
    id: 1000 - i,
    title: `Todo #${1000 - i} of the baseline`,
    description: null,
    completed: i % 3 === 0,
    dueAt: null,
    createdAt: '2030-01-01T00:00:00.000Z',
    updatedAt: '2030-01-01T00:00:00.000Z',
  })),
  nextCursor: 'eyJpZCI6Ijk4MCJ9',
});

export function startBaseline(port = 0) {
  const server = createServer((_req, res) => {
    res.writeHead(200, {
      'content-type': 'application/json; charset=utf-8',
      'content-length': Buffer.byteLength(body),
    });
    res.end(body);
  });
  return new Promise((resolve) => {
    server.listen(port, '127.0.0.1', () => {
      resolve({
        url: `http://127.0.0.1:${server.address().port}`,
        close: () => new Promise((r) => server.close(r)),
      });
    });
  });
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const { url } = await startBaseline(Number(process.env.PORT ?? 3999));
  console.log(`baseline listening on ${url}`);
}
