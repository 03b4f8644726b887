import { HttpStatus } from '@nestjs/common';
import { AppException } from '../problem.js';

/** The one answer for a missing, invalid, expired or revoked access token. */
export function unauthenticated(): AppException {
  return new AppException(HttpStatus.UNAUTHORIZED, 'UNAUTHENTICATED', 'A valid access token is required.');
}
