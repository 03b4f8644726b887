import type { IncomingHttpHeaders } from 'node:http';

/** The longest access token Gatehouse issues, as the document says (LoginResponseDto.accessToken). */
export const ACCESS_TOKEN_MAX_LENGTH = 2048;

/** `Bearer`, any case, one or more spaces, a JWT's three base64url parts (RFC 6750 §2.1, RFC 7519). */
const BEARER = /^Bearer +([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+) *$/i;

/**
 * The access token of `Authorization: Bearer <jwt>`, or null. passport-jwt's own extractor matches
 * `/(\S+)\s+(\S+)/` unanchored, which backtracks in time that grows with the square of a value
 * without white space: 16 KB of one character (all Node admits) cost 135-155 ms of the event loop
 * for every unauthenticated request, before any rate limit. Here a header longer than any token
 * Gatehouse issues is no token, and the pattern is anchored, with classes that cannot overlap.
 */
export function bearerToken(request: { headers: IncomingHttpHeaders }): string | null {
  const header = request.headers.authorization;
  // The scheme and a few spaces around a token of the longest length, at most.
  if (typeof header !== 'string' || header.length > ACCESS_TOKEN_MAX_LENGTH + 64) {
    return null;
  }
  const token = BEARER.exec(header)?.[1];
  return token !== undefined && token.length <= ACCESS_TOKEN_MAX_LENGTH ? token : null;
}
