import { type ArgumentsHost, Catch, type ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { connectivityCode, dependencyUnavailable, isDatabaseUnavailable } from './dependency.js';
import { AppException, defaultCode, PROBLEM_CONTENT_TYPE, problem, type ProblemDetails } from './problem.js';

/** Fastify's own request errors (body parsing, size, media type) carry a code and a status. */
interface FastifyLikeError {
  code?: string;
  statusCode?: number;
}

/**
 * Maps everything thrown while handling a request to RFC 9457 problem+json. Unknown errors become a
 * 500 whose body names nothing internal (no stack, SQL, driver code or path); they are logged once,
 * with the request id, for the operator. A 5xx the code answers on purpose (an AppException such as
 * 503 AUTH_BUSY) is a warning without a stack.
 */
@Catch()
export class ProblemDetailsFilter implements ExceptionFilter {
  private readonly logger = new Logger('Exceptions');

  catch(thrown: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const request = http.getRequest<FastifyRequest>();
    const reply = http.getResponse<FastifyReply>();
    // The database out of reach is no bug of the request: 503 with Retry-After, logged as a warning
    // naming the driver's code (never the SQL), so clients retry instead of failing hard.
    // A body read the client broke off (it went away, or REQUEST_TIMEOUT cut it) fails with the
    // request stream's own error, the socket's ECONNRESET: no outage, and nobody left to answer.
    const streamError = request.raw.errored;
    if (
      streamError &&
      (thrown === streamError || (thrown instanceof HttpException && thrown.cause === streamError))
    ) {
      void reply
        .status(400)
        .type(PROBLEM_CONTENT_TYPE)
        .send(problem(400, 'BAD_REQUEST', 'The request body could not be read.', String(request.id)));
      return;
    }
    const unreachable = !(thrown instanceof AppException) && isDatabaseUnavailable(thrown);
    if (unreachable) {
      this.logger.warn({ requestId: request.id, cause: connectivityCode(thrown) }, 'Dependency unavailable');
    }
    const exception = unreachable ? dependencyUnavailable() : thrown;
    const body = toProblem(exception, String(request.id));
    if (exception instanceof AppException) {
      // A refusal the code chose (503 AUTH_BUSY under load, 503 NOT_READY): expected, so one line
      // with its code, never an error with a stack trace per request.
      // NOT_READY: the readiness probe logs its cause itself, once per change, not once per probe.
      if (body.status >= 500 && !unreachable && body.code !== 'NOT_READY') {
        this.logger.warn({ requestId: request.id, code: body.code, status: body.status }, 'Refused');
      }
    } else if (body.status >= 500) {
      this.logger.error({ err: exception, requestId: request.id }, 'Unhandled error');
    }
    const headers = exception instanceof AppException ? exception.headers : {};
    void reply.status(body.status).headers(headers).type(PROBLEM_CONTENT_TYPE).send(body);
  }
}

export function toProblem(exception: unknown, requestId: string): ProblemDetails {
  if (exception instanceof AppException) {
    return problem(exception.getStatus(), exception.code, exception.detail, requestId, exception.errors);
  }
  // Nest wraps Fastify's request errors (body too large, bad JSON, media type) with the original as cause.
  const fastifyError = fromFastify(exception instanceof HttpException ? exception.cause : exception);
  if (fastifyError) {
    return problem(fastifyError.status, fastifyError.code, fastifyError.detail, requestId);
  }
  if (exception instanceof HttpException) {
    const status = exception.getStatus();
    const response = exception.getResponse();
    const detail =
      typeof response === 'object' &&
      response !== null &&
      'message' in response &&
      typeof response.message === 'string'
        ? response.message
        : exception.message;
    return problem(
      status,
      defaultCode(status),
      status >= 500 ? 'An unexpected error occurred.' : detail,
      requestId,
    );
  }
  return problem(500, 'INTERNAL_ERROR', 'An unexpected error occurred.', requestId);
}

function fromFastify(exception: unknown): { status: number; code: string; detail: string } | null {
  if (typeof exception !== 'object' || exception === null) {
    return null;
  }
  const { code, statusCode } = exception as FastifyLikeError;
  if (typeof statusCode !== 'number' || statusCode < 400 || statusCode >= 500) {
    return null;
  }
  switch (code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return {
        status: 413,
        code: 'PAYLOAD_TOO_LARGE',
        detail: 'The request body is larger than the server accepts.',
      };
    // RFC 10008 §2: a QUERY without Content-Type must fail. No route takes QUERY, but Fastify checks
    // this before it knows; without this case it read as "not valid JSON" for a request with no body.
    case 'FST_ERR_ROUTE_MISSING_CONTENT_TYPE':
      return { status: 400, code: 'BAD_REQUEST', detail: 'The request has no Content-Type.' };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return statusCode === 415
        ? {
            status: 415,
            code: 'UNSUPPORTED_MEDIA_TYPE',
            detail: 'Send the request body as application/json.',
          }
        : { status: 400, code: 'BAD_REQUEST', detail: 'The request body could not be read.' };
    case undefined:
    default:
      if (statusCode === 400) {
        return { status: 400, code: 'MALFORMED_JSON', detail: 'The request body is not valid JSON.' };
      }
      return {
        status: statusCode,
        code: defaultCode(statusCode),
        detail: 'The request could not be processed.',
      };
  }
}
