import { RequestError } from 'got';
import { SyncError } from '../core/errors.js';
import { toSafeText } from '../core/upstream-text.js';

/**
 * Stable codes for everything the Auth0 client can report. `fatal` codes doom every user
 * (stop the run); `retryable` ones are retried by the client before they ever surface.
 */
export type Auth0ErrorCode =
  | 'invalid_credentials' // the token endpoint refused the client id/secret
  | 'missing_scope' // read:refresh_tokens not granted (token answer or a 403 that says so)
  | 'forbidden' // any other 403: the client may not call the endpoint at all
  | 'token_unavailable' // the token endpoint kept failing after retries
  | 'token_refused' // the token endpoint answered another 4xx, a redirect or an unexpected success
  | 'unauthorized' // a 401 that survived getting a fresh access token
  | 'user_not_found' // 404: the user is gone from Auth0
  | 'cursor_expired' // 400: the `from` checkpoint expired or is invalid
  | 'bad_request' // any other 4xx
  | 'rate_limited' // 429 after the rate-limit wait budget ran out
  | 'server_error' // 5xx or 408
  | 'network_error' // reset, refused, timeout
  | 'bad_response' // a body that is not the JSON we expect
  | 'response_too_large' // a body over AUTH0_MAX_RESPONSE_BYTES, cut off while it streamed
  | 'too_many_pages' // a cursor that never ends
  | 'endpoint_unavailable'; // the tenant does not serve the listing route (see saysUnavailable)

const FATAL: ReadonlySet<Auth0ErrorCode> = new Set([
  'invalid_credentials',
  'missing_scope',
  'forbidden',
  'token_unavailable',
  'token_refused',
  'unauthorized',
  'endpoint_unavailable',
]);
/** Retried with backoff. A 429 is not here: it is waited out, and `rate_limited` means the waits ran out. */
const RETRYABLE: ReadonlySet<Auth0ErrorCode> = new Set(['server_error', 'network_error', 'bad_response']);
/** The Management API's words for a user that does not exist (spec and recorded answers). */
const USER_GONE = /^(the user does not exist|user not found)/i;

export class Auth0Error extends SyncError {
  declare readonly code: Auth0ErrorCode;
  constructor(
    code: Auth0ErrorCode,
    message: string,
    /** HTTP status, when there was an answer. */
    readonly status?: number,
  ) {
    super(code, message);
  }
  get retryable(): boolean {
    return RETRYABLE.has(this.code);
  }
  override get fatal(): boolean {
    return FATAL.has(this.code);
  }
}

/** Longest OAuth `error` code kept from a token answer; real ones are a few words. */
const MAX_OAUTH_ERROR = 64;
/** Longest `error_description` kept from a token answer. */
const MAX_OAUTH_DESCRIPTION = 256;

function parseObject(body: string): Record<string, unknown> | undefined {
  try {
    const parsed: unknown = JSON.parse(body);
    return parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : undefined;
  } catch {
    return undefined; // not JSON: some 5xx answers are HTML
  }
}

/**
 * The Management API's error body, as far as it is JSON: `{statusCode, error, message, errorCode}`;
 * otherwise the body itself. Always through `toSafeText`: an answer may echo the request
 * (the `Authorization` header, the client secret) or carry escape sequences.
 */
function describeErrorBody(body: string): string {
  const parsed = parseObject(body);
  const text = parsed?.message ?? parsed?.error_description ?? parsed?.error;
  return toSafeText(typeof text === 'string' ? text : body);
}

/**
 * Map an answer of the Management API that is not a success to a coded error. The message
 * holds only safe text (`toSafeText`): secrets scrubbed, control characters stripped, ~1 KB.
 * Not for the token endpoint: see `tokenEndpointError`.
 */
