/** When the auth routes answer their shared problem codes: the descriptions in the OpenAPI document. */

/** 503 AUTH_BUSY on a route that hashes or checks a password. */
export const AUTH_BUSY = 'too many password checks queued; retry shortly';

/** 401 INVALID_PASSWORD on a route that asks for the password again (change, delete, TOTP off). */
export const INVALID_PASSWORD_WHEN =
  'the password is wrong, or it was changed (or the account disabled) after this request checked it';
