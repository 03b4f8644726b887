import { Body, Controller, Delete, Get, HttpCode, HttpStatus, Patch, Post, Query } from '@nestjs/common';
import {
  ApiBadRequestResponse,
  ApiCreatedResponse,
  ApiNoContentResponse,
  ApiNotFoundResponse,
  ApiOkResponse,
  ApiOperation,
  ApiParam,
  ApiTags,
} from '@nestjs/swagger';
import type { AuthUser } from '../common/auth/auth-user.js';
import { CurrentUser } from '../common/auth/decorators.js';
import { RequireVerifiedEmail } from '../common/auth/verified-email.guard.js';
import { IdParam } from '../common/id-param.js';
import { ReqMeta, type RequestMeta } from '../common/request-meta.js';
import { OwnedResource } from '../owned/owned-resource.decorator.js';
import { CreateTodoDto } from './dto/create-todo.dto.js';
import { ListTodosQueryDto } from './dto/list-todos-query.dto.js';
import { TodoPageDto, TodoResponseDto } from './dto/todo-response.dto.js';
import { UpdateTodoDto } from './dto/update-todo.dto.js';
import { TodosService } from './todos.service.js';

const NOT_FOUND = 'No todo with this id belongs to the caller (code TODO_NOT_FOUND).';
const INVALID = 'Invalid body, query or id (code VALIDATION_FAILED, with errors[]).';
const ID_PARAM = { name: 'id', schema: { type: 'integer', minimum: 1 }, example: 42 } as const;

@ApiTags('todos')
@OwnedResource()
@RequireVerifiedEmail()
@ApiBadRequestResponse({ description: INVALID })
@Controller('todos')
export class TodosController {
  constructor(private readonly todos: TodosService) {}

  @Post()
  @ApiOperation({ summary: 'Create a todo owned by the caller' })
  @ApiCreatedResponse({ type: TodoResponseDto })
  create(@CurrentUser() user: AuthUser, @Body() dto: CreateTodoDto, @ReqMeta() meta: RequestMeta) {
    return this.todos.create(user, dto, meta);
  }

  @Get()
  @ApiOperation({ summary: 'List the caller’s todos, newest first (keyset-paginated)' })
  @ApiOkResponse({ type: TodoPageDto })
  @ApiBadRequestResponse({ description: `${INVALID} A cursor this list did not issue: CURSOR_INVALID.` })
  list(@CurrentUser() user: AuthUser, @Query() query: ListTodosQueryDto) {
    return this.todos.list(user, query);
  }

  @Get(':id')
  @ApiOperation({ summary: 'One of the caller’s todos' })
  @ApiParam(ID_PARAM)
  @ApiOkResponse({ type: TodoResponseDto })
  @ApiNotFoundResponse({ description: NOT_FOUND })
  findOne(@CurrentUser() user: AuthUser, @IdParam() id: number) {
    return this.todos.get(user, id);
  }

  @Patch(':id')
  @ApiOperation({ summary: 'Change some fields of one of the caller’s todos' })
  @ApiParam(ID_PARAM)
  @ApiOkResponse({ type: TodoResponseDto })
  @ApiNotFoundResponse({ description: NOT_FOUND })
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
  @ApiOperation({ summary: 'Delete one of the caller’s todos' })
  @ApiParam(ID_PARAM)
  @ApiNoContentResponse({ description: 'Deleted.' })
  @ApiNotFoundResponse({ description: NOT_FOUND })
  remove(@CurrentUser() user: AuthUser, @IdParam() id: number, @ReqMeta() meta: RequestMeta) {
    return this.todos.remove(user, id, meta);
  }
}
