import createClient, { type Client } from 'openapi-fetch';
import type { paths } from './schema.js';

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
}

/** Routes that take no bearer token; a 401 from them is never a reason to refresh. */
const PUBLIC_AUTH_ROUTES = new Set(
  [
    'register',
    'verify-email',
    'resend-verification',
    'login',
    'refresh',
    'forgot-password',
    'reset-password',
  ].map((route) => `/api/v1/auth/${route}`),
);
const REFRESH_PATH = '/api/v1/auth/refresh';
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

  /** Login and refresh answers sign the client in; a logout signs it out. */
  const capture = async (path: string, response: Response): Promise<Response> => {
    if (response.ok && (path === '/api/v1/auth/login' || path === REFRESH_PATH)) {
      setTokens(pairOf(await response.clone().json()));
    } else if (response.ok && SESSION_ENDS.has(path)) {
      setTokens(null);
    }
    return response;
  };

  const client = createClient<paths>({ baseUrl: options.baseUrl, fetch: sessionFetch });
  return Object.defineProperties(client as GatehouseClient, {
    tokens: { get: () => tokens, enumerable: true },
    setTokens: { value: setTokens, enumerable: true },
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
