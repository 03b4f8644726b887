import { type MigrationInterface, type QueryRunner, Table, TableColumn, TableIndex } from 'typeorm';

/**
 * Failed sign-ins are counted per (address, client) and account-wide in their own table, keyed by a
 * hash of the address, so an address with no account behaves exactly like one with an account and
 * one client's failures never lock the owner out on another (issue 12, items 3 and 4). The per-user
 * counters and the doubling lockout they replace go.
 */
export class LoginFailures1795420000000 implements MigrationInterface {
  name = 'LoginFailures1795420000000';

  async up(q: QueryRunner): Promise<void> {
    const mysql = ['mysql', 'mariadb'].includes(q.connection.driver.options.type);
    await q.createTable(
      new Table({
        name: 'login_failures',
        columns: [
          { name: 'email_hash', type: 'varchar', length: '64', isPrimary: true },
          { name: 'client', type: 'varchar', length: '64', isPrimary: true },
          { name: 'failures', type: mysql ? 'int' : 'integer', unsigned: true, default: 0 },
          { name: 'locked_until', type: 'datetime', precision: 3, isNullable: true },
          { name: 'updated_at', type: 'datetime', precision: 3 },
        ],
        indices: [new TableIndex({ name: 'IDX_login_failures_updated_at', columnNames: ['updated_at'] })],
        ...(mysql ? { engine: 'InnoDB' } : {}),
      }),
    );
    await q.dropColumns('users', ['failed_login_count', 'lockout_count', 'locked_until']);
  }

  async down(q: QueryRunner): Promise<void> {
    const mysql = ['mysql', 'mariadb'].includes(q.connection.driver.options.type);
    const int = mysql ? 'int' : 'integer';
    await q.addColumns('users', [
      new TableColumn({ name: 'failed_login_count', type: int, unsigned: true, default: 0 }),
      new TableColumn({ name: 'lockout_count', type: int, unsigned: true, default: 0 }),
      new TableColumn({ name: 'locked_until', type: 'datetime', precision: 3, isNullable: true }),
    ]);
    await q.dropTable('login_failures');
  }
}
