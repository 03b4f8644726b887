import type { EntityTarget, FindOptionsWhere, SelectQueryBuilder } from 'typeorm';
import type { QueryDeepPartialEntity } from 'typeorm/query-builder/QueryPartialEntity.js';
import { type Page, type PageQueryDto, paginate } from '../common/pagination.js';
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
 * intent-named queries (filters, index hints) on top of `ownedQuery()`.
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
    return paginate(this.ownedQuery(ownerId), page);
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
    const result = await this.repo.update(this.owned(ownerId, id), changes);
    return (result.affected ?? 0) > 0;
  }

  /** One conditional DELETE; false when no row with this id belongs to the owner. */
  async deleteOwned(ownerId: number, id: number): Promise<boolean> {
    const result = await this.repo.delete(this.owned(ownerId, id));
    return (result.affected ?? 0) > 0;
  }
}
