import type { EntityManager, EntityTarget, ObjectLiteral, Repository } from 'typeorm';
import type { UnitOfWork } from './unit-of-work.js';

/**
 * The one persistence shape: each table sits behind one repository class in the module that owns it,
 * extending this, with intent-named methods (`findByEmail`, `consume`). Every statement goes through
 * `repo` / `manager`, which join the caller's unit of work when one is open.
 */
export abstract class EntityRepository<T extends ObjectLiteral> {
  protected constructor(
    protected readonly uow: UnitOfWork,
    private readonly entity: EntityTarget<T>,
  ) {}

  /** The table, inside the open unit of work if there is one. */
  protected get repo(): Repository<T> {
    return this.uow.tx.getRepository(this.entity);
  }

  /** For statements that span tables or need raw SQL; also joins the open unit of work. */
  protected get manager(): EntityManager {
    return this.uow.tx;
  }
}
