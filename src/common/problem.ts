import { HttpException, HttpStatus } from '@nestjs/common';

/** One field-level validation failure. */
export interface FieldError {
  field: string;
  message: string;
}

/** RFC 9457 problem details, plus Gatehouse's stable `code` and the request id. */
export interface ProblemDetails {
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  requestId: string;
  errors?: FieldError[];
}

export const PROBLEM_CONTENT_TYPE = 'application/problem+json; charset=utf-8';

const TITLES: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  409: 'Conflict',
  413: 'Content Too Large',
  414: 'URI Too Long',
  415: 'Unsupported Media Type',
  422: 'Unprocessable Content',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  500: 'Internal Server Error',
  503: 'Service Unavailable',
};

/** The code a bare HttpException of a given status gets when nobody named one. */
const DEFAULT_CODES: Record<number, string> = {
  400: 'BAD_REQUEST',
  401: 'UNAUTHENTICATED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  409: 'CONFLICT',
  413: 'PAYLOAD_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  422: 'UNPROCESSABLE',
  429: 'TOO_MANY_REQUESTS',
  500: 'INTERNAL_ERROR',
  503: 'SERVICE_UNAVAILABLE',
};

export function defaultCode(status: number): string {
  return DEFAULT_CODES[status] ?? (status >= 500 ? 'INTERNAL_ERROR' : 'BAD_REQUEST');
}

/** What the document promises of `errors` (ProblemDetailsDto): at most this many, each this long. */
export const FIELD_ERRORS_LIMITS = { items: 100, field: 256, message: 1024 } as const;

/** `text` cut to `max` characters (code points, as JSON Schema counts them), the last one an ellipsis. */
function clipped(text: string, max: number): string {
  if (text.length <= max) {
    return text;
  }
  const points = Array.from(text);
  return points.length <= max ? text : `${points.slice(0, max - 1).join('')}…`;
}

/**
 * A client chooses the field names in its body and query, so a list of what is wrong with them is
 * as long as the client likes: 1,000 unknown parameters are 1,000 errors, a 5,000-character name
 * a 5,000-character field. The answer lists the first FIELD_ERRORS_LIMITS.items, each clipped.
 */
function bounded(errors: FieldError[]): FieldError[] {
  return errors.slice(0, FIELD_ERRORS_LIMITS.items).map(({ field, message }) => ({
    field: clipped(field, FIELD_ERRORS_LIMITS.field),
    message: clipped(message, FIELD_ERRORS_LIMITS.message),
  }));
}

export function problem(
  status: number,
  code: string,
  detail: string,
  requestId: string,
  errors?: FieldError[],
): ProblemDetails {
  return {
    type: `urn:gatehouse:problem:${code.toLowerCase().replace(/_/g, '-')}`,
    title: TITLES[status] ?? (status >= 500 ? 'Internal Server Error' : 'Bad Request'),
    status,
    detail,
    code,
    requestId,
    ...(errors ? { errors: bounded(errors) } : {}),
  };
}

/**
 * The exception every Gatehouse service throws: an HTTP status, a stable machine-readable code and a
 * human sentence. The global filter turns it into problem+json.
 */
export class AppException extends HttpException {
  constructor(
    status: HttpStatus,
    readonly code: string,
    readonly detail: string,
    readonly errors?: FieldError[],
    readonly headers: Record<string, string> = {},
  ) {
    super({ code, detail, errors }, status);
  }
}
