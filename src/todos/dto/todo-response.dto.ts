import { ApiProperty } from '@nestjs/swagger';
import { isoString } from '../../common/iso-date.js';
import { ApiDateTimeProperty, ApiIdProperty } from '../../common/openapi.js';
import { PageOf } from '../../common/pagination.js';
import type { Todo } from '../todo.entity.js';
import { DESCRIPTION_MAX_LENGTH, TITLE_MAX_LENGTH } from './create-todo.dto.js';

export class TodoResponseDto {
  @ApiIdProperty()
  id!: number;

  @ApiProperty({ minLength: 1, maxLength: TITLE_MAX_LENGTH, example: 'Renew the TLS certificate' })
  title!: string;

  @ApiProperty({
    type: String,
    nullable: true,
    maxLength: DESCRIPTION_MAX_LENGTH,
    example: 'The wildcard certificate expires soon.',
  })
  description!: string | null;

  completed!: boolean;

  @ApiDateTimeProperty({ nullable: true, example: '2030-01-31T17:00:00.000Z' })
  dueAt!: string | null;

  @ApiDateTimeProperty()
  createdAt!: string;

  @ApiDateTimeProperty()
  updatedAt!: string;
}

export const TodoPageDto = PageOf(TodoResponseDto, 'TodoPageDto');

/** What a client sees of a todo: built field by field, so nothing internal (user_id) leaks. */
export function toTodoResponse(todo: Todo): TodoResponseDto {
  return {
    id: todo.id,
    title: todo.title,
    description: todo.description,
    completed: todo.completed,
    dueAt: todo.dueAt ? isoString(todo.dueAt) : null,
    createdAt: isoString(todo.createdAt),
    updatedAt: isoString(todo.updatedAt),
  };
}
