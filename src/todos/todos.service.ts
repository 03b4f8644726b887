import { HttpStatus, Injectable } from '@nestjs/common';
import { AuditService } from '../audit/audit.service.js';
import type { AuthUser } from '../common/auth/auth-user.js';
import { mapPage, type Page } from '../common/pagination.js';
import { AppException } from '../common/problem.js';
import type { RequestMeta } from '../common/request-meta.js';
import type { CreateTodoDto } from './dto/create-todo.dto.js';
import type { ListTodosQueryDto } from './dto/list-todos-query.dto.js';
import { type TodoResponseDto, toTodoResponse } from './dto/todo-response.dto.js';
import type { UpdateTodoDto } from './dto/update-todo.dto.js';
import type { Todo } from './todo.entity.js';
import { type TodoValues, TodosRepository } from './todos.repository.js';

/**
 * User-scoped todos. Every operation takes the caller first and passes the caller's id down to the
 * repository, which puts it in the WHERE: someone else's todo is indistinguishable from a missing
 * one. Mutations are audited (ids and field names only, never a title) in the same transaction.
 */
@Injectable()
export class TodosService {
  constructor(
    private readonly todos: TodosRepository,
    private readonly audit: AuditService,
  ) {}

  async create(caller: AuthUser, dto: CreateTodoDto, meta: RequestMeta): Promise<TodoResponseDto> {
    const todo = await this.todos.transaction(async (manager) => {
      const id = await this.todos.insertOwned(
        caller.id,
        {
          title: dto.title,
          description: dto.description ?? null,
          completed: dto.completed ?? false,
          dueAt: dto.dueAt ? new Date(dto.dueAt) : null,
        },
        manager,
      );
      await this.audit.record('todo.created', { userId: caller.id, meta, metadata: { todoId: id } }, manager);
      return this.todos.findOwned(caller.id, id, manager);
    });
    return toTodoResponse(orNotFound(todo));
  }

  async list(caller: AuthUser, query: ListTodosQueryDto): Promise<Page<TodoResponseDto>> {
    const page = await this.todos.listOwned(caller.id, { completed: query.completed }, query);
    return mapPage(page, toTodoResponse);
  }

  async findOwned(caller: AuthUser, id: number): Promise<TodoResponseDto> {
    return toTodoResponse(orNotFound(await this.todos.findOwned(caller.id, id)));
  }

  /**
   * A conditional UPDATE (owner and id in its WHERE), then the row read back in the same
   * transaction: no window in which a concurrent DELETE could be overwritten or half-applied.
   */
  async updateOwned(
    caller: AuthUser,
    id: number,
    dto: UpdateTodoDto,
    meta: RequestMeta,
  ): Promise<TodoResponseDto> {
    const changes = changesFrom(dto);
    const fields = Object.keys(changes);
    if (fields.length === 0) {
      // An empty patch changes nothing; it still answers 404 for a todo that is not the caller's.
      return this.findOwned(caller, id);
    }
    const todo = await this.todos.transaction(async (manager) => {
      if (!(await this.todos.updateOwned(caller.id, id, changes, manager))) {
        return null;
      }
      await this.audit.record(
        'todo.updated',
        { userId: caller.id, meta, metadata: { todoId: id, fields } },
        manager,
      );
      return this.todos.findOwned(caller.id, id, manager);
    });
    return toTodoResponse(orNotFound(todo));
  }

  async deleteOwned(caller: AuthUser, id: number, meta: RequestMeta): Promise<void> {
    const deleted = await this.todos.transaction(async (manager) => {
      if (!(await this.todos.deleteOwned(caller.id, id, manager))) {
        return false;
      }
      await this.audit.record('todo.deleted', { userId: caller.id, meta, metadata: { todoId: id } }, manager);
      return true;
    });
    if (!deleted) {
      throw todoNotFound();
    }
  }
}

function changesFrom(dto: UpdateTodoDto): Partial<TodoValues> {
  const changes: Partial<TodoValues> = {};
  if (dto.title !== undefined) {
    changes.title = dto.title;
  }
  if (dto.description !== undefined) {
    changes.description = dto.description;
  }
  if (dto.completed !== undefined) {
    changes.completed = dto.completed;
  }
  if (dto.dueAt !== undefined) {
    changes.dueAt = dto.dueAt === null ? null : new Date(dto.dueAt);
  }
  return changes;
}

function orNotFound(todo: Todo | null): Todo {
  if (!todo) {
    throw todoNotFound();
  }
  return todo;
}

/** The one 404 for a todo that is missing and for one that is someone else's: same status, same body. */
function todoNotFound(): AppException {
  return new AppException(HttpStatus.NOT_FOUND, 'TODO_NOT_FOUND', 'No such todo.');
}
