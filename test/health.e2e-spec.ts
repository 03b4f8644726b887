import { createRequire } from 'node:module';
import { Todo } from '../src/todos/todo.entity.js';
import { usingMysql } from './support/database.js';
import { newUser } from './support/factories.js';
import { TcpProxy } from './support/tcp-proxy.js';
import { TestApp } from './support/test-app.js';

/** better-sqlite3 (no type declarations installed): a second process's connection to the app's file. */
const Database = createRequire(import.meta.url)('better-sqlite3') as new (file: string) => {
  exec(sql: string): void;
  close(): void;
};

async function waitForStatus(t: TestApp, path: string, status: number, timeoutMs = 10_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 0;
  while (Date.now() < deadline) {
    last = (await t.request(path)).status;
    if (last === status) {
      return;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`${path} answered ${last}, expected ${status}`);
}

describe('health', () => {
  let t: TestApp;
  let proxy: TcpProxy | undefined;

  beforeAll(async () => {
    if (usingMysql()) {
      // The app reaches MySQL through a proxy the test can cut, so the database really goes away.
      proxy = await TcpProxy.start('127.0.0.1', 3306);
      const port = proxy.port;
      t = await TestApp.start({}, [], {
        mapDatabaseUrl: (url) => {
          const u = new URL(url);
          u.hostname = '127.0.0.1';
          u.port = String(port);
          return u.toString();
        },
      });
    } else {
      t = await TestApp.start();
    }
  });

  afterAll(async () => {
    await proxy?.stop();
    await t.close();
  });

  it('answers liveness without touching the database', async () => {
    const res = await t.request('/health/live');
    expect(res.status).toBe(200);
    expect(res.body).toEqual({ status: 'ok' });
  });

  it('is ready while the database answers', async () => {
    const res = await t.request('/health/ready');
    expect(res.status).toBe(200);
    expect(res.body.info.database.status).toBe('up');
  });

  it('turns 503 when the database goes away and 200 again when it is back, without a restart', async () => {
    if (proxy) {
      await proxy.cut();
    } else {
      await t.dataSource.destroy();
    }
    await waitForStatus(t, '/health/ready', 503);
    const down = await t.request('/health/ready');
    expect(down.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(down.body.code).toBe('NOT_READY');
    expect((await t.request('/health/live')).status).toBe(200);

    if (proxy) {
      await proxy.restore();
    } else {
      await t.dataSource.initialize();
    }
    await waitForStatus(t, '/health/ready', 200);
  });

  // InnoDB's lock wait is 50 s and global; src/common/dependency.spec.ts covers its code.
  (usingMysql() ? it.skip : it)(
    'answers a write the database is too busy to take with 503 DEPENDENCY_UNAVAILABLE, then takes it once free',
    async () => {
      const user = await newUser(t);
      // Another process holds SQLite's write lock longer than busy_timeout (a backup, a migration).
      const other = new Database(t.config.database.url.replace(/^sqlite:/, ''));
      other.exec('BEGIN IMMEDIATE');
      try {
        const busy = await t.request('/api/v1/todos', {
          method: 'POST',
          token: user.accessToken,
          body: { title: 'while locked' },
        });
        expect(busy.status).toBe(503);
        expect(busy.body.code).toBe('DEPENDENCY_UNAVAILABLE');
        expect(busy.headers.get('retry-after')).toBe('5');
        // A warning naming the cause, not an unhandled error with a stack.
        const lines = t.logs.filter((line) => line.includes(busy.body.requestId));
        expect(
          lines.some((line) => line.includes('Dependency unavailable') && line.includes('SQLITE_BUSY')),
        ).toBe(true);
        expect(lines.some((line) => line.includes('Unhandled error'))).toBe(false);
      } finally {
        other.exec('ROLLBACK');
        other.close();
      }
      const created = await t.request('/api/v1/todos', {
        method: 'POST',
        token: user.accessToken,
        body: { title: 'once free' },
      });
      expect(created.status).toBe(201);
      expect(await t.dataSource.getRepository(Todo).countBy({ userId: user.id })).toBe(1);
    },
    20_000,
  );
});
