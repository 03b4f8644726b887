import { PartialType } from '@nestjs/swagger';
import { CreateTodoDto } from './create-todo.dto.js';

/**
 * Every field optional; the ones sent are changed. `description` and `dueAt` can be cleared with
 * null; `title` and `completed` cannot (skipNullProperties: false keeps validating a null, which
 * would otherwise reach a NOT NULL column).
 */
export class UpdateTodoDto extends PartialType(CreateTodoDto, { skipNullProperties: false }) {}
