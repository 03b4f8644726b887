import createClient, { type Client } from 'openapi-fetch';
import type { components, paths } from './schema.js';

/** Login's 200 for an account with two-step sign-in: no tokens yet, finish with `signIn`'s second factor. */
export type MfaChallenge = components['schemas']['MfaChallengeDto'];
/** Login's 200 with tokens (also what POST /api/v1/auth/login/mfa answers). */
export type LoginResponse = components['schemas']['LoginResponseDto'];
export type ProblemDetails = components['schemas']['ProblemDetails'];

/** The second factor `signIn` asks for when the account has TOTP: a 6-digit code, or a recovery code. */
export type SecondFactor = { code: string } | { recoveryCode: string };

/** What `signIn` ends with: the signed-in answer, or the problem+json of the step that refused. */
export type SignInOutcome =
  | { data: LoginResponse; error?: undefined; response: Response }
  | { data?: undefined; error: ProblemDetails; response: Response };

/** Whether login's 200 is the TOTP branch (`mfaRequired: true`) rather than tokens. */
export function isMfaChallenge(body: LoginResponse | MfaChallenge | undefined): body is MfaChallenge {
  return (body as { mfaRequired?: unknown } | undefined)?.mfaRequired === true;
}

/** The pair login and refresh answer with. */
export interface GatehouseTokens {
  accessToken: string;
  refreshToken: string;
}

export interface GatehouseClientOptions {
  /** Where Gatehouse answers, e.g. `http://localhost:3000` (paths carry their `/api/v1`). */
  baseUrl: string;
  /** A pair kept from an earlier run; otherwise the client signs in when a login succeeds. */
  tokens?: GatehouseTokens;
  /** Told every new pair (login, refresh) and null when the session ends: store them here. */
  onTokens?: (tokens: GatehouseTokens | null) => void;
  /** Refresh this long before the access token's `exp` instead of waiting for a 401 (default 1000). */
  refreshLeewayMs?: number;
  /** The clock the `exp` check reads (default `Date.now`). */
  now?: () => number;
  /** The fetch every request goes through (default `globalThis.fetch`). */
  fetch?: (request: Request) => Promise<Response>;
}

/** The generated openapi-fetch client for every path, plus the session it carries. */
export interface GatehouseClient extends Client<paths> {
  /** The current pair, or null when signed out. */
  readonly tokens: GatehouseTokens | null;
  /** Replaces the pair (null signs out locally), telling `onTokens`. */
  setTokens(tokens: GatehouseTokens | null): void;
  /**
   * Signs in with a password and, when the account has two-step sign-in (login answers
   * `mfaRequired: true`), the second factor `secondFactor` supplies (asked only then). Without
   * `secondFactor` such an account fails with the login's challenge left unanswered (error code
   * `MFA_REQUIRED`, produced here, not by the API).
   */
  signIn(
    credentials: { email: string; password: string },
    secondFactor?: (challenge: MfaChallenge) => Promise<SecondFactor> | SecondFactor,
  ): Promise<SignInOutcome>;
}

/** Routes that take no bearer token; a 401 from them is never a reason to refresh. */
const PUBLIC_AUTH_ROUTES = new Set(
  [
    'register',
    'verify-email',
    'resend-verification',
    'login',
    'login/mfa',
    'refresh',
    'forgot-password',
    'reset-password',
  ].map((route) => `/api/v1/auth/${route}`),
);
const REFRESH_PATH = '/api/v1/auth/refresh';
const SIGN_IN_PATHS = new Set(['/api/v1/auth/login', '/api/v1/auth/login/mfa', REFRESH_PATH]);
const SESSION_ENDS = new Set(['/api/v1/auth/logout', '/api/v1/auth/logout-all']);

/**
 * A typed Gatehouse client that keeps its session by itself. It sends the access token on every
 * protected route; when that token is about to expire, or the API answers 401 with RFC 6750's
 * `error="invalid_token"` (problem code `UNAUTHENTICATED`), it refreshes once — concurrent calls wait
 * on the same refresh — and retries the request once. A successful login signs it in; logout, or a
 * refresh the API refuses, signs it out.
 *
 * ```ts
 * const gatehouse = createGatehouseClient({ baseUrl: 'http://localhost:3000' });
 * await gatehouse.POST('/api/v1/auth/login', { body: { email, password } });
 * const { data } = await gatehouse.GET('/api/v1/todos', { params: { query: { limit: 20 } } });
 * ```
 */
