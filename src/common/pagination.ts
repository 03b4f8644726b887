import { HttpStatus, type Type } from '@nestjs/common';
import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { IsInt, IsOptional, IsString, Max, MaxLength, Min } from 'class-validator';
import type { ObjectLiteral, SelectQueryBuilder } from 'typeorm';
import { AppException } from './problem.js';
import { PlainInteger } from './validators.js';

/**
 * Keyset ("seek") pagination for every list in Gatehouse: newest first, `ORDER BY id DESC` with
 * `id < :cursorId`, one row more than the page to learn whether another page exists. Never OFFSET
 * (its cost grows with the page number) and never COUNT(*) (its cost grows with the table).
 *
 * The cursor is opaque to clients (base64url of `{"id":"<last id>"}`). It is not signed: it only says
 * where to resume, and every list query also carries its own owner/filter in the WHERE, so a crafted
 * cursor can skip rows of the caller's own list but never reach anyone else's.
 */
export const PAGE_LIMIT_DEFAULT = 20;
export const PAGE_LIMIT_MAX = 100;

/** Cursors Gatehouse issues are ~30 characters; anything much longer is not one of ours. */
const CURSOR_MAX_LENGTH = 128;
const BASE64URL = /^[A-Za-z0-9_-]+$/;
/** A positive decimal id, up to BIGINT UNSIGNED's 20 digits. */
const DECIMAL_ID = /^[1-9][0-9]{0,19}$/;

/** `?cursor=&limit=`; list query DTOs extend it with their own filters. */
export class PageQueryDto {
  @ApiPropertyOptional({
    description: 'Opaque cursor from the previous page’s `nextCursor`; omit it for the first page.',
    maxLength: CURSOR_MAX_LENGTH,
    pattern: BASE64URL.source,
  })
  @IsOptional()
  @IsString()
  @MaxLength(CURSOR_MAX_LENGTH)
  cursor?: string;

  @ApiPropertyOptional({
    description: 'Items per page.',
    type: 'integer',
    format: 'int32',
    minimum: 1,
    maximum: PAGE_LIMIT_MAX,
    default: PAGE_LIMIT_DEFAULT,
    example: PAGE_LIMIT_DEFAULT,
  })
  @IsOptional()
  @PlainInteger()
  @IsInt()
  @Min(1)
  @Max(PAGE_LIMIT_MAX)
  limit: number = PAGE_LIMIT_DEFAULT;
}

export interface Page<T> {
  items: T[];
  /** Pass as `cursor` to get the next page; null on the last one. */
  nextCursor: string | null;
}

/**
 * An OpenAPI-documented `{ items, nextCursor }` class for one item type:
 * `export const TodoPageDto = PageOf(TodoResponseDto, 'TodoPageDto')`.
 */
export function PageOf<T>(item: Type<T>, name = `${item.name.replace(/Dto$/, '')}PageDto`): Type<Page<T>> {
  class PageDto implements Page<T> {
    @ApiProperty({ type: item, isArray: true, maxItems: PAGE_LIMIT_MAX })
    items!: T[];

    @ApiProperty({
      type: String,
      nullable: true,
      maxLength: CURSOR_MAX_LENGTH,
      pattern: BASE64URL.source,
      description: 'Cursor of the next page; null when this is the last page.',
    })
    nextCursor!: string | null;
  }
  Object.defineProperty(PageDto, 'name', { value: name });
  return PageDto;
}

export function encodeCursor(lastId: number | string): string {
  return Buffer.from(JSON.stringify({ id: String(lastId) }), 'utf8').toString('base64url');
}

/**
 * The id a cursor resumes after, as a number when it fits one exactly (INT keys) and as a decimal
 * string otherwise (BIGINT keys). Anything that is not a cursor Gatehouse could have issued is a
 * 400 CURSOR_INVALID, never a 500 and never an unbounded query.
 */
export function decodeCursor(cursor: string): number | string {
  if (cursor.length > CURSOR_MAX_LENGTH || !BASE64URL.test(cursor)) {
    throw cursorInvalid();
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw cursorInvalid();
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw cursorInvalid();
  }
  const keys = Object.keys(parsed);
  const id = (parsed as { id?: unknown }).id;
  if (keys.length !== 1 || typeof id !== 'string' || !DECIMAL_ID.test(id)) {
    throw cursorInvalid();
  }
  const asNumber = Number(id);
  return Number.isSafeInteger(asNumber) ? asNumber : id;
}

/**
 * Runs one page of a list query. `query` must already carry its owner/filter conditions; this adds
 * the keyset condition, the order and the limit. The index that serves the list must end in `id`
 * after the equality columns, e.g. (user_id, id) or (user_id, completed, id).
 */
export async function paginate<T extends ObjectLiteral & { id: number | string }>(
  query: SelectQueryBuilder<T>,
  { cursor, limit = PAGE_LIMIT_DEFAULT }: PageQueryDto,
): Promise<Page<T>> {
  const alias = query.alias;
  if (cursor !== undefined) {
    query.andWhere(`${alias}.id < :pageCursorId`, { pageCursorId: decodeCursor(cursor) });
  }
  const rows = await query
    .orderBy(`${alias}.id`, 'DESC')
    .limit(limit + 1)
    .getMany();
  return pageOf(rows, limit);
}

/** The page from `limit + 1` rows fetched newest first: the extra row only says another page exists. */
export function pageOf<T extends { id: number | string }>(rows: T[], limit: number): Page<T> {
  const hasMore = rows.length > limit;
  const items = hasMore ? rows.slice(0, limit) : rows;
  return { items, nextCursor: hasMore ? encodeCursor(items[items.length - 1].id) : null };
}

/**
 * MySQL's `FORCE INDEX`, which TypeORM cannot express (`useIndex()` emits the weaker `USE INDEX`, and
 * MariaDB may still pick a plan that reads the whole key prefix). A no-op on SQLite, where TypeORM
 * leaves index hints out. Only the generated SELECT changes; parameters stay bound.
 */
export function forceIndex<T extends ObjectLiteral>(
  query: SelectQueryBuilder<T>,
  index: string,
): SelectQueryBuilder<T> {
  query.useIndex(index);
  const getQuery = query.getQuery.bind(query);
  query.getQuery = () => getQuery().replace(' USE INDEX (', ' FORCE INDEX (');
  return query;
}

export function mapPage<T, R>(page: Page<T>, toResponse: (item: T) => R): Page<R> {
  return { items: page.items.map(toResponse), nextCursor: page.nextCursor };
}

function cursorInvalid(): AppException {
  return new AppException(
    HttpStatus.BAD_REQUEST,
    'CURSOR_INVALID',
    'The cursor is not one this list issued; start again without it.',
  );
}
