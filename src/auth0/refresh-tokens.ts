import type { Auth0Client } from './client.js';
import { checkIdText } from '../core/upstream-text.js';
import { Auth0Error } from './errors.js';

/**
 * A refresh token as either listing endpoint returns it. Every property is optional in
 * the spec and Auth0 adds fields over time (additionalProperties: true), so this is only what
 * we read; the object itself is kept whole as `raw`.
 */
export interface Auth0RefreshToken {
  id?: unknown;
  user_id?: unknown;
  client_id?: unknown;
  session_id?: unknown;
  rotating?: unknown;
  created_at?: unknown;
  idle_expires_at?: unknown;
  expires_at?: unknown;
  last_exchanged_at?: unknown;
  device?: unknown;
  resource_servers?: unknown;
  refresh_token_metadata?: unknown;
  [key: string]: unknown;
}

/**
 * The two Management API routes that list one user's refresh tokens, with the same token
 * objects, `from`/`take` cursors and end rules (auth0-api.md):
 * - `refresh-tokens`: `GET /api/v2/refresh-tokens?user_id=…` answering `{refresh_tokens, next}`;
 *   marked Early Access, so a tenant may not have it (issue #12).
 * - `users`: `GET /api/v2/users/{user_id}/refresh-tokens`; generally available. Asked with
 *   `include_totals=true` it answers `{tokens, next}` (what its 200 schema describes and the
 *   official Node SDK always asks for); its parameter text says `false`, the default, answers a
 *   bare array of tokens. Both shapes are accepted, so a tenant that ignores the parameter still
 *   syncs: after a bare array the next page starts after its last token's id, which this route
 *   documents as its `from` (auth0-api.md).
 */
export type TokensEndpoint = 'refresh-tokens' | 'users';

interface EndpointShape {
  /** For messages and logs: the route, with `{user_id}` where the id goes. */
  route: string;
  path(userId: string): string;
  query(userId: string): Record<string, string>;
  /** The key of the answer's token array. */
  arrayKey: 'refresh_tokens' | 'tokens';
  /** Whether a bare array of tokens is a valid answer too (see TokensEndpoint). */
  bareArray: boolean;
}

/** Longest token id taken as the next `from` after a bare array; real ids are a few dozen characters. */
const MAX_TOKEN_ID_LENGTH = 1024;

const ENDPOINTS: Record<TokensEndpoint, EndpointShape> = {
  'refresh-tokens': {
    route: 'GET /api/v2/refresh-tokens',
    path: () => '/api/v2/refresh-tokens',
    query: (userId) => ({ user_id: userId }),
    arrayKey: 'refresh_tokens',
    bareArray: false,
  },
  users: {
    route: 'GET /api/v2/users/{user_id}/refresh-tokens',
    // Encoded: ids such as `auth0|123` or `samlp|corp|a/b` must stay one path segment.
    path: (userId) => `/api/v2/users/${encodeURIComponent(userId)}/refresh-tokens`,
    query: () => ({ include_totals: 'true' }),
    arrayKey: 'tokens',
    bareArray: true,
  },
};

/** `GET /api/v2/…` with `{user_id}` standing for the id, for messages and logs. */
export function tokensEndpointRoute(endpoint: TokensEndpoint): string {
  return ENDPOINTS[endpoint].route;
}

export interface ListOptions {
  /** `take`, 1..100. */
  pageSize: number;
  /** Pages before the listing fails as `too_many_pages`. */
  maxPages: number;
  /** Which route lists the tokens; default `refresh-tokens`. */
  endpoint?: TokensEndpoint;
  signal?: AbortSignal;
}

/**
 * Every refresh token of one user, one page at a time, following `next` with `from`, through
 * `options.endpoint` (one loop for both routes: only the path and the array key differ).
 * Stops on a missing, null or empty `next` or on an empty page: a real last page can still
 * carry `next` (recorded in go-auth0's test data). Throws Auth0Error, e.g. `user_not_found`
 * for a 404 and `cursor_expired` when the checkpoint is no longer valid.
 */
