import { DefaultNamingStrategy, Table } from 'typeorm';

/**
 * Readable, deterministic constraint names (`FK_sessions_user_id`) instead of hashes, so that the
 * migrations and the entities name every foreign key the same way on MySQL and SQLite.
 */
export class GatehouseNamingStrategy extends DefaultNamingStrategy {
  override foreignKeyName(tableOrName: Table | string, columnNames: string[]): string {
    const table = typeof tableOrName === 'string' ? tableOrName : tableOrName.name;
    return `FK_${table.split('.').pop()}_${columnNames.join('_')}`;
  }
}
