import type { Auth0Client } from './client.js';
import { collectAll, listPages, toObjectPage } from './pages.js';

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
  const { items, next } = toObjectPage<Auth0Session>(body, SESSIONS_ROUTE, 'sessions');
  return { sessions: items, next };
}

/**
 * Every session of one user, one page at a time (listPages: follows `next` with `from`, stops on
 * a missing, null or empty `next` or on an empty page, fails as `too_many_pages` past `maxPages`
 * and as `bad_response` on a cursor that does not advance).
 */
export function listSessions(client: Auth0Client, userId: string, options: SessionListOptions): AsyncGenerator<Auth0Session[]> {
  return listPages({
    what: `sessions of ${userId}`,
    maxPages: options.maxPages,
    fetchPage: async (from) => {
      const { sessions, next } = await fetchSessionsPage(client, userId, { take: options.pageSize, from }, options.signal);
      return { items: sessions, next };
    },
  });
}

/**
 * All of one user's sessions (listSessions collected). An expired or invalid cursor restarts the
 * listing from the first page, once, dropping what was collected so nothing is counted twice.
 */
export function collectSessions(client: Auth0Client, userId: string, options: SessionListOptions): Promise<Auth0Session[]> {
  return collectAll(() => listSessions(client, userId, options));
}
