import { Body, Controller, Delete, Get, HttpCode, HttpStatus, Patch, Post, Query } from '@nestjs/common';
import {
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiOkResponse,
  ApiOperation,
  ApiTags,
} from '@nestjs/swagger';
import type { AuthUser } from '../common/auth/auth-user.js';
import { CurrentUser } from '../common/auth/decorators.js';
import { RequireVerifiedEmail } from '../common/auth/verified-email.guard.js';
import { IdParam } from '../common/id-param.js';
import { ApiProblem } from '../common/openapi.js';
import { ReqMeta, type RequestMeta } from '../common/request-meta.js';
import { OwnedResource } from '../owned/owned-resource.decorator.js';
import { CreateTodoDto } from './dto/create-todo.dto.js';
import { ListTodosQueryDto } from './dto/list-todos-query.dto.js';
import { TodoPageDto, TodoResponseDto } from './dto/todo-response.dto.js';
import { UpdateTodoDto } from './dto/update-todo.dto.js';
import { TodosService } from './todos.service.js';

/** The one 404 for a todo that is missing or someone else's. */
const NotFound = () =>
  ApiProblem(404, ['TODO_NOT_FOUND'], { description: 'no todo with this id belongs to the caller' });

@ApiTags('todos')
@OwnedResource()
@RequireVerifiedEmail()
@Controller('todos')
export class TodosController {
  constructor(private readonly todos: TodosService) {}

  @Post()
  @ApiOperation({ operationId: 'createTodo', summary: 'Create a todo owned by the caller' })
  @ApiCreatedResponse({ type: TodoResponseDto })
  create(@CurrentUser() user: AuthUser, @Body() dto: CreateTodoDto, @ReqMeta() meta: RequestMeta) {
    return this.todos.create(user, dto, meta);
  }

  @Get()
  @ApiOperation({
    operationId: 'listTodos',
    summary: 'List the caller’s todos, newest first (keyset-paginated)',
  })
  @ApiOkResponse({ type: TodoPageDto })
  @ApiProblem(400, ['CURSOR_INVALID'], { description: 'a cursor this list did not issue' })
  list(@CurrentUser() user: AuthUser, @Query() query: ListTodosQueryDto) {
    return this.todos.list(user, query);
  }

  @Get(':id')
  @ApiOperation({ operationId: 'getTodo', summary: 'One of the caller’s todos' })
  @ApiOkResponse({ type: TodoResponseDto })
  @NotFound()
  findOne(@CurrentUser() user: AuthUser, @IdParam() id: number) {
    return this.todos.get(user, id);
  }

  @Patch(':id')
  @ApiOperation({ operationId: 'updateTodo', summary: 'Change some fields of one of the caller’s todos' })
  @ApiOkResponse({ type: TodoResponseDto })
  @NotFound()
  update(
    @CurrentUser() user: AuthUser,
    @IdParam() id: number,
    @Body() dto: UpdateTodoDto,
    @ReqMeta() meta: RequestMeta,
  ) {
    return this.todos.update(user, id, dto, meta);
  }

  @Delete(':id')
  @HttpCode(HttpStatus.NO_CONTENT)
  @ApiOperation({ operationId: 'deleteTodo', summary: 'Delete one of the caller’s todos' })
  @ApiNoContentResponse({ description: 'Deleted.' })
  @NotFound()
  remove(@CurrentUser() user: AuthUser, @IdParam() id: number, @ReqMeta() meta: RequestMeta) {
    return this.todos.remove(user, id, meta);
  }
}
