import {
  type QueryRunner,
  Table,
  type TableColumnOptions,
  TableForeignKey,
  TableIndex,
  type TableIndexOptions,
} from 'typeorm';
import { timestampDefaults } from '../database/data-source.js';

/**
 * For a migration: creates a user-owned table with the columns of OwnedEntity (id, user_id with a
 * cascading foreign key, created_at, updated_at), `IDX_<name>_user_id_id` for the keyset list, and
 * the given columns; portable across MySQL/MariaDB and SQLite like every migration here.
 */
export async function createOwnedTable(
  q: QueryRunner,
  name: string,
  columns: TableColumnOptions[],
  indices: TableIndexOptions[] = [],
): Promise<void> {
  const mysql = ['mysql', 'mariadb'].includes(q.connection.driver.options.type);
  const int = mysql ? 'int' : 'integer';
  const now = timestampDefaults(mysql).createDateDefault;
  const timestamp = (column: string): TableColumnOptions => ({
    name: column,
    type: 'datetime',
    precision: 3,
    default: now,
  });
  await q.createTable(
    new Table({
      name,
      columns: [
        {
          name: 'id',
          type: int,
          unsigned: true,
          isPrimary: true,
          isGenerated: true,
          generationStrategy: 'increment',
        },
        { name: 'user_id', type: int, unsigned: true },
        ...columns,
        timestamp('created_at'),
        { ...timestamp('updated_at'), ...(mysql ? { onUpdate: now } : {}) },
      ],
      indices: [{ name: `IDX_${name}_user_id_id`, columnNames: ['user_id', 'id'] }, ...indices].map(
        (index) => new TableIndex(index),
      ),
      foreignKeys: [
        new TableForeignKey({
          columnNames: ['user_id'],
          referencedTableName: 'users',
          referencedColumnNames: ['id'],
          onDelete: 'CASCADE',
          onUpdate: 'NO ACTION',
        }),
      ],
      ...(mysql ? { engine: 'InnoDB' } : {}),
    }),
  );
}
