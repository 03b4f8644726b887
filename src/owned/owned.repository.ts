import type { EntityTarget, FindOptionsWhere, SelectQueryBuilder } from 'typeorm';
import type { QueryDeepPartialEntity } from 'typeorm/query-builder/QueryPartialEntity.js';
import {
  PAGE_LIMIT_DEFAULT,
  type Page,
  type PageQueryDto,
  decodeCursor,
  pageOf,
} from '../common/pagination.js';
import { EntityRepository } from '../database/entity-repository.js';
import type { UnitOfWork } from '../database/unit-of-work.js';

/** A row that belongs to one user: the shape every user-owned table shares. */
export interface OwnedRow {
  id: number;
  userId: number;
}

/**
 * Data access for a user-owned table. Every statement starts from `owned()`, the one place an owner's
 * id enters a WHERE clause, so no method can address a row without its owner. A subclass adds its
 * intent-named queries on top of `ownedPage()` (filters, index hints) or `ownedQuery()`.
 */
export abstract class OwnedRepository<T extends OwnedRow> extends EntityRepository<T> {
  protected constructor(uow: UnitOfWork, entity: EntityTarget<T>) {
    super(uow, entity);
  }

  protected owned(ownerId: number, id?: number): FindOptionsWhere<T> {
    return (id === undefined ? { userId: ownerId } : { userId: ownerId, id }) as FindOptionsWhere<T>;
  }

  /** A SELECT already scoped to the owner, aliased `row`, for lists and custom reads. */
  protected ownedQuery(ownerId: number): SelectQueryBuilder<T> {
    return this.repo.createQueryBuilder('row').where(this.owned(ownerId));
  }

  findOwned(ownerId: number, id: number): Promise<T | null> {
    return this.repo.findOneBy(this.owned(ownerId, id));
  }

  /** Newest first, keyset-paginated; the table needs an index on (user_id, id). */
  listOwned(ownerId: number, page: PageQueryDto): Promise<Page<T>> {
    return this.ownedPage(ownerId, page);
  }

  /**
   * One page of the owner's rows, newest first, in hand-written SQL (a list is the hot path of every
   * client; the query builder cost more than the query): `WHERE user_id = ? [AND <filter> = ?]
   * [AND id < <cursor>] ORDER BY id DESC LIMIT n + 1`. `index` is forced on MySQL, where the optimizer
   * may otherwise walk a big owner's whole key prefix (see TodosRepository); SQLite has no hints.
   */
  protected async ownedPage(
    ownerId: number,
    { cursor, limit = PAGE_LIMIT_DEFAULT }: PageQueryDto,
    { filter = {}, index }: { filter?: Partial<Record<keyof T & string, unknown>>; index?: string } = {},
  ): Promise<Page<T>> {
    const { selectList, table, mysql } = this.raw;
    const id = this.column('id');
    const conditions = [`${this.column('userId')} = ?`];
    const parameters: unknown[] = [ownerId];
    for (const [property, value] of Object.entries(filter) as Array<[keyof T & string, unknown]>) {
      if (value !== undefined) {
        conditions.push(`${this.column(property)} = ?`);
        parameters.push(this.persisted(property, value));
      }
    }
    if (cursor !== undefined) {
      conditions.push(`${id} < ?`);
      parameters.push(decodeCursor(cursor));
    }
    const hint = mysql && index ? ` FORCE INDEX (${index})` : '';
    const rows = await this.selectRaw(
      `SELECT ${selectList} FROM ${table}${hint} WHERE ${conditions.join(' AND ')} ORDER BY ${id} DESC LIMIT ?`,
      [...parameters, limit + 1],
    );
    return pageOf(rows, limit);
  }

  async insertOwned(ownerId: number, values: QueryDeepPartialEntity<T>): Promise<number> {
    const { identifiers } = await this.repo.insert({
      ...values,
      userId: ownerId,
    });
    return Number(identifiers[0].id);
  }

  /** One conditional UPDATE; false when no row with this id belongs to the owner. */
  async updateOwned(ownerId: number, id: number, changes: QueryDeepPartialEntity<T>): Promise<boolean> {
    const result = await this.updateWhere(this.owned(ownerId, id), changes);
    return (result.affected ?? 0) > 0;
  }

  /** One conditional DELETE; false when no row with this id belongs to the owner. */
  async deleteOwned(ownerId: number, id: number): Promise<boolean> {
    const result = await this.repo.delete(this.owned(ownerId, id));
    return (result.affected ?? 0) > 0;
  }
}
