import type { Auth0Client } from './client.js';
import { checkIdValue } from '../core/upstream-text.js';
import { Auth0Error } from './errors.js';
import { collectAll, listPages, toObjectPage, type Page } from './pages.js';

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
 * Every refresh token of one user, one page at a time, through `options.endpoint` (one loop for
 * both routes: only the path and the answer's shape differ). listPages: follows `next` with
 * `from`; stops on a missing, null or empty `next` or on an empty page (a real last page can still
 * carry `next`, recorded in go-auth0's test data); fails as `too_many_pages` past `maxPages` and
 * as `bad_response` on a cursor that does not advance. Throws Auth0Error, e.g. `user_not_found`
 * for a 404 and `cursor_expired` when the checkpoint is no longer valid.
 */
export function listRefreshTokens(client: Auth0Client, userId: string, options: ListOptions): AsyncGenerator<Auth0RefreshToken[]> {
  const shape = ENDPOINTS[options.endpoint ?? 'refresh-tokens'];
  const path = shape.path(userId);
  return listPages({
    what: `refresh tokens of ${userId}`,
    maxPages: options.maxPages,
    fetchPage: async (from) => {
      const query: Record<string, string | number> = { ...shape.query(userId), take: options.pageSize };
      if (from) query.from = from;
      return toPage(await client.getJson(path, query, options.signal), shape);
    },
  });
}

/**
 * All of one user's tokens. An expired or invalid cursor restarts the listing from the
 * first page, once, dropping what was collected so nothing is counted twice.
 */
export function fetchAllRefreshTokens(client: Auth0Client, userId: string, options: ListOptions): Promise<Auth0RefreshToken[]> {
  return collectAll(() => listRefreshTokens(client, userId, options));
}

function toPage(body: unknown, shape: EndpointShape): Page<Auth0RefreshToken> {
  if (shape.bareArray && Array.isArray(body)) return toBareArrayPage(body, shape);
  return toObjectPage<Auth0RefreshToken>(body, shape.route, shape.arrayKey);
}

/**
 * A bare array of tokens: the page itself, and the next `from` is its last token's id. That id
 * is upstream text and goes back into a URL: an id that is not a string, or fails checkIdText,
 * is refused (`bad_response`) rather than sent.
 */
function toBareArrayPage(tokens: unknown[], shape: EndpointShape): Page<Auth0RefreshToken> {
  const last = tokens.at(-1);
  if (last === undefined) return { items: [] };
  const id = last && typeof last === 'object' && !Array.isArray(last) ? (last as Auth0RefreshToken).id : undefined;
  const problem = checkIdValue(id, MAX_TOKEN_ID_LENGTH);
  if (problem !== undefined || typeof id !== 'string') {
    throw new Auth0Error('bad_response', `${shape.route} answered an array whose last token's id ${problem ?? 'is not a string'}`);
  }
  return { items: tokens as Auth0RefreshToken[], next: id };
}
