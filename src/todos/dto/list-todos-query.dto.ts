import { Transform } from 'class-transformer';
import { IsBoolean, IsOptional } from 'class-validator';
import { PageQueryDto } from '../../common/pagination.js';

export class ListTodosQueryDto extends PageQueryDto {
  /** Only completed (true) or only open (false) todos. */
  @IsOptional()
  // Query strings are text: only the exact words true/false count, anything else fails IsBoolean.
  @Transform(({ value }: { value: unknown }) => (value === 'true' ? true : value === 'false' ? false : value))
  @IsBoolean()
  completed?: boolean;
}
