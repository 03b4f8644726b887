import { HttpStatus } from '@nestjs/common';
import type { QueryDeepPartialEntity } from 'typeorm/query-builder/QueryPartialEntity.js';
import type { AuditService } from '../audit/audit.service.js';
import type { AuthUser } from '../common/auth/auth-user.js';
import { unauthenticated } from '../common/auth/unauthenticated.js';
import { mapPage, type Page, type PageQueryDto } from '../common/pagination.js';
import { isForeignKeyViolation } from '../database/driver-errors.js';
import { AppException } from '../common/problem.js';
import type { RequestMeta } from '../common/request-meta.js';
import { Transactional, type UnitOfWork } from '../database/unit-of-work.js';
import type { DomainEventName, DomainEvents } from '../events/domain-events.js';
import type { OwnedRepository, OwnedRow } from './owned.repository.js';

/** The payload of `<name>.created` and `<name>.deleted`: who and which row, nothing of its content. */
export interface OwnedResourceEvent {
  userId: number;
  id: number;
}

/** The payload of `<name>.updated`: also the names of the fields that changed. */
export interface OwnedResourceUpdatedEvent extends OwnedResourceEvent {
  fields: string[];
}

/**
 * The events an owned resource publishes. A feature adds them to the event map in one line:
 * `declare module '../events/domain-events.js' { interface DomainEventMap extends OwnedResourceEvents<'note'> {} }`.
 */
export type OwnedResourceEvents<N extends string> = {
  [K in `${N}.created` | `${N}.deleted`]: OwnedResourceEvent;
} & { [K in `${N}.updated`]: OwnedResourceUpdatedEvent };

export interface OwnedResourceSpec<T, C, U, R> {
  /** Singular and lower-case: events and audit rows are `<name>.created|updated|deleted`, the 404 code `<NAME>_NOT_FOUND`. */
  name: string;
  /** The column values of a new row, from the create body (the owner is added by the repository). */
  fromCreate(dto: C): QueryDeepPartialEntity<T>;
  /** Only the columns the update body sets; an empty object changes nothing. */
  fromUpdate(dto: U): QueryDeepPartialEntity<T>;
  /** What a client sees, built field by field so nothing internal (user_id) leaks. */
  toResponse(row: T): R;
}

/**
 * CRUD for a user-owned resource, by construction: every call takes the caller first and scopes the
 * row to them (someone else's row answers exactly like a missing one), every change is audited in its
 * own unit of work and published as a domain event after commit. A feature extends this with its
 * repository and spec, and adds only what differs (filters, extra rules).
 */
export abstract class OwnedResources<T extends OwnedRow, C, U, R> {
  protected constructor(
    protected readonly uow: UnitOfWork,
    protected readonly repository: OwnedRepository<T>,
    private readonly audit: AuditService,
    private readonly events: DomainEvents,
    private readonly spec: OwnedResourceSpec<T, C, U, R>,
  ) {}

  @Transactional()
  async create(caller: AuthUser, dto: C, meta: RequestMeta): Promise<R> {
    let id: number;
    try {
      id = await this.repository.insertOwned(caller.id, this.spec.fromCreate(dto));
    } catch (error) {
      // The caller's account was deleted after its access token was checked: it is no one now (401),
      // as the very next request would be told, never a 500.
      if (isForeignKeyViolation(error)) {
        throw unauthenticated();
      }
      throw error;
    }
    await this.changed('created', caller, meta, { userId: caller.id, id });
    return this.spec.toResponse(this.orNotFound(await this.repository.findOwned(caller.id, id)));
  }

  async get(caller: AuthUser, id: number): Promise<R> {
    return this.spec.toResponse(this.orNotFound(await this.repository.findOwned(caller.id, id)));
  }

  async list(caller: AuthUser, page: PageQueryDto): Promise<Page<R>> {
    return mapPage(await this.repository.listOwned(caller.id, page), (row) => this.spec.toResponse(row));
  }

  /**
   * A conditional UPDATE (owner and id in its WHERE), then the row read back in the same unit of work:
   * no window in which a concurrent DELETE could be overwritten or half-applied.
   */
  @Transactional()
  async update(caller: AuthUser, id: number, dto: U, meta: RequestMeta): Promise<R> {
    const changes = this.spec.fromUpdate(dto);
    const fields = Object.keys(changes);
    // An empty patch changes nothing, and still answers 404 for a row that is not the caller's.
    if (fields.length > 0) {
      if (!(await this.repository.updateOwned(caller.id, id, changes))) {
        throw this.notFound();
      }
      await this.changed('updated', caller, meta, { userId: caller.id, id, fields });
    }
    return this.get(caller, id);
  }

  @Transactional()
  async remove(caller: AuthUser, id: number, meta: RequestMeta): Promise<void> {
    if (!(await this.repository.deleteOwned(caller.id, id))) {
      throw this.notFound();
    }
    await this.changed('deleted', caller, meta, { userId: caller.id, id });
  }

  /** The one 404 for a row that is missing and for one that is someone else's: same status, same body. */
  protected notFound(): AppException {
    const { name } = this.spec;
    return new AppException(HttpStatus.NOT_FOUND, `${name.toUpperCase()}_NOT_FOUND`, `No such ${name}.`);
  }

  protected orNotFound(row: T | null): T {
    if (!row) {
      throw this.notFound();
    }
    return row;
  }

  private async changed(
    action: 'created' | 'updated' | 'deleted',
    caller: AuthUser,
    meta: RequestMeta,
    event: OwnedResourceEvent | OwnedResourceUpdatedEvent,
  ): Promise<void> {
    const { name } = this.spec;
    const { id, ...rest } = event;
    // Ids and field names only: a title or body never reaches the trail.
    const metadata = { [`${name}Id`]: id, ...('fields' in rest ? { fields: rest.fields } : {}) };
    await this.audit.record(`${name}.${action}`, { userId: caller.id, meta, metadata });
    // The name is `<name>.<action>`, which the feature declared with OwnedResourceEvents<name>.
    this.events.publish(`${name}.${action}` as DomainEventName, event);
  }
}
