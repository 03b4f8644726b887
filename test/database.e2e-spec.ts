import { setTimeout as sleep } from 'node:timers/promises';
import { UnitOfWork } from '../src/database/unit-of-work.js';
import { AuditService } from '../src/audit/audit.service.js';
import { TestApp } from './support/test-app.js';

/**
 * Transactions and the statements around them keep their meaning under concurrency on both databases
 * (SQLite has a single connection, which the data source has to make safe).
 */
describe('concurrent transactions', () => {
  let t: TestApp;

  beforeAll(async () => {
    t = await TestApp.start();
  });

  afterAll(async () => {
    await t.close();
  });

  const count = async (event: string) =>
    Number(
      (await t.dataSource.query('SELECT COUNT(*) AS n FROM audit_events WHERE event = ?', [event]))[0].n,
    );

  it('keeps a write made beside a transaction that rolls back', async () => {
    const audit = t.app.get(AuditService);
    const uow = t.app.get(UnitOfWork);
    const doomed = uow.withTransaction(async () => {
      await audit.record('test.doomed', {});
      await sleep(100);
      throw new Error('roll back');
    });
    await sleep(20);
    await audit.record('test.bystander');
    await expect(doomed).rejects.toThrow('roll back');
    expect(await count('test.doomed')).toBe(0);
    expect(await count('test.bystander')).toBe(1);
  });

  it('runs overlapping transactions without errors and keeps each one whole', async () => {
    const audit = t.app.get(AuditService);
    const uow = t.app.get(UnitOfWork);
    await Promise.all(
      Array.from({ length: 10 }, (_, i) =>
        uow.withTransaction(async () => {
          await audit.record('test.overlap', { metadata: { i } });
          await sleep(5);
          await audit.record('test.overlap', { metadata: { i } });
        }),
      ),
    );
    expect(await count('test.overlap')).toBe(20);
  });
});
