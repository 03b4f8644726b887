import {
  type MigrationInterface,
  type QueryRunner,
  Table,
  TableColumn,
  TableForeignKey,
  TableIndex,
} from 'typeorm';

/**
 * Keeps every rotated-out refresh token hash, so a replay of any of them (not only the last one)
 * revokes its session; the single previous_refresh_token_hash column it replaces only caught the last.
 */
export class RefreshTokenHistory1795400000000 implements MigrationInterface {
  name = 'RefreshTokenHistory1795400000000';

  async up(q: QueryRunner): Promise<void> {
    const mysql = ['mysql', 'mariadb'].includes(q.connection.driver.options.type);
    await q.createTable(
      new Table({
        name: 'refresh_token_history',
        columns: [
          { name: 'token_hash', type: 'varchar', length: '64', isPrimary: true },
          { name: 'session_id', type: mysql ? 'int' : 'integer', unsigned: true },
          { name: 'rotated_at', type: 'datetime', precision: 3 },
        ],
        indices: [
          new TableIndex({ name: 'IDX_refresh_token_history_session_id', columnNames: ['session_id'] }),
        ],
        foreignKeys: [
          new TableForeignKey({
            columnNames: ['session_id'],
            referencedTableName: 'sessions',
            referencedColumnNames: ['id'],
            onDelete: 'CASCADE',
            onUpdate: 'NO ACTION',
          }),
        ],
        ...(mysql ? { engine: 'InnoDB' } : {}),
      }),
    );
    await q.dropIndex('sessions', 'IDX_sessions_previous_refresh_token_hash');
    await q.dropColumn('sessions', 'previous_refresh_token_hash');
  }

  async down(q: QueryRunner): Promise<void> {
    await q.addColumn(
      'sessions',
      new TableColumn({
        name: 'previous_refresh_token_hash',
        type: 'varchar',
        length: '64',
        isNullable: true,
      }),
    );
    await q.createIndex(
      'sessions',
      new TableIndex({
        name: 'IDX_sessions_previous_refresh_token_hash',
        columnNames: ['previous_refresh_token_hash'],
      }),
    );
    await q.dropTable('refresh_token_history');
  }
}
