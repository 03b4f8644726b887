import type { UserRole } from '../users/user.entity.js';

/** The caller, as the access-token guard establishes it on every authenticated request. */
export interface AuthUser {
  id: number;
  sessionId: number;
  email: string;
  role: UserRole;
  isVerified: boolean;
}

/** Claims Gatehouse puts in an access token (besides iss, aud, iat, exp). */
export interface AccessTokenClaims {
  sub: string;
  sid: number;
}
