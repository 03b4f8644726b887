import type { ColumnMetadata } from 'typeorm/metadata/ColumnMetadata.js';
import type { EntityMetadata } from 'typeorm/metadata/EntityMetadata.js';
import {
  type EntityManager,
  type EntityTarget,
  type FindOptionsWhere,
  type ObjectLiteral,
  QueryFailedError,
  type Repository,
  type UpdateResult,
} from 'typeorm';
import type { QueryDeepPartialEntity } from 'typeorm/query-builder/QueryPartialEntity.js';
import { currentTimestamp, isMysqlFamily } from './data-source.js';
import type { UnitOfWork } from './unit-of-work.js';

/** mysql2's callback pool and its connections, as far as hot reads use them. */
interface MysqlPool {
  getConnection(callback: (error: Error | null, connection: MysqlPoolConnection) => void): void;
}

interface MysqlPoolConnection {
  query(sql: string, values: unknown[], callback: (error: QueryError | null, rows: unknown) => void): void;
  release(): void;
  destroy(): void;
}

type QueryError = Error & { errno?: number; fatal?: boolean };

/**
 * Errors after which the server has turned read-only (ER_OPTION_PREVENTS_STATEMENT,
 * ER_CANT_EXECUTE_IN_READ_ONLY_TRANSACTION, ER_READ_ONLY_MODE), as a primary does when it fails over.
 * mysql2's `pool.query` destroys the connection on these too.
 */
const READ_ONLY_ERRNOS = new Set([1290, 1792, 1836]);

/**
 * Whether a failed query's connection must be closed rather than pooled: it is broken (a fatal error:
 * the socket was cut, the protocol went wrong), or its server is read-only. mysql2 calls the query's
 * callback before the pool learns that a connection died, so releasing a broken one would hand it to
 * the next waiting checkout.
 */
function mustClose(error: QueryError): boolean {
  return error.fatal === true || (error.errno !== undefined && READ_ONLY_ERRNOS.has(error.errno));
}

/**
 * A selected column and the property its value goes to, or null when TypeORM's `setEntityValue` must
 * place it (a column of an embedded object, or a relation's virtual join column). For any other
 * column `setEntityValue` comes down to `entity[propertyName] = value`, but every call of it allocates
 * a context for a closure declared in its embedded branch: 8 KB of garbage per page of 20 todos, 8% of
 * the request's (Node 24's sampling heap profiler), so the value is set here.
 */
interface HydratedColumn {
  column: ColumnMetadata;
  databaseName: string;
  propertyName: string | null;
}

/** What hand-written SQL on an entity needs, worked out once per repository. */
interface RawShape {
  metadata: EntityMetadata;
  /**
   * Selectable columns by property path (`size.width` for a column of an embedded `size`), once each (a
   * relation's join column shares its explicit column).
   */
  columns: Map<string, ColumnMetadata>;
  /** The same columns as a list, each with how a row's value is set on an entity (`selectRaw`). */
  hydrated: readonly HydratedColumn[];
  /**
   * A new, empty entity, as `metadata.create()` makes it. That also runs a closure per lazy relation
   * and names the type when the data source asks for it; without either it is `new Entity()`, made
   * here without the closure and its context that `create()` allocates for every row.
   */
  construct: () => ObjectLiteral;
  /** `"id", "user_id", …` quoted for the dialect. */
  selectList: string;
  /** The quoted table name. */
  table: string;
  mysql: boolean;
  /** mysql2's pool on MySQL, for reads outside a unit of work; null on SQLite. */
  pool: MysqlPool | null;
}

/**
 * The one persistence shape: each table sits behind one repository class in the module that owns it,
 * extending this, with intent-named methods (`findByEmail`, `consume`). Every statement goes through
 * `repo` / `manager`, which join the caller's unit of work when one is open.
 *
 * Reads on the authenticated hot path (a profile, a list page) may use `selectRaw`: hand-written SQL
 * whose rows are hydrated by TypeORM's own driver, so they come back as the same entities a
 * `repo.find…` would return, without the query builder's cost per request.
 */
export abstract class EntityRepository<T extends ObjectLiteral> {
  private shape?: RawShape;

  protected constructor(
    protected readonly uow: UnitOfWork,
    private readonly entity: EntityTarget<T>,
  ) {}

  /**
   * The table, inside the open unit of work if there is one. Without `update`: `updateWhere` is the
   * one that keeps updated_at to the millisecond, so the compiler sends every UPDATE through it.
   */
  protected get repo(): Omit<Repository<T>, 'update'> {
    return this.table;
  }

  private get table(): Repository<T> {
    return this.uow.tx.getRepository(this.entity);
  }

  /** For statements that span tables or need raw SQL; also joins the open unit of work. */
  protected get manager(): EntityManager {
    return this.uow.tx;
  }

