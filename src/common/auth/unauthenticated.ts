import { HttpStatus } from '@nestjs/common';
import { AppException } from '../problem.js';

/**
 * The one answer for a missing, invalid, expired or revoked access token, with the challenge RFC 6750
 * §3 asks of a bearer-protected resource: `error="invalid_token"` only when a token was presented
 * (a request without one gets the bare challenge), so a client knows to refresh rather than sign in.
 */
export function unauthenticated(tokenPresented = true): AppException {
  const challenge = tokenPresented
    ? 'Bearer realm="gatehouse", error="invalid_token", error_description="The access token is invalid, expired or revoked"'
    : 'Bearer realm="gatehouse"';
  return new AppException(
    HttpStatus.UNAUTHORIZED,
    'UNAUTHENTICATED',
    'A valid access token is required.',
    undefined,
    { 'WWW-Authenticate': challenge },
  );
}
