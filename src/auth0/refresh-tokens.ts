import type { Auth0Client } from './client.js';
import { Auth0Error } from './errors.js';

/**
 * A refresh token as `GET /api/v2/refresh-tokens` returns it. Every property is optional in
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

export interface ListOptions {
  /** `take`, 1..100. */
  pageSize: number;
  /** Pages before the listing fails as `too_many_pages`. */
  maxPages: number;
  signal?: AbortSignal;
}

const PATH = '/api/v2/refresh-tokens';

/**
 * Every refresh token of one user, one page at a time, following `next` with `from`.
 * Stops on a missing, null or empty `next` or on an empty page: a real last page can still
 * carry `next` (recorded in go-auth0's test data). Throws Auth0Error, e.g. `user_not_found`
 * for a 404 and `cursor_expired` when the checkpoint is no longer valid.
 */
export async function* listRefreshTokens(
  client: Auth0Client,
  userId: string,
  options: ListOptions,
): AsyncGenerator<Auth0RefreshToken[]> {
  let from: string | undefined;
  for (let page = 1; ; page += 1) {
    const query: Record<string, string | number> = { user_id: userId, take: options.pageSize };
    if (from) query.from = from;
    const body = await client.getJson(PATH, query, options.signal);
    const { tokens, next } = toPage(body);
    if (tokens.length === 0) return;
    // Counted on pages that hold tokens, so the empty page confirming the end is always allowed.
    if (page > options.maxPages) {
      throw new Auth0Error(
        'too_many_pages',
        `Listing refresh tokens of ${userId} did not end after ${options.maxPages} pages (SYNC_MAX_PAGES_PER_USER)`,
      );
    }
    yield tokens;
    if (!next) return;
    from = next;
  }
}

/**
 * All of one user's tokens. An expired or invalid cursor restarts the listing from the
 * first page, once, dropping what was collected so nothing is counted twice.
 */
export async function fetchAllRefreshTokens(
  client: Auth0Client,
  userId: string,
  options: ListOptions,
): Promise<Auth0RefreshToken[]> {
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

function toPage(body: unknown): { tokens: Auth0RefreshToken[]; next?: string } {
  if (!body || typeof body !== 'object' || Array.isArray(body)) {
    throw new Auth0Error('bad_response', `GET ${PATH} answered with JSON that is not an object`);
  }
  const { refresh_tokens: tokens, next } = body as { refresh_tokens?: unknown; next?: unknown };
  // A body without the array is not "no tokens": taking it so would mark every token deleted.
  if (!Array.isArray(tokens)) {
    throw new Auth0Error('bad_response', `GET ${PATH} answered without a refresh_tokens array`);
  }
  if (next !== undefined && next !== null && typeof next !== 'string') {
    throw new Auth0Error('bad_response', `GET ${PATH} answered with a next cursor that is not a string`);
  }
  return { tokens: tokens as Auth0RefreshToken[], next: next || undefined };
}
