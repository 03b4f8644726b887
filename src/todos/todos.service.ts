import { Injectable } from '@nestjs/common';
import { AuditService } from '../audit/audit.service.js';
import type { AuthUser } from '../common/auth/auth-user.js';
import { mapPage, type Page } from '../common/pagination.js';
import { UnitOfWork } from '../database/unit-of-work.js';
import { DomainEvents } from '../events/domain-events.js';
import { OwnedResources } from '../owned/owned-resources.js';
import type { CreateTodoDto } from './dto/create-todo.dto.js';
import type { ListTodosQueryDto } from './dto/list-todos-query.dto.js';
import { type TodoResponseDto, toTodoResponse } from './dto/todo-response.dto.js';
import type { UpdateTodoDto } from './dto/update-todo.dto.js';
import type { Todo } from './todo.entity.js';
import './todos.events.js';
import { TodosRepository } from './todos.repository.js';

/**
 * User-scoped todos: owner scoping, audit and events come from OwnedResources; this adds how the
 * bodies map to columns and the `completed` filter on the list.
 */
@Injectable()
export class TodosService extends OwnedResources<Todo, CreateTodoDto, UpdateTodoDto, TodoResponseDto> {
  constructor(
    uow: UnitOfWork,
    private readonly todos: TodosRepository,
    audit: AuditService,
    events: DomainEvents,
  ) {
    super(uow, todos, audit, events, {
      name: 'todo',
      fromCreate: (dto) => ({
        title: dto.title,
        description: dto.description ?? null,
        completed: dto.completed ?? false,
        dueAt: dto.dueAt ? new Date(dto.dueAt) : null,
      }),
      fromUpdate: (dto) => ({
        ...(dto.title !== undefined && { title: dto.title }),
        ...(dto.description !== undefined && { description: dto.description }),
        ...(dto.completed !== undefined && { completed: dto.completed }),
        ...(dto.dueAt !== undefined && { dueAt: dto.dueAt === null ? null : new Date(dto.dueAt) }),
      }),
      toResponse: toTodoResponse,
    });
  }

  override async list(caller: AuthUser, query: ListTodosQueryDto): Promise<Page<TodoResponseDto>> {
    const page = await this.todos.listOwned(caller.id, query, { completed: query.completed });
    return mapPage(page, toTodoResponse);
  }
}
