import type { Auth0Client } from './client.js';
import { Auth0Error } from './errors.js';

/**
 * A session as `GET /api/v2/users/{user_id}/sessions` returns it (Management API reference,
 * "Get sessions for user"; scope `read:sessions`). Every property is read as unknown: the
 * mapper (src/pipeline/normalize-sessions.ts) checks each, and the object is kept whole as `raw`.
 */
export interface Auth0Session {
  id?: unknown;
  user_id?: unknown;
  created_at?: unknown;
  updated_at?: unknown;
  authenticated_at?: unknown;
  idle_expires_at?: unknown;
  expires_at?: unknown;
  last_interacted_at?: unknown;
  /** `{initial_user_agent, initial_ip, initial_asn, last_user_agent, last_ip, last_asn}`. */
  device?: unknown;
  /** `[{client_id}]`. */
  clients?: unknown;
  /** `{methods: [{name, timestamp, type}]}`; `type` only for `name: "mfa"`. */
  authentication?: unknown;
  [key: string]: unknown;
}

/** For messages and logs. */
export const SESSIONS_ROUTE = 'GET /api/v2/users/{user_id}/sessions';
/** The scope the route needs; SYNC_SESSIONS=auto lists sessions only when the access token has it. */
export const SESSIONS_SCOPE = 'read:sessions';

export interface SessionsPage {
  sessions: Auth0Session[];
  /** The cursor of the next page; undefined at the end. */
  next?: string;
}

export interface SessionListOptions {
  /** `take`, 1..100. */
  pageSize: number;
  /** Pages before the listing fails as `too_many_pages`. */
  maxPages: number;
  signal?: AbortSignal;
}

/**
 * One page of a user's sessions: one HTTP call through the client (its token, pacing, retries and
 * size cap). Throws Auth0Error: `user_not_found` for Auth0's own "the user does not exist" (any
 * other 404 is `bad_request`: a tenant without the route), `cursor_expired`, `missing_scope`, and
 * `bad_response` for an answer that is not `{sessions: [...], next?: string}`.
 */
export async function fetchSessionsPage(
  client: Auth0Client,
  userId: string,
  page: { take: number; from?: string },
  signal?: AbortSignal,
): Promise<SessionsPage> {
  const query: Record<string, string | number> = { take: page.take };
  if (page.from) query.from = page.from;
  // Encoded: ids such as `auth0|123` or `samlp|corp|a/b` must stay one path segment.
  const body = await client.getJson(`/api/v2/users/${encodeURIComponent(userId)}/sessions`, query, signal);
  if (!body || typeof body !== 'object' || Array.isArray(body)) {
    throw new Auth0Error('bad_response', `${SESSIONS_ROUTE} answered with JSON that is not an object`);
  }
  const { sessions, next } = body as Record<string, unknown>;
  // A body without the array is not "no sessions": taking it so would mark every session deleted.
  if (!Array.isArray(sessions)) throw new Auth0Error('bad_response', `${SESSIONS_ROUTE} answered without a sessions array`);
  if (next !== undefined && next !== null && typeof next !== 'string') {
    throw new Auth0Error('bad_response', `${SESSIONS_ROUTE} answered with a next cursor that is not a string`);
  }
  return { sessions: sessions as Auth0Session[], next: next || undefined };
}

/**
 * Every session of one user, one page at a time, following `next` with `from`. Stops on a
 * missing, null or empty `next` or on an empty page (a last page may still carry `next`, as the
 * token listings do); fails as `too_many_pages` past `maxPages`.
 */
export async function* listSessions(client: Auth0Client, userId: string, options: SessionListOptions): AsyncGenerator<Auth0Session[]> {
  let from: string | undefined;
  for (let page = 1; ; page += 1) {
    const { sessions, next } = await fetchSessionsPage(client, userId, { take: options.pageSize, from }, options.signal);
    if (sessions.length === 0) return;
    if (page > options.maxPages) {
      throw new Auth0Error('too_many_pages', `Listing sessions of ${userId} did not end after ${options.maxPages} pages (SYNC_MAX_PAGES_PER_USER)`);
    }
    yield sessions;
    if (!next) return;
    from = next;
  }
}

/**
 * All of one user's sessions (listSessions collected). An expired or invalid cursor restarts the
 * listing from the first page, once, dropping what was collected so nothing is counted twice.
 */
export async function collectSessions(client: Auth0Client, userId: string, options: SessionListOptions): Promise<Auth0Session[]> {
  for (let restarted = false; ; restarted = true) {
    const sessions: Auth0Session[] = [];
    try {
      for await (const page of listSessions(client, userId, options)) sessions.push(...page);
      return sessions;
    } catch (error) {
      if (restarted || !(error instanceof Auth0Error) || error.code !== 'cursor_expired') throw error;
    }
  }
}
