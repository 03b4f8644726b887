import { ApiProperty } from '@nestjs/swagger';
import { PageOf } from '../../common/pagination.js';
import type { Todo } from '../todo.entity.js';

export class TodoResponseDto {
  @ApiProperty({ example: 42 })
  id!: number;

  @ApiProperty({ example: 'Renew the TLS certificate' })
  title!: string;

  @ApiProperty({ type: String, nullable: true, example: 'The wildcard certificate expires soon.' })
  description!: string | null;

  @ApiProperty({ example: false })
  completed!: boolean;

  @ApiProperty({ type: String, format: 'date-time', nullable: true, example: '2030-01-31T17:00:00.000Z' })
  dueAt!: string | null;

  @ApiProperty({ format: 'date-time', example: '2030-01-02T09:30:00.000Z' })
  createdAt!: string;

  @ApiProperty({ format: 'date-time', example: '2030-01-02T09:30:00.000Z' })
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
    dueAt: todo.dueAt ? todo.dueAt.toISOString() : null,
    createdAt: todo.createdAt.toISOString(),
    updatedAt: todo.updatedAt.toISOString(),
  };
}