export function createGatehouseClient(options: GatehouseClientOptions): GatehouseClient {
  const baseFetch = options.fetch ?? ((request: Request) => globalThis.fetch(request));
  const now = options.now ?? Date.now;
  const leewayMs = options.refreshLeewayMs ?? 1000;
  let tokens: GatehouseTokens | null = options.tokens ?? null;
  let refreshing: Promise<GatehouseTokens | null> | null = null;

  const setTokens = (next: GatehouseTokens | null) => {
    tokens = next;
    options.onTokens?.(next);
  };

  /** One refresh at a time: every caller that finds the pair stale waits on the same one. */
  const refresh = (stale: GatehouseTokens): Promise<GatehouseTokens | null> => {
    if (tokens !== stale) {
      return Promise.resolve(tokens); // someone already refreshed (or signed out) since
    }
    refreshing ??= (async () => {
      try {
        const response = await baseFetch(
          new Request(new URL(REFRESH_PATH, options.baseUrl), {
            method: 'POST',
            headers: { 'content-type': 'application/json', accept: 'application/json' },
            body: JSON.stringify({ refreshToken: stale.refreshToken }),
          }),
        );
        if (tokens !== stale) {
          return tokens; // signed out or replaced while the refresh was in flight
        }
        if (response.ok) {
          setTokens(pairOf(await response.json()));
        } else if (response.status === 401) {
          setTokens(null); // the session is over: sign in again
        } else {
          return null; // busy or throttled: keep the pair, answer this call with its 401
        }
        return tokens;
      } finally {
        refreshing = null;
      }
    })();
    return refreshing;
  };

  const authorized = (request: Request, pair: GatehouseTokens | null): Request => {
    if (pair) {
      request.headers.set('authorization', `Bearer ${pair.accessToken}`);
    }
    return request;
  };

  const sessionFetch = async (request: Request): Promise<Response> => {
    const path = new URL(request.url).pathname;
    if (PUBLIC_AUTH_ROUTES.has(path) || request.headers.has('authorization')) {
      return capture(path, await baseFetch(request));
    }
    const retry = request.clone();
    let pair = tokens;
    if (pair && expiresWithin(pair.accessToken, leewayMs, now())) {
      pair = await refresh(pair);
    }
    const response = await baseFetch(authorized(request, pair));
    if (!pair || !(await isInvalidToken(response))) {
      return capture(path, response);
    }
    const renewed = await refresh(pair);
    return renewed ? capture(path, await baseFetch(authorized(retry, renewed))) : response;
  };

  /** Login (either step) and refresh answers sign the client in; a logout signs it out. */
  const capture = async (path: string, response: Response): Promise<Response> => {
    if (response.ok && SIGN_IN_PATHS.has(path)) {
      const body = (await response.clone().json()) as LoginResponse | MfaChallenge;
      // An mfaRequired answer carries no tokens: the client stays as it was until the second step.
      if (!isMfaChallenge(body)) {
        setTokens(pairOf(body));
      }
    } else if (response.ok && SESSION_ENDS.has(path)) {
      setTokens(null);
    }
    return response;
  };

  const client = createClient<paths>({ baseUrl: options.baseUrl, fetch: sessionFetch });

  const signIn: GatehouseClient['signIn'] = async (credentials, secondFactor) => {
    const first = await client.POST('/api/v1/auth/login', { body: credentials });
    if (first.error) {
      return { error: first.error, response: first.response };
    }
    if (!isMfaChallenge(first.data)) {
      return { data: first.data, response: first.response };
    }
    if (!secondFactor) {
      const detail = 'This account uses two-step sign-in: pass secondFactor to signIn.';
      const error = { type: 'about:blank', title: 'Second factor required', status: 401, detail };
      return { error: { ...error, code: 'MFA_REQUIRED', requestId: '' }, response: first.response };
    }
    const factor = await secondFactor(first.data);
    const second = await client.POST('/api/v1/auth/login/mfa', {
      body: { mfaToken: first.data.mfaToken, ...factor },
    });
    return second.error
      ? { error: second.error, response: second.response }
      : { data: second.data, response: second.response };
  };

  return Object.defineProperties(client as GatehouseClient, {
    tokens: { get: () => tokens, enumerable: true },
    setTokens: { value: setTokens, enumerable: true },
    signIn: { value: signIn, enumerable: true },
  });
}

function pairOf(body: unknown): GatehouseTokens {
  const { accessToken, refreshToken } = body as GatehouseTokens;
  return { accessToken, refreshToken };
}

/** Whether the JWT's `exp` falls within `leewayMs` of `nowMs`; false when it cannot be read. */
function expiresWithin(accessToken: string, leewayMs: number, nowMs: number): boolean {
  try {
    const part = (accessToken.split('.')[1] ?? '').replace(/-/g, '+').replace(/_/g, '/');
    const { exp } = JSON.parse(atob(part)) as { exp?: unknown };
    return typeof exp === 'number' && exp * 1000 - leewayMs <= nowMs;
  } catch {
    return false;
  }
}

/** A 401 that says the access token is invalid, expired or revoked (RFC 6750 §3.1), not any 401. */
async function isInvalidToken(response: Response): Promise<boolean> {
  if (response.status !== 401) {
    return false;
  }
  if (response.headers.get('www-authenticate')?.includes('error="invalid_token"')) {
    return true;
  }
  const problem = await response
    .clone()
    .json()
    .catch(() => null);
  return (problem as { code?: unknown } | null)?.code === 'UNAUTHENTICATED';
}
