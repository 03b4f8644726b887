import { BadRequestException, HttpException, HttpStatus, NotFoundException } from '@nestjs/common';
import { QueryFailedError } from 'typeorm';
import { toProblem } from './exceptions.filter.js';
import { AppException } from './problem.js';

describe(toProblem.name, () => {
  it('should keep the code, detail and field errors of an AppException', () => {
    const problem = toProblem(
      new AppException(HttpStatus.BAD_REQUEST, 'VALIDATION_FAILED', 'The request is invalid.', [
        { field: 'email', message: 'bad' },
      ]),
      'req-1',
    );
    expect(problem).toEqual({
      type: 'urn:gatehouse:problem:validation-failed',
      title: 'Bad Request',
      status: 400,
      detail: 'The request is invalid.',
      code: 'VALIDATION_FAILED',
      requestId: 'req-1',
      errors: [{ field: 'email', message: 'bad' }],
    });
  });

  it('should give a bare HttpException the default code of its status', () => {
    expect(toProblem(new NotFoundException('Cannot GET /x'), 'r')).toMatchObject({
      status: 404,
      code: 'NOT_FOUND',
      detail: 'Cannot GET /x',
    });
    expect(toProblem(new BadRequestException(), 'r')).toMatchObject({ status: 400, code: 'BAD_REQUEST' });
  });

  it('should map Fastify request errors wrapped by Nest', () => {
    const tooLarge = Object.assign(new Error('Request body is too large'), {
      name: 'FastifyError',
      code: 'FST_ERR_CTP_BODY_TOO_LARGE',
      statusCode: 413,
    });
    expect(toProblem(new HttpException(tooLarge.message, 413, { cause: tooLarge }), 'r')).toMatchObject({
      status: 413,
      code: 'PAYLOAD_TOO_LARGE',
    });
    const media = Object.assign(new Error('Unsupported Media Type'), {
      code: 'FST_ERR_CTP_INVALID_MEDIA_TYPE',
      statusCode: 415,
    });
    expect(toProblem(new HttpException(media.message, 415, { cause: media }), 'r')).toMatchObject({
      status: 415,
      code: 'UNSUPPORTED_MEDIA_TYPE',
    });
  });

  it('should turn unknown errors into a 500 that names nothing internal', () => {
    const sqlError = new QueryFailedError(
      'SELECT * FROM users WHERE password_hash = ?',
      ['x'],
      new Error('ER_NO_SUCH_TABLE'),
    );
    for (const error of [new Error('boom at /srv/app/main.ts:1'), sqlError, 'a string', null]) {
      const problem = toProblem(error, 'r');
      expect(problem).toMatchObject({
        status: 500,
        code: 'INTERNAL_ERROR',
        detail: 'An unexpected error occurred.',
      });
      expect(JSON.stringify(problem)).not.toMatch(/SELECT|ER_|srv|password/);
    }
  });

  it('should not reveal the message of a 5xx HttpException', () => {
    expect(toProblem(new HttpException('db password wrong', 500), 'r').detail).toBe(
      'An unexpected error occurred.',
    );
  });
});
