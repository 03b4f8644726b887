import { QueryFailedError } from 'typeorm';
import { MAX_PREPARED_STATEMENTS } from '../src/database/data-source.js';
import { EntityRepository } from '../src/database/entity-repository.js';
import { UnitOfWork } from '../src/database/unit-of-work.js';
import { Todo } from '../src/todos/todo.entity.js';
import { usingMysql } from './support/database.js';
import { newUser } from './support/factories.js';
import { TestApp } from './support/test-app.js';

/** Hand-written SQL on the todos table, as a module's repository would run it. */
class ProbeRepository extends EntityRepository<Todo> {
  constructor(uow: UnitOfWork) {
    super(uow, Todo);
  }

  run(sql: string, parameters: unknown[] = []): Promise<unknown[]> {
    return this.rows(sql, parameters);
  }
}

/** A connection never given back leaves the next checkout waiting for ever: fail instead. */
function within<T>(ms: number, work: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`still waiting after ${ms} ms: a connection was not given back`)),
      ms,
    );
  });
  return Promise.race([work, late]).finally(() => clearTimeout(timer));
}

/** Retries an assertion for up to two seconds: the outbox worker shares the pool and may hold a connection briefly. */
async function eventually(check: () => void): Promise<void> {
  for (let waited = 0; ; waited += 50) {
    try {
      check();
      return;
    } catch (error) {
      if (waited >= 2000) {
        throw error;
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
}

interface PoolConnection {
  stream: { destroy(error: Error): void };
  /** mysql2's prepared-statement cache (an lru.min cache, allocated at its full capacity). */
  _statements: { max: number; size: number };
  execute(sql: string, values: unknown[], callback: (error: Error | null, rows: unknown) => void): void;
  release(): void;
}

interface Pool {
  _allConnections: { toArray(): PoolConnection[] };
  _freeConnections: { toArray(): PoolConnection[] };
  getConnection(callback: (error: Error | null, connection: PoolConnection) => void): void;
}

/**
 * Hot reads outside a unit of work check a connection out of mysql2's pool, query it and give it back
 * themselves (EntityRepository.rows): each path must end with the connection back in the pool, or
 * closed when it is broken or its server has turned read-only.
 */
(usingMysql() ? describe : describe.skip)('hot reads on the pool (MySQL)', () => {
  let t: TestApp;
  let probe: ProbeRepository;
  let pool: Pool;
  const pooled = (connection: PoolConnection) => pool._allConnections.toArray().includes(connection);
  const free = (connection: PoolConnection) => pool._freeConnections.toArray().includes(connection);

  /** Runs `work` and returns it with the connections the probe's reads checked out meanwhile. */
  async function checkouts<T>(
    work: (used: PoolConnection[]) => Promise<T>,
  ): Promise<{ result: unknown; used: PoolConnection[] }> {
    const used: PoolConnection[] = [];
    // The pool's own property (the pool-wait metric's timing wrapper) is put back afterwards.
    const own = Object.getOwnPropertyDescriptor(pool, 'getConnection');
    const checkOut = pool.getConnection.bind(pool);
    pool.getConnection = (callback) =>
      checkOut((error, connection) => {
        used.push(connection);
        callback(error, connection);
      });
    try {
      const result = await within(5_000, work(used)).catch((error: unknown) => error);
      return { result, used };
    } finally {
      if (own) {
        Object.defineProperty(pool, 'getConnection', own);
      } else {
        delete (pool as Partial<Pool>).getConnection;
      }
    }
  }

  beforeAll(async () => {
    t = await within(30_000, TestApp.start({ DB_POOL_SIZE: '3' }));
    probe = new ProbeRepository(t.app.get(UnitOfWork));
    pool = (t.dataSource.driver as unknown as { pool: Pool }).pool;
    // A read-only server refuses writes with 1290 (ER_OPTION_PREVENTS_STATEMENT), as a failed-over
    // primary does; SIGNAL raises the same error without changing the server for other tests.
    await t.dataSource.query('DROP PROCEDURE IF EXISTS gatehouse_test_read_only');
    await t.dataSource.query(
      "CREATE PROCEDURE gatehouse_test_read_only() SIGNAL SQLSTATE 'HY000' SET MYSQL_ERRNO = 1290, MESSAGE_TEXT = 'The MySQL server is running with the --read-only option'",
    );
  });

  afterAll(async () => {
    await within(30_000, t.dataSource.query('DROP PROCEDURE IF EXISTS gatehouse_test_read_only'));
    await within(30_000, t.close());
  });

  it('gives every connection back: 30 concurrent list requests on a pool of 3 all answer', async () => {
    const user = await within(15_000, newUser(t));
    const answers = await within(
      15_000,
      Promise.all(Array.from({ length: 30 }, () => t.request('/api/v1/todos', { token: user.accessToken }))),
    );
    expect(answers.map((res) => res.status)).toEqual(Array(30).fill(200));
  });

  it("sizes each connection's prepared-statement cache for a few statements, not mysql2's 16,000", async () => {
    const connection = await new Promise<PoolConnection>((resolve, reject) =>
      pool.getConnection((error, c) => (error ? reject(error) : resolve(c))),
    );
    const execute = (sql: string, values: unknown[]) =>
      new Promise<unknown>((resolve, reject) =>
        connection.execute(sql, values, (error, rows) => (error ? reject(error) : resolve(rows))),
      );
    try {
      expect(connection._statements.max).toBe(MAX_PREPARED_STATEMENTS);
      // A team's own prepared statements still work, and are kept.
      const before = connection._statements.size;
      await expect(execute('SELECT ? + 1 AS n', [41])).resolves.toEqual([{ n: 42 }]);
      await expect(execute('SELECT ? AS s', ['kept'])).resolves.toEqual([{ s: 'kept' }]);
      expect(connection._statements.size).toBe(before + 2);
      // More statements than the cache holds, each twice, all at once: a statement evicted (and closed
      // on the server) while another execute of it waits in the connection's queue must still answer.
      const count = MAX_PREPARED_STATEMENTS * 3;
      const sqls = Array.from({ length: count }, (_, i) => `SELECT ? + ${i} AS n`);
      const answers = await Promise.all([...sqls, ...sqls].map((sql) => execute(sql, [1])));
      expect(answers).toEqual([...sqls, ...sqls].map((_, i) => [{ n: 1 + (i % count) }]));
      expect(connection._statements.size).toBe(MAX_PREPARED_STATEMENTS);
    } finally {
      connection.release();
    }
    for (const each of pool._allConnections.toArray()) {
      expect(each._statements.max).toBe(MAX_PREPARED_STATEMENTS);
    }
  });

  it('gives the connection back after a failed statement, as a QueryFailedError', async () => {
    const { result, used } = await checkouts(() => probe.run('SELECT no_such_column FROM todos'));
    expect(result).toBeInstanceOf(QueryFailedError);
    expect((result as QueryFailedError).message).toContain('no_such_column');
    expect(used).toHaveLength(1);
    await eventually(() => expect(free(used[0])).toBe(true));
  });

  it('gives the connection back when a value cannot be formatted, before anything is sent', async () => {
    const unformattable = {
      toSqlString() {
        throw new Error('this value refuses to become SQL');
      },
    };
    const { result, used } = await checkouts(() => probe.run('SELECT ?', [unformattable]));
    expect(result).toBeInstanceOf(QueryFailedError);
    expect((result as QueryFailedError).message).toContain('refuses to become SQL');
    expect(used).toHaveLength(1);
    await eventually(() => expect(free(used[0])).toBe(true));
  });

  it('closes the connection instead of pooling it when the server answers read-only', async () => {
    const { result, used } = await checkouts(() => probe.run('CALL gatehouse_test_read_only()'));
    expect(result).toBeInstanceOf(QueryFailedError);
    expect((result as QueryFailedError).driverError).toMatchObject({ errno: 1290 });
    expect(used).toHaveLength(1);
    expect(pooled(used[0])).toBe(false);
    await expect(within(5_000, probe.run('SELECT 1 AS one'))).resolves.toEqual([{ one: 1 }]);
  });

  it('closes a connection cut mid-query, and a read queued behind it gets a working one', async () => {
    // All three connections busy, and a fourth read waiting for one of them.
    const { result } = await checkouts(async (used) => {
      const busy = [1, 2, 3].map(() => probe.run('SELECT SLEEP(0.5) AS slept'));
      await new Promise((resolve) => setTimeout(resolve, 100));
      const queued = probe.run('SELECT 2 AS two');
      await new Promise((resolve) => setTimeout(resolve, 50));
      const cut = used[0];
      cut.stream.destroy(Object.assign(new Error('cut by the test'), { code: 'ECONNRESET' }));
      const outcomes = await Promise.allSettled([...busy, queued]);
      return { outcomes, cut };
    });
    const { outcomes, cut } = result as { outcomes: PromiseSettledResult<unknown>[]; cut: PoolConnection };
    expect(outcomes.filter((outcome) => outcome.status === 'rejected')).toHaveLength(1);
    expect(outcomes[0]).toMatchObject({ status: 'rejected' });
    expect(outcomes[3]).toEqual({ status: 'fulfilled', value: [{ two: 2 }] });
    expect(pooled(cut)).toBe(false);
  });
});