  /** The quoted select list, table name and dialect for hand-written SQL on this entity. */
  protected get raw(): Readonly<RawShape> {
    if (!this.shape) {
      const dataSource = this.manager.connection;
      const metadata = dataSource.getMetadata(this.entity);
      const columns = new Map<string, ColumnMetadata>();
      const seen = new Set<string>();
      for (const column of metadata.columns) {
        if (column.isSelect && !column.isVirtual && !seen.has(column.databaseName)) {
          seen.add(column.databaseName);
          columns.set(column.propertyPath, column);
        }
      }
      const quote = (name: string) => dataSource.driver.escape(name);
      const mysql = isMysqlFamily(dataSource);
      const target = metadata.target;
      const construct =
        typeof target === 'function' && metadata.lazyRelations.length === 0 && !dataSource.options.typename
          ? () => new (target as new () => ObjectLiteral)()
          : () => metadata.create() as ObjectLiteral;
      this.shape = {
        metadata,
        columns,
        hydrated: [...columns.values()].map((column) => ({
          column,
          databaseName: column.databaseName,
          propertyName:
            column.embeddedMetadata || (column.isVirtual && column.referencedColumn)
              ? null
              : column.propertyName,
        })),
        construct,
        selectList: [...columns.values()].map((column) => quote(column.databaseName)).join(', '),
        table: quote(metadata.tableName),
        mysql,
        pool: mysql ? ((dataSource.driver as unknown as { pool?: MysqlPool }).pool ?? null) : null,
      };
    }
    return this.shape;
  }

  /**
   * What an UPDATE of this table sets besides its changes: the updated_at column (if it has one) to
   * the millisecond, like its default. TypeORM's own stamp is CURRENT_TIMESTAMP, whole seconds: a
   * todo edited in the second it was created showed an `updatedAt` before its `createdAt`.
   */
  protected get stamp(): QueryDeepPartialEntity<T> {
    const column = this.raw.metadata.updateDateColumn;
    const now = currentTimestamp(this.raw.mysql);
    return (column ? { [column.propertyName]: () => now } : {}) as QueryDeepPartialEntity<T>;
  }

  /** UPDATE … WHERE with the `stamp`; a change that names updated_at itself wins. */
  protected updateWhere(
    where: FindOptionsWhere<T>,
    changes: QueryDeepPartialEntity<T>,
  ): Promise<UpdateResult> {
    return this.table.update(where, { ...this.stamp, ...changes });
  }

  private columnOf(property: string): ColumnMetadata {
    const column = this.raw.columns.get(property);
    if (!column) {
      throw new Error(`${property} is not a selectable column`);
    }
    return column;
  }

  /** A column's quoted name, by property (`userId` → `"user_id"`). */
  protected column(property: keyof T & string): string {
    return this.manager.connection.driver.escape(this.columnOf(property).databaseName);
  }

  /** A value as the driver stores it in this property's column (booleans and dates differ by dialect). */
  protected persisted(property: keyof T & string, value: unknown): unknown {
    return this.manager.connection.driver.preparePersistentValue(value, this.columnOf(property));
  }

  /**
   * The rows of a hand-written read (`?` placeholders), in the open unit of work if there is one.
   * Outside one, on MySQL, straight on the driver's pool: TypeORM's path (a query runner per query,
   * its broadcasts and mysql2's promise wrapper, which captures a stack trace per query) cost as much
   * as the query on the authenticated hot path. Errors are wrapped as TypeORM's would be, so the
   * exception filter, the dependency check and log redaction see the same QueryFailedError.
   *
   * A connection is checked out, queried and released here rather than through mysql2's
   * `pool.query()`, which wraps each query's callback in a closure over its own scope. With that
   * closure, V8's young-generation collections kept much of what requests had allocated: at one
   * connection 5-20 MB survived each scavenge instead of kilobytes, to be copied and then promoted
   * (bench/scavenge.mjs; bench/results/2026-12-06-scavenge-survivors.md).
   */
  protected rows<R>(sql: string, parameters: unknown[]): Promise<R[]> {
    const { pool } = this.raw;
    if (pool === null || this.uow.isTransactionActive()) {
      return this.manager.query(sql, parameters);
    }
    return new Promise((resolve, reject) => {
      pool.getConnection((checkoutError, connection) => {
        if (checkoutError) {
          reject(new QueryFailedError(sql, parameters, checkoutError));
          return;
        }
        try {
          connection.query(sql, parameters, (error, rows) => {
            if (error && mustClose(error)) {
              connection.destroy();
            } else {
              connection.release();
            }
            if (error) {
              reject(new QueryFailedError(sql, parameters, error));
            } else {
              resolve(rows as R[]);
            }
          });
        } catch (error) {
          // Thrown before the query was sent (a value mysql2 cannot format): the connection is unused.
          connection.release();
          reject(new QueryFailedError(sql, parameters, error as Error));
        }
      });
    });
  }

  /**
   * Runs a SELECT of `raw.selectList` (any WHERE/ORDER/LIMIT, `?` placeholders) and hydrates each
   * row as TypeORM does: the entity class, each column through the driver.
   */
  protected async selectRaw(sql: string, parameters: unknown[]): Promise<T[]> {
    const { hydrated, construct } = this.raw;
    const driver = this.manager.connection.driver;
    const rows = await this.rows<Record<string, unknown>>(sql, parameters);
    // Indexed loops: a for…of over the columns allocated an iterator and a result object per column of
    // every row on Node 24, whose middle tier (Maglev) does not remove them.
    const entities = new Array<T>(rows.length);
    for (let i = 0; i < rows.length; i += 1) {
      const row = rows[i];
      const entity = construct() as Record<string, unknown>;
      for (let j = 0; j < hydrated.length; j += 1) {
        const { column, databaseName, propertyName } = hydrated[j];
        const value: unknown = driver.prepareHydratedValue(row[databaseName], column);
        if (propertyName === null) {
          column.setEntityValue(entity, value);
        } else {
          entity[propertyName] = value;
        }
      }
      entities[i] = entity as T;
    }
    return entities;
  }
}