export async function* listRefreshTokens(client: Auth0Client, userId: string, options: ListOptions): AsyncGenerator<Auth0RefreshToken[]> {
  const shape = ENDPOINTS[options.endpoint ?? 'refresh-tokens'];
  const path = shape.path(userId);
  let from: string | undefined;
  for (let page = 1; ; page += 1) {
    const query: Record<string, string | number> = { ...shape.query(userId), take: options.pageSize };
    if (from) query.from = from;
    const body = await client.getJson(path, query, options.signal);
    const { tokens, next } = toPage(body, shape);
    if (tokens.length === 0) return;
    // Counted on pages that hold tokens, so the empty page confirming the end is always allowed.
    if (page > options.maxPages) {
      throw new Auth0Error('too_many_pages', `Listing refresh tokens of ${userId} did not end after ${options.maxPages} pages (SYNC_MAX_PAGES_PER_USER)`);
    }
    yield tokens;
    if (!next) return;
    // A tenant that ignores `from` answers the same page again: stop at once, not after maxPages.
    if (next === from) throw new Auth0Error('bad_response', `Listing refresh tokens of ${userId} answered the same cursor twice: the listing does not advance`);
    from = next;
  }
}

/**
 * All of one user's tokens. An expired or invalid cursor restarts the listing from the
 * first page, once, dropping what was collected so nothing is counted twice.
 */
export async function fetchAllRefreshTokens(client: Auth0Client, userId: string, options: ListOptions): Promise<Auth0RefreshToken[]> {
  for (let restarted = false; ; restarted = true) {
    const tokens: Auth0RefreshToken[] = [];
    try {
      for await (const page of listRefreshTokens(client, userId, options)) tokens.push(...page);
      return tokens;
    } catch (error) {
      if (restarted || !(error instanceof Auth0Error) || error.code !== 'cursor_expired') throw error;
    }
  }
}

function toPage(body: unknown, shape: EndpointShape): { tokens: Auth0RefreshToken[]; next?: string } {
  if (shape.bareArray && Array.isArray(body)) return toBareArrayPage(body, shape);
  if (!body || typeof body !== 'object' || Array.isArray(body)) {
    throw new Auth0Error('bad_response', `${shape.route} answered with JSON that is not an object`);
  }
  const { [shape.arrayKey]: tokens, next } = body as Record<string, unknown>;
  // A body without the array is not "no tokens": taking it so would mark every token deleted.
  if (!Array.isArray(tokens)) {
    throw new Auth0Error('bad_response', `${shape.route} answered without a ${shape.arrayKey} array`);
  }
  if (next !== undefined && next !== null && typeof next !== 'string') {
    throw new Auth0Error('bad_response', `${shape.route} answered with a next cursor that is not a string`);
  }
  return { tokens: tokens as Auth0RefreshToken[], next: next || undefined };
}

/**
 * A bare array of tokens: the page itself, and the next `from` is its last token's id. That id
 * is upstream text and goes back into a URL: an id that is not a string, or fails checkIdText,
 * is refused (`bad_response`) rather than sent.
 */
function toBareArrayPage(tokens: unknown[], shape: EndpointShape): { tokens: Auth0RefreshToken[]; next?: string } {
  const last = tokens.at(-1);
  if (last === undefined) return { tokens: [] };
  const id = last && typeof last === 'object' && !Array.isArray(last) ? (last as Auth0RefreshToken).id : undefined;
  const problem = typeof id === 'string' ? checkIdText(id, MAX_TOKEN_ID_LENGTH) : 'is not a string';
  if (problem !== undefined || typeof id !== 'string') {
    throw new Auth0Error('bad_response', `${shape.route} answered an array whose last token's id ${problem ?? 'is not a string'}`);
  }
  return { tokens: tokens as Auth0RefreshToken[], next: id };
}
