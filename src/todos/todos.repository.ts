import { Injectable } from '@nestjs/common';
import { InjectDataSource } from '@nestjs/typeorm';
import type { DataSource, EntityManager, FindOptionsWhere } from 'typeorm';
import { forceIndex, type Page, type PageQueryDto, paginate } from '../common/pagination.js';
import { Todo } from './todo.entity.js';

/**
 * Index hints for the list (MySQL family only). With a cursor, `id < ?` makes PRIMARY a candidate
 * and MariaDB 10.11 settles for `ref` on user_id alone, walking the user's rows from the newest down
 * to the cursor: 50,000 rows read for a page in the middle of a 100,000-todo list; USE INDEX is not
 * enough when one user owns most of the table. FORCE INDEX gives a `range` scan on
 * (user_id[, completed], id) that reads exactly limit + 1 rows at any depth (bench/README.md).
 */
const LIST_INDEX = 'IDX_todos_user_id_id';
const LIST_BY_COMPLETED_INDEX = 'IDX_todos_user_id_completed_id';

export type TodoValues = Pick<Todo, 'title' | 'description' | 'completed' | 'dueAt'>;

/**
 * The one place a todo's ownership goes into a WHERE clause. Every statement below starts from it,
 * so no code path can address a todo without its owner's id.
 */
function owned(ownerId: number, id?: number): FindOptionsWhere<Todo> {
  return id === undefined ? { userId: ownerId } : { userId: ownerId, id };
}

/**
 * Intent-named access to the todos table, always scoped to an owner. Methods take the caller's
 * EntityManager when they must run inside its transaction.
 */
@Injectable()
export class TodosRepository {
  constructor(@InjectDataSource() private readonly dataSource: DataSource) {}

  transaction<T>(work: (manager: EntityManager) => Promise<T>): Promise<T> {
    return this.dataSource.transaction(work);
  }

  findOwned(ownerId: number, id: number, manager = this.dataSource.manager): Promise<Todo | null> {
    return manager.getRepository(Todo).findOneBy(owned(ownerId, id));
  }

  /** Newest first, served by (user_id, id) or, with `completed`, by (user_id, completed, id). */
  listOwned(ownerId: number, filter: { completed?: boolean }, page: PageQueryDto): Promise<Page<Todo>> {
    const query = this.dataSource.manager
      .getRepository(Todo)
      .createQueryBuilder('todo')
      .where(owned(ownerId));
    if (filter.completed === undefined) {
      forceIndex(query, LIST_INDEX);
    } else {
      forceIndex(query, LIST_BY_COMPLETED_INDEX).andWhere('todo.completed = :completed', {
        completed: filter.completed,
      });
    }
    return paginate(query, page);
  }

  async insertOwned(ownerId: number, values: TodoValues, manager: EntityManager): Promise<number> {
    const { identifiers } = await manager.getRepository(Todo).insert({ ...values, userId: ownerId });
    return Number(identifiers[0].id);
  }

  /** One conditional UPDATE; false when no todo with this id belongs to the owner. */
  async updateOwned(
    ownerId: number,
    id: number,
    changes: Partial<TodoValues>,
    manager: EntityManager,
  ): Promise<boolean> {
    const result = await manager.getRepository(Todo).update(owned(ownerId, id), changes);
    return (result.affected ?? 0) > 0;
  }

  /** One conditional DELETE; false when no todo with this id belongs to the owner. */
  async deleteOwned(ownerId: number, id: number, manager: EntityManager): Promise<boolean> {
    const result = await manager.getRepository(Todo).delete(owned(ownerId, id));
    return (result.affected ?? 0) > 0;
  }
}
