/** Account roles; `admin` is an operator (DESIGN §3). */
export const USER_ROLES = ['user', 'admin'] as const;
export type UserRole = (typeof USER_ROLES)[number];

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
