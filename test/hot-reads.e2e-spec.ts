import { QueryFailedError } from 'typeorm';
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

interface PoolInternals {
  _allConnections: { length: number };
  _freeConnections: { length: number };
}

/**
 * Hot reads outside a unit of work check a connection out of mysql2's pool, query it and give it back
 * themselves (EntityRepository.rows): each path must end with the connection back in the pool, or
 * closed when the server has turned read-only.
 */
(usingMysql() ? describe : describe.skip)('hot reads on the pool (MySQL)', () => {
  let t: TestApp;
  let probe: ProbeRepository;
  let pool: PoolInternals;
  const inUse = () => pool._allConnections.length - pool._freeConnections.length;

  beforeAll(async () => {
    t = await within(30_000, TestApp.start({ DB_POOL_SIZE: '3' }));
    probe = new ProbeRepository(t.app.get(UnitOfWork));
    pool = (t.dataSource.driver as unknown as { pool: PoolInternals }).pool;
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

  it('gives every connection back: 30 concurrent list requests on a pool of 3 all answer, and none is left checked out', async () => {
    const user = await within(15_000, newUser(t));
    const answers = await within(
      15_000,
      Promise.all(Array.from({ length: 30 }, () => t.request('/api/v1/todos', { token: user.accessToken }))),
    );
    expect(answers.map((res) => res.status)).toEqual(Array(30).fill(200));
    expect(inUse()).toBe(0);
    expect(pool._allConnections.length).toBeLessThanOrEqual(3);
  });

  it('gives the connection back after a failed statement, as a QueryFailedError', async () => {
    await probe.run('SELECT 1');
    const connections = pool._allConnections.length;
    const failure = await probe.run('SELECT no_such_column FROM todos').catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(QueryFailedError);
    expect((failure as QueryFailedError).message).toContain('no_such_column');
    expect(inUse()).toBe(0);
    expect(pool._allConnections.length).toBe(connections);
    // One more read than the pool has connections: the failed read's connection must be back.
    await within(5_000, Promise.all([1, 2, 3, 4].map(() => probe.run('SELECT 1'))));
  });

  it('gives the connection back when a value cannot be formatted, before anything is sent', async () => {
    await probe.run('SELECT 1');
    const connections = pool._allConnections.length;
    const unformattable = {
      toSqlString() {
        throw new Error('this value refuses to become SQL');
      },
    };
    const failure = await probe.run('SELECT ?', [unformattable]).catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(QueryFailedError);
    expect((failure as QueryFailedError).message).toContain('refuses to become SQL');
    expect(inUse()).toBe(0);
    expect(pool._allConnections.length).toBe(connections);
    await within(5_000, Promise.all([1, 2, 3, 4].map(() => probe.run('SELECT 1'))));
  });

  it('closes the connection instead of pooling it when the server answers read-only, and the next read gets a fresh one', async () => {
    await probe.run('SELECT 1');
    const connections = pool._allConnections.length;
    const failure = await probe.run('CALL gatehouse_test_read_only()').catch((error: unknown) => error);
    expect(failure).toBeInstanceOf(QueryFailedError);
    expect((failure as QueryFailedError).driverError).toMatchObject({ errno: 1290 });
    expect(pool._allConnections.length).toBe(connections - 1);
    expect(inUse()).toBe(0);
    await expect(within(5_000, probe.run('SELECT 1 AS one'))).resolves.toEqual([{ one: 1 }]);
  });
});
