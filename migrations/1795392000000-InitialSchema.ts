import {
  type MigrationInterface,
  type QueryRunner,
  Table,
  type TableColumnOptions,
  TableForeignKey,
  TableIndex,
  type TableOptions,
} from 'typeorm';
import { timestampDefaults } from '../src/database/data-source.js';

/**
 * The whole data model of DESIGN.md §3, written with TypeORM's portable schema API so the same file runs
 * on MySQL/MariaDB and SQLite. MySQL specifics (InnoDB, utf8mb4, byte-wise email collation, DATETIME(3))
 * are applied only there.
 */
export class InitialSchema1795392000000 implements MigrationInterface {
  name = 'InitialSchema1795392000000';

  async up(q: QueryRunner): Promise<void> {
    const mysql = ['mysql', 'mariadb'].includes(q.connection.driver.options.type);
    // SQLite reads every integer column back as INTEGER (and only auto-increments an INTEGER PRIMARY KEY).
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
    const now = timestampDefaults(mysql).createDateDefault;
    const createdAt: TableColumnOptions = { ...ts('created_at'), default: now };
    const updatedAt: TableColumnOptions = {
      ...ts('updated_at'),
      default: now,
      ...(mysql ? { onUpdate: now } : {}),
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

    await q.createTable(
      table({
        name: 'users',
        columns: [
          id(),
          // Byte-wise collation: accent- or case-insensitive collations must never merge two addresses.
          {
            name: 'email',
            type: 'varchar',
            length: '255',
            ...(mysql ? { charset: 'utf8mb4', collation: 'utf8mb4_bin' } : {}),
          },
          { name: 'username', type: 'varchar', length: '50', isNullable: true },
          { name: 'password_hash', type: 'varchar', length: '255' },
          { name: 'is_verified', type: 'boolean', default: 0 },
          { name: 'role', type: 'varchar', length: '16', default: "'user'" },
          { name: 'failed_login_count', type: int, unsigned: true, default: 0 },
          { name: 'lockout_count', type: int, unsigned: true, default: 0 },
          ts('locked_until', true),
          ts('disabled_at', true),
          createdAt,
          updatedAt,
          ts('last_login_at', true),
        ],
        indices: [
          new TableIndex({ name: 'UQ_users_email', columnNames: ['email'], isUnique: true }),
          new TableIndex({ name: 'UQ_users_username', columnNames: ['username'], isUnique: true }),
        ],
      }),
    );

    for (const name of ['email_verification_tokens', 'password_reset_tokens']) {
      await q.createTable(
        table({
          name,
          columns: [
            id('token_id'),
            userId,
            { name: 'token_hash', type: 'varchar', length: '64' },
            ts('expiration_date'),
            createdAt,
            ts('used_at', true),
          ],
          indices: [
            new TableIndex({ name: `UQ_${name}_token_hash`, columnNames: ['token_hash'], isUnique: true }),
          ],
          foreignKeys: [cascadeToUser()],
        }),
      );
    }

    await q.createTable(
      table({
        name: 'sessions',
        columns: [
          id(),
          userId,
          { name: 'refresh_token_hash', type: 'varchar', length: '64' },
          { name: 'previous_refresh_token_hash', type: 'varchar', length: '64', isNullable: true },
          ts('expires_at'),
          ts('revoked_at', true),
          { name: 'revoked_reason', type: 'varchar', length: '32', isNullable: true },
          createdAt,
          ts('last_used_at', true),
          { name: 'ip', type: 'varchar', length: '45', isNullable: true },
          { name: 'user_agent', type: 'varchar', length: '255', isNullable: true },
        ],
        indices: [
          new TableIndex({ name: 'IDX_sessions_user_id', columnNames: ['user_id'] }),
          new TableIndex({
            name: 'UQ_sessions_refresh_token_hash',
            columnNames: ['refresh_token_hash'],
            isUnique: true,
          }),
          new TableIndex({
            name: 'IDX_sessions_previous_refresh_token_hash',
            columnNames: ['previous_refresh_token_hash'],
          }),
        ],
        foreignKeys: [cascadeToUser()],
      }),
    );

    await q.createTable(
      table({
        name: 'todos',
        columns: [
          id(),
          userId,
          { name: 'title', type: 'varchar', length: '200' },
          { name: 'description', type: 'text', isNullable: true },
          { name: 'completed', type: 'boolean', default: 0 },
          ts('due_at', true),
          createdAt,
          updatedAt,
        ],
        indices: [
          new TableIndex({ name: 'IDX_todos_user_id_id', columnNames: ['user_id', 'id'] }),
          new TableIndex({
            name: 'IDX_todos_user_id_completed_id',
            columnNames: ['user_id', 'completed', 'id'],
          }),
        ],
        foreignKeys: [cascadeToUser()],
      }),
    );

    await q.createTable(
      table({
        name: 'audit_events',
        columns: [
          { ...id(), type: mysql ? 'bigint' : 'integer' },
          ts('occurred_at'),
          { name: 'event', type: 'varchar', length: '64' },
          { name: 'outcome', type: 'varchar', length: '16' },
          { name: 'user_id', type: int, unsigned: true, isNullable: true },
          { name: 'actor_user_id', type: int, unsigned: true, isNullable: true },
          { name: 'ip', type: 'varchar', length: '45', isNullable: true },
          { name: 'user_agent', type: 'varchar', length: '255', isNullable: true },
          { name: 'request_id', type: 'varchar', length: '128', isNullable: true },
          { name: 'metadata', type: 'text', isNullable: true },
        ],
        indices: [
          new TableIndex({ name: 'IDX_audit_events_user_id_id', columnNames: ['user_id', 'id'] }),
          new TableIndex({ name: 'IDX_audit_events_event_id', columnNames: ['event', 'id'] }),
          new TableIndex({ name: 'IDX_audit_events_outcome_id', columnNames: ['outcome', 'id'] }),
          new TableIndex({ name: 'IDX_audit_events_occurred_at', columnNames: ['occurred_at'] }),
        ],
      }),
    );

    await q.createTable(
      table({
        name: 'mail_outbox',
        columns: [
          id(),
          { name: 'template', type: 'varchar', length: '64' },
          { name: 'recipient', type: 'varchar', length: '255' },
          { name: 'payload', type: 'text' },
          { name: 'status', type: 'varchar', length: '16', default: "'pending'" },
          { name: 'attempts', type: int, unsigned: true, default: 0 },
          ts('next_attempt_at'),
          { name: 'last_error', type: 'varchar', length: '1000', isNullable: true },
          { name: 'locked_by', type: 'varchar', length: '64', isNullable: true },
          ts('locked_until', true),
          createdAt,
          ts('sent_at', true),
        ],
        indices: [
          new TableIndex({
            name: 'IDX_mail_outbox_status_next_attempt_at',
            columnNames: ['status', 'next_attempt_at'],
          }),
        ],
      }),
    );
  }

  async down(q: QueryRunner): Promise<void> {
    for (const name of [
      'mail_outbox',
      'audit_events',
      'todos',
      'sessions',
      'password_reset_tokens',
      'email_verification_tokens',
      'users',
    ]) {
      await q.dropTable(name);
    }
  }
}
