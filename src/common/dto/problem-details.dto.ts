import { ApiProperty, ApiPropertyOptional } from '@nestjs/swagger';
import { FIELD_ERRORS_LIMITS, type FieldError, type ProblemDetails } from '../problem.js';

export class FieldErrorDto implements FieldError {
  /** The offending field, dotted for nested ones (`items.0.title`), or the path parameter's name. */
  @ApiProperty({ maxLength: FIELD_ERRORS_LIMITS.field, example: 'title' })
  field!: string;

  /** What is wrong with it, in English. */
  @ApiProperty({
    maxLength: FIELD_ERRORS_LIMITS.message,
    example: 'title must be shorter than or equal to 200 characters',
  })
  message!: string;
}

/**
 * RFC 9457 problem details: every error Gatehouse answers, as `application/problem+json`. `code` is
 * the stable, machine-readable part; each operation lists the codes it can give.
 */
export class ProblemDetailsDto implements ProblemDetails {
  /** A URN naming the problem type, derived from `code`. */
  @ApiProperty({
    maxLength: 128,
    pattern: '^urn:gatehouse:problem:[a-z-]+$',
    example: 'urn:gatehouse:problem:validation-failed',
  })
  type!: string;

  /** The HTTP reason phrase of `status`. */
  @ApiProperty({ maxLength: 64, example: 'Bad Request' })
  title!: string;

  @ApiProperty({ type: 'integer', format: 'int32', minimum: 400, maximum: 599, example: 400 })
  status!: number;

  /** A sentence for a human; never a stack trace, SQL text or file path. */
  @ApiProperty({ maxLength: 1024, example: 'The request is invalid.' })
  detail!: string;

  /** Stable and machine-readable: branch on this, not on `detail`. */
  @ApiProperty({ maxLength: 64, pattern: '^[A-Z][A-Z_]*$', example: 'VALIDATION_FAILED' })
  code!: string;

  /** The request id (also the `X-Request-Id` header) to quote to an operator. */
  @ApiProperty({
    maxLength: 128,
    pattern: '^[A-Za-z0-9._:-]{1,128}$',
    example: '7f0c2a5e-4f1d-4c55-9a57-0d1f0b7f3c2e',
  })
  requestId!: string;

  /** For `VALIDATION_FAILED`: one entry per failed check, the first 100 of them. */
  @ApiPropertyOptional({ type: [FieldErrorDto], maxItems: FIELD_ERRORS_LIMITS.items })
  errors?: FieldErrorDto[];
}

// The schema is published as `ProblemDetails`, the name clients know from RFC 9457.
Object.defineProperty(ProblemDetailsDto, 'name', { value: 'ProblemDetails' });
