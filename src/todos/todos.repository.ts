import { Injectable } from '@nestjs/common';
import type { Page, PageQueryDto } from '../common/pagination.js';
import { UnitOfWork } from '../database/unit-of-work.js';
import { OwnedRepository } from '../owned/owned.repository.js';
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

/** The todos table, always scoped to an owner (OwnedRepository), plus the filtered list. */
@Injectable()
export class TodosRepository extends OwnedRepository<Todo> {
  constructor(uow: UnitOfWork) {
    super(uow, Todo);
  }

  /** Newest first, served by (user_id, id) or, with `completed`, by (user_id, completed, id). */
  override listOwned(
    ownerId: number,
    page: PageQueryDto,
    filter: { completed?: boolean } = {},
  ): Promise<Page<Todo>> {
    return this.ownedPage(ownerId, page, {
      filter,
      index: filter.completed === undefined ? LIST_INDEX : LIST_BY_COMPLETED_INDEX,
    });
  }
}