export function errorForStatus(status: number, body: string, what: string): Auth0Error {
  const detail = describeErrorBody(body);
  const message = `${what} answered ${status}${detail ? `: ${detail}` : ''}`;
  if (status === 404) {
    // Only Auth0's own "no such user" means the user is gone. A 404 from a wrong AUTH0_DOMAIN,
    // a proxy or a tenant without the endpoint must not mark anyone's tokens deleted.
    return parseObject(body)?.errorCode === 'inexistent_user' || USER_GONE.test(detail)
      ? new Auth0Error('user_not_found', message, status)
      : new Auth0Error('bad_request', message, status);
  }
  if (status === 400 && /checkpoint/i.test(detail)) return new Auth0Error('cursor_expired', message, status);
  if (status === 401) return new Auth0Error('unauthorized', message, status);
  if (status === 403) {
    if (!/scope/i.test(detail)) return new Auth0Error('forbidden', message, status);
    // Auth0 names what the call needs ("Insufficient scope, expected any of: read:users").
    const scopes = /expected (?:any|all) of:\s*([a-z:_, ]+)/i.exec(detail)?.[1]?.split(/[ ,]+/).filter(Boolean) ?? [];
    const needed = scopes.length > 0 ? `the ${scopes.join(' or ')} scope` : 'the scope this call needs';
    return new Auth0Error(
      'missing_scope',
      `${message}; grant ${needed} to the client in the Auth0 dashboard (APIs → Auth0 Management API → Machine to Machine Applications)`,
      status,
    );
  }
  if (status === 429) return new Auth0Error('rate_limited', message, status);
  if (status === 408 || status >= 500) return new Auth0Error('server_error', message, status);
  return new Auth0Error('bad_request', message, status);
}

/**
 * Map an answer of the token endpoint (`POST /oauth/token`) that is not a 200. Keeps only the
 * status and the OAuth `error` code, plus a short scrubbed `error_description`: nothing else
 * of the body (it may echo the client secret). Never `user_not_found`: no token answer says
 * anything about a user. 408, 429 and 5xx are `server_error` (retried, then
 * `token_unavailable`); 401/403 are `invalid_credentials`; anything else (another 4xx, a
 * redirect, an odd 2xx) is `token_refused`. All but `server_error` stop the run.
 */
export function tokenEndpointError(status: number, body: string, what: string): Auth0Error {
  const parsed = parseObject(body);
  const code = typeof parsed?.error === 'string' ? toSafeText(parsed.error, MAX_OAUTH_ERROR) : '';
  const description = typeof parsed?.error_description === 'string' ? toSafeText(parsed.error_description, MAX_OAUTH_DESCRIPTION) : '';
  const detail = [code, description && `(${description})`].filter(Boolean).join(' ');
  const message = `${what} answered ${status}${detail ? `: ${detail}` : ''}`;
  if (status === 408 || status === 429 || status >= 500) return new Auth0Error('server_error', message, status);
  if (status === 401 || status === 403) {
    return new Auth0Error('invalid_credentials', `${message}. Check AUTH0_CLIENT_ID, AUTH0_CLIENT_SECRET and AUTH0_AUDIENCE.`, status);
  }
  return new Auth0Error('token_refused', `${message}. The token endpoint refused the request; check AUTH0_DOMAIN and AUTH0_AUDIENCE.`, status);
}

/** Codes only the token endpoint produces. */
const TOKEN_ENDPOINT_CODES: ReadonlySet<Auth0ErrorCode> = new Set(['invalid_credentials', 'token_refused', 'token_unavailable']);

/** A 400 whose words say the route, feature or parameter is unknown here, not that a value is wrong. */
const UNKNOWN_FEATURE = /feature|early access|not (enabled|available|supported)|unknown (query )?param|additional propert/i;

/**
 * Whether an answer from a listing route says the route is not there on this tenant (issue #12):
 * a 404 that is not Auth0's "the user does not exist", a 403 that names no scope (`forbidden`;
 * only when `forbiddenCounts`), or a 400 saying the feature or parameter is unknown. Never true
 * for `user_not_found`, so a deleted user is never taken for a missing route and vice versa.
 */
export function saysUnavailable(error: unknown, options: { forbiddenCounts: boolean }): error is Auth0Error {
  if (!(error instanceof Auth0Error)) return false;
  // An answer of the token endpoint says nothing about the listing routes (issue #8).
  if (TOKEN_ENDPOINT_CODES.has(error.code)) return false;
  if (error.status === 404) return error.code !== 'user_not_found';
  if (error.status === 403) return options.forbiddenCounts && error.code === 'forbidden';
  if (error.status === 400) return error.code === 'bad_request' && UNKNOWN_FEATURE.test(answerOf(error));
  return false;
}

/**
 * A got failure (reset, timeout, refused) as safe text: only got's code and message, never its
 * error object, which holds the request options, headers included; the message can hold a URL
 * or a proxy's words, so it goes through toSafeText.
 */
export function describeRequestError(error: unknown, max?: number): string {
  return toSafeText(error instanceof RequestError ? `${error.code} ${error.message}` : String(error), max);
}

/**
 * The words of an error from " answered …" on (errorForStatus's message): what the server said,
 * without the method and path before it, which may hold a user id.
 */
export function answerOf(error: Auth0Error): string {
  return error.message.slice(Math.max(0, error.message.indexOf(' answered ')));
}
