import {
  type MigrationInterface,
  type QueryRunner,
  Table,
  TableColumn,
  type TableColumnOptions,
  TableForeignKey,
  TableIndex,
  type TableOptions,
} from 'typeorm';
import { timestampDefaults } from '../src/database/data-source.js';

/**
 * The TOTP second factor (issue 14, DESIGN §10): the sealed secret (and a pending one while set-up is
 * unconfirmed), when it was enabled and the last time step accepted (replay guard) on users; hashed
 * single-use recovery codes; and single-use, hashed, 5-minute mfaTokens beside the other one-time tokens.
 */
export class TotpSecondFactor1795430000000 implements MigrationInterface {
  name = 'TotpSecondFactor1795430000000';

  async up(q: QueryRunner): Promise<void> {
    const mysql = ['mysql', 'mariadb'].includes(q.connection.driver.options.type);
    const int = mysql ? 'int' : 'integer';
    const id = (name = 'id'): TableColumnOptions => ({
      name,
      type: int,
      unsigned: true,
      isPrimary: true,
      isGenerated: true,
      generationStrategy: 'increment',
    });
    const ts = (name: string, nullable = false): TableColumnOptions => ({
      name,
      type: 'datetime',
      precision: 3,
      isNullable: nullable,
    });
    const createdAt: TableColumnOptions = {
      ...ts('created_at'),
      default: timestampDefaults(mysql).createDateDefault,
    };
    const userId: TableColumnOptions = { name: 'user_id', type: int, unsigned: true };
    const table = (options: TableOptions) =>
      new Table({ ...options, ...(mysql ? { engine: 'InnoDB' } : {}) });
    const cascadeToUser = () =>
      new TableForeignKey({
        columnNames: ['user_id'],
        referencedTableName: 'users',
        referencedColumnNames: ['id'],
        onDelete: 'CASCADE',
        onUpdate: 'NO ACTION',
      });

    await q.addColumns('users', [
      new TableColumn({ name: 'totp_secret', type: 'varchar', length: '255', isNullable: true }),
      new TableColumn({ name: 'totp_pending_secret', type: 'varchar', length: '255', isNullable: true }),
      new TableColumn({ name: 'totp_enabled_at', type: 'datetime', precision: 3, isNullable: true }),
      new TableColumn({ name: 'totp_last_step', type: int, unsigned: true, isNullable: true }),
    ]);

    await q.createTable(
      table({
        name: 'mfa_recovery_codes',
        columns: [
          id(),
          userId,
          { name: 'code_hash', type: 'varchar', length: '64' },
          createdAt,
          ts('used_at', true),
        ],
        indices: [
          new TableIndex({
            name: 'UQ_mfa_recovery_codes_user_code',
            columnNames: ['user_id', 'code_hash'],
            isUnique: true,
          }),
        ],
        foreignKeys: [cascadeToUser()],
      }),
    );

    await q.createTable(
      table({
        name: 'mfa_login_tokens',
        columns: [
          id('token_id'),
          userId,
          { name: 'token_hash', type: 'varchar', length: '64' },
          ts('expiration_date'),
          createdAt,
          ts('used_at', true),
          { name: 'attempts', type: int, unsigned: true, default: 0 },
        ],
        indices: [
          new TableIndex({
            name: 'UQ_mfa_login_tokens_token_hash',
            columnNames: ['token_hash'],
            isUnique: true,
          }),
        ],
        foreignKeys: [cascadeToUser()],
      }),
    );
  }

  async down(q: QueryRunner): Promise<void> {
    await q.dropTable('mfa_login_tokens');
    await q.dropTable('mfa_recovery_codes');
    await q.dropColumns('users', ['totp_secret', 'totp_pending_secret', 'totp_enabled_at', 'totp_last_step']);
  }
}
