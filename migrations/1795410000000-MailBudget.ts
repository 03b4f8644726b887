import { type MigrationInterface, type QueryRunner, Table, TableColumn, TableIndex } from 'typeorm';

/**
 * Issue 12: a verification link carries the password hash of the registration that asked for it
 * (verifying sets it, so a stranger who registered the address first keeps no password), and
 * mail_budget holds the per-recipient mail budget, keyed by a hash of the canonical address.
 */
export class MailBudget1795410000000 implements MigrationInterface {
  name = 'MailBudget1795410000000';

  async up(q: QueryRunner): Promise<void> {
    const mysql = ['mysql', 'mariadb'].includes(q.connection.driver.options.type);
    await q.addColumn(
      'email_verification_tokens',
      new TableColumn({ name: 'password_hash', type: 'varchar', length: '255', isNullable: true }),
    );
    await q.createTable(
      new Table({
        name: 'mail_budget',
        columns: [
          { name: 'recipient_key', type: 'varchar', length: '64', isPrimary: true },
          { name: 'kind', type: 'varchar', length: '32', isPrimary: true },
          { name: 'window_started_at', type: 'datetime', precision: 3 },
          { name: 'count', type: mysql ? 'int' : 'integer', unsigned: true },
          { name: 'taken_by', type: 'varchar', length: '32' },
        ],
        indices: [
          new TableIndex({ name: 'IDX_mail_budget_window_started_at', columnNames: ['window_started_at'] }),
        ],
        ...(mysql ? { engine: 'InnoDB' } : {}),
      }),
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.dropTable('mail_budget');
    await q.dropColumn('email_verification_tokens', 'password_hash');
  }
}
