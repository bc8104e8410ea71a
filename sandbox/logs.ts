/**
 * The fake tenant's logs: `GET /api/v2/logs` in checkpoint mode (`from`/`take`, a `Link`
 * header with `rel="next"`, `[]` and a `next` back to the same URL when nothing is new) and in
 * search mode (`q`, `sort`, `page`/`per_page` capped at 1,000 results, `fields`/`include_fields`,
 * `include_totals`), as Auth0's Management API reference and its log export extension describe.
 * In checkpoint mode every parameter but `from` and `take` is ignored, as Auth0 documents; a
 * parameter the endpoint does not take at all is refused in either mode. Entries are appended by the sandbox's
 * mutators and by tests; log ids are fixed-width digit strings, so they sort as they were
 * appended. Imports no job code.
 */
import { booleanProblem, errorBody, firstAfter, unknownParameter, unknownParameterBody } from './http.js';

export type LogEntryJson = Record<string, unknown>;

export interface LogAnswer {
  status: number;
  body: string;
  headers: Record<string, string>;
}

/**
 * Ways the fake tenant's logs misbehave, for tests and `serve.ts` flags (issue #18). Auth0
 * documents none of these, but nothing in its docs rules them out either:
 * - `inclusiveFrom`: a page starts with the `from` entry itself;
 * - `stuckNext`: the `Link` header always points at the `from` just called;
 * - `expired`: how a `from` older than retention is answered: `refuse` (400, the default),
 *   `empty` (`[]`, `next` back to it) or `oldest` (from the oldest entry still held);
 * - `duplicates`: every entry of a page is sent twice;
 * - `outOfOrder`: a page's entries are sent newest first (the `Link` still points past them);
 * - `hostileIds`: each page carries one more entry whose `log_id` holds an ANSI escape, a NUL or
 *   600 characters (in turn);
 * - `hostileNext`: the `Link`'s `from` is such a hostile id.
 */
export interface LogQuirks {
  inclusiveFrom?: boolean;
  stuckNext?: boolean;
  expired?: 'refuse' | 'empty' | 'oldest';
  duplicates?: boolean;
  outOfOrder?: boolean;
  hostileIds?: boolean;
  hostileNext?: boolean;
}

/** The hostile log ids `hostileIds` and `hostileNext` use, in turn. */
export const HOSTILE_LOG_IDS: readonly string[] = ['\u001b[2J\u001b[31m90020261201 forged\u001b[0m', '90020261201\u0000with-a-nul', `9${'0'.repeat(599)}`];

export interface TenantLog {
  /** Every retained entry, oldest first. */
  readonly entries: readonly LogEntryJson[];
  /** Append one entry; `log_id` and `date` (now) are filled in unless given. Returns it. */
  append(entry: LogEntryJson): LogEntryJson;
  /** The newest entry's id, if any. */
  newestId(): string | undefined;
  /**
   * Drop every entry older than `logId`, as retention does: a checkpoint before it is then
   * answered as expired.
   */
  expireBefore(logId: string): void;
  /** Answer `GET /api/v2/logs` with this query; `origin` is where `Link` URLs point. */
  answer(query: URLSearchParams, origin: string): LogAnswer;
  /** How the answers misbehave from now on (replaces the previous quirks). */
  setQuirks(quirks: LogQuirks): void;
}

const SEARCH_LIMIT = 1000;
/** What `GET /api/v2/logs` takes (Auth0's OpenAPI description and node-auth0's GetLogsRequest). */
const LOG_PARAMETERS: ReadonlySet<string> = new Set(['q', 'page', 'per_page', 'sort', 'fields', 'include_fields', 'include_totals', 'from', 'take']);
/** One term of the sandbox's `q`: `field:value` or `field:"value"` (a subset of Auth0's Lucene syntax). */
const Q_TERM = /^([A-Za-z_][\w.]*):(?:"([^"]*)"|([^\s"]+))$/;
/** Not documented for the logs endpoint: the sandbox answers an expired checkpoint like this. */
const MSG_EXPIRED = "The checkpoint in the 'from' parameter is older than the log retention period of this tenant.";

function logIdOf(sequence: number): string {
  return `90020261201${String(sequence).padStart(20, '0')}`;
}

function idOf(entry: LogEntryJson): string {
  return typeof entry.log_id === 'string' ? entry.log_id : '';
}

function errorAnswer(status: number, message: string, errorCode: string): LogAnswer {
  return { status, body: errorBody(status, message, errorCode), headers: {} };
}

/** The value at a dotted path (`details.request.method`) of an entry, as text. */
function valueAt(entry: LogEntryJson, path: string): string | undefined {
  let value: unknown = entry;
  for (const part of path.split('.')) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value === undefined || value === null ? undefined : String(value);
}

/**
 * `q` as a filter: terms `field:value` (or `field:"a value"`) joined by spaces or `AND`, all of
 * which must match exactly. Auth0 takes full Lucene syntax; the sandbox refuses what it does not
 * understand rather than ignore it. Returns the filter, or the refusal.
 */
function parseQ(q: string): ((entry: LogEntryJson) => boolean) | LogAnswer {
  const terms: { field: string; value: string }[] = [];
  for (const word of q.match(/[^\s"]+:"[^"]*"|\S+/g) ?? []) {
    if (word === 'AND') continue;
    const match = Q_TERM.exec(word);
    if (!match) return errorAnswer(400, `Query validation error: the sandbox's 'q' takes field:value terms joined by AND, got '${q}'.`, 'invalid_query_string');
    terms.push({ field: match[1]!, value: match[2] ?? match[3]! });
  }
  return (entry) => terms.every((t) => valueAt(entry, t.field) === t.value);
}

/** `fields` kept (`include_fields` true, the default) or dropped from each entry. */
function project(entries: LogEntryJson[], query: URLSearchParams): LogEntryJson[] {
  const fields = query.get('fields');
  if (!fields) return entries;
  const names = new Set(
    fields
      .split(',')
      .map((f) => f.trim())
      .filter(Boolean),
  );
  const include = query.get('include_fields') !== 'false';
  return entries.map((entry) => Object.fromEntries(Object.entries(entry).filter(([key]) => names.has(key) === include)));
}

export function createTenantLog(initial: LogQuirks = {}): TenantLog {
  let quirks: LogQuirks = { ...initial };
  let hostile = 0;
  const nextHostile = () => HOSTILE_LOG_IDS[hostile++ % HOSTILE_LOG_IDS.length]!;
  let entries: LogEntryJson[] = [];
  let sequence = 0;
  /** The newest id dropped by retention; a `from` before it has lost history. */
  let droppedUpTo = '';

  function checkpointPage(query: URLSearchParams, origin: string): LogAnswer {
    const from = query.get('from') ?? '';
    const takeText = query.get('take');
    const take = takeText === null ? 50 : /^\d+$/.test(takeText) ? Number(takeText) : NaN;
    if (!(take >= 1 && take <= 100)) {
      return errorAnswer(400, `Query validation error: 'take' must be an integer between 1 and 100, got '${takeText ?? ''}'.`, 'invalid_query_string');
    }
    const expired = from < droppedUpTo;
    if (expired && (quirks.expired ?? 'refuse') === 'refuse') return errorAnswer(400, MSG_EXPIRED, 'invalid_query_string');
    let start = expired && quirks.expired === 'oldest' ? 0 : firstAfter(entries, idOf, from);
    if (quirks.inclusiveFrom && start > 0 && idOf(entries[start - 1]!) === from) start -= 1;
    const page = expired && quirks.expired === 'empty' ? [] : entries.slice(start, start + take);
    // With nothing new, `next` is the URL just called (Auth0's "Retrieve Log Events" docs).
    const nextFrom = quirks.hostileNext ? nextHostile() : quirks.stuckNext || page.length === 0 ? from : idOf(page.at(-1)!);
    const next = `${origin}/api/v2/logs?${new URLSearchParams({ from: nextFrom, take: String(take) })}`;
    let body: LogEntryJson[] = quirks.outOfOrder ? [...page].reverse() : page;
    if (quirks.duplicates) body = body.flatMap((entry) => [entry, entry]);
    if (quirks.hostileIds && page.length > 0) body = [...body, { ...page[0], log_id: nextHostile() }];
    return { status: 200, body: JSON.stringify(body), headers: { link: `<${next}>; rel="next"` } };
  }

  function searchPage(query: URLSearchParams): LogAnswer {
    const badBoolean = booleanProblem(query, 'include_fields') ?? booleanProblem(query, 'include_totals');
    if (badBoolean !== undefined) return { status: 400, body: badBoolean, headers: {} };
    const perPageText = query.get('per_page');
    const perPage = perPageText === null ? 50 : /^\d+$/.test(perPageText) ? Number(perPageText) : NaN;
    const pageText = query.get('page');
    const page = pageText === null ? 0 : /^\d+$/.test(pageText) ? Number(pageText) : NaN;
    if (!(perPage >= 1 && perPage <= 100) || !(page >= 0)) {
      return errorAnswer(400, "Query validation error: 'per_page' must be 1 to 100 and 'page' 0 or more.", 'invalid_query_string');
    }
    if ((page + 1) * perPage > SEARCH_LIMIT) {
      return errorAnswer(400, `You can only page through the first ${SEARCH_LIMIT} records. Use the checkpoint ('from') instead.`, 'invalid_paging');
    }
    const sort = query.get('sort') ?? 'date:-1';
    const match = /^(date|log_id):(-?1)$/.exec(sort);
    if (!match) return errorAnswer(400, `Query validation error: 'sort' must be a field and 1 or -1, got '${sort}'.`, 'invalid_query_string');
    // Tests may append entries with any date: order by date, then id.
    const byDate = [...entries].sort((a, b) => String(a.date).localeCompare(String(b.date)) || idOf(a).localeCompare(idOf(b)));
    const q = query.get('q');
    const filter = q ? parseQ(q) : undefined;
    if (filter && typeof filter !== 'function') return filter;
    const matching = filter ? byDate.filter(filter) : byDate;
    const ordered = match[2] === '-1' ? matching.reverse() : matching;
    const logs = project(ordered.slice(page * perPage, (page + 1) * perPage), query);
    // `include_totals=true` wraps the page with its offsets and the number of matches.
    const body = query.get('include_totals') === 'true' ? { start: page * perPage, limit: perPage, length: logs.length, total: ordered.length, logs } : logs;
    return { status: 200, body: JSON.stringify(body), headers: {} };
  }

  return {
    get entries() {
      return entries;
    },
    append(entry) {
      sequence += 1;
      const full = { log_id: logIdOf(sequence), date: new Date().toISOString(), ...entry };
      entries.push(full);
      return full;
    },
    newestId() {
      const last = entries.at(-1);
      return last ? idOf(last) : undefined;
    },
    expireBefore(logId) {
      const start = firstAfter(entries, idOf, logId) - (entries.some((e) => idOf(e) === logId) ? 1 : 0);
      const dropped = entries.slice(0, start);
      if (dropped.length > 0) droppedUpTo = idOf(dropped.at(-1)!);
      entries = entries.slice(start);
    },
    answer(query, origin) {
      const unknown = unknownParameter(query, LOG_PARAMETERS);
      if (unknown !== undefined) return { status: 400, body: unknownParameterBody(unknown), headers: {} };
      // Checkpoint mode: "any parameter other than from and take will be ignored" (Auth0's docs).
      return query.has('from') ? checkpointPage(query, origin) : searchPage(query);
    },
    setQuirks(next) {
      quirks = { ...next };
    },
  };
}

/**
 * The entries a change of one user's tokens writes, roughly as Auth0 would: `ss` for a new
 * user, a login (`s`) for each new token, a revocation (`srrt`) for each removed one and an
 * exchange (`sertft`) for each changed one.
 */
export function logEntriesForTokens(userId: string, before: LogEntryJson[] | undefined, after: LogEntryJson[]): LogEntryJson[] {
  if (!before) return [{ type: 'ss', user_id: userId, description: 'Successful signup' }];
  const out: LogEntryJson[] = [];
  const old = new Map(before.map((t) => [t.id, t]));
  const now = new Set(after.map((t) => t.id));
  for (const token of after) {
    const previous = old.get(token.id);
    const base = { user_id: userId, client_id: token.client_id };
    if (!previous) {
      out.push({ ...base, type: 's', description: 'Successful login', details: { session_id: token.session_id ?? null } });
    } else if (JSON.stringify(previous) !== JSON.stringify(token)) {
      out.push({ ...base, type: 'sertft', description: 'Successful exchange', details: { refresh_token: { session_id: token.session_id ?? null } } });
    }
  }
  for (const token of before) {
    if (!now.has(token.id)) {
      out.push({ type: 'srrt', user_id: userId, client_id: token.client_id, description: 'Refresh token revoked', details: { credential_id: token.id } });
    }
  }
  return out;
}

/**
 * Why the sandbox removes a user's tokens (issue #22), and so what it logs, as Auth0 would:
 * - `user`: the application revokes them for the user (`/oauth/revoke`): one `srrt` each;
 * - `api`: an admin deletes them through the Management API as `clientId`: one `sapi`
 *   `delete /api/v2/refresh-tokens/{id}` each;
 * - `reuse`: a rotated token was reused and Auth0 revoked the family: one `ferrt`;
 * - `logout`: the user logged out of the tokens' sessions: one `slo` per session;
 * - `session_api`: an admin revoked the tokens' sessions through the API: one `sapi`
 *   `post /api/v2/sessions/{id}/revoke` per session;
 * - `cleanup`: Auth0 removed them past 200 per user and application: one `resource_cleanup` per application;
 * - `expiry`: they expired: nothing (Auth0 logs no expiry).
 */
export type TokenRemoval = { by: 'user' | 'reuse' | 'logout' | 'cleanup' | 'expiry' } | { by: 'api' | 'session_api'; clientId: string; clientName?: string };

/** The entries Auth0 would write when `tokens` of `userId` go for `cause` (see TokenRemoval). */
export function logEntriesForRemoval(userId: string, tokens: readonly LogEntryJson[], cause: TokenRemoval): LogEntryJson[] {
  const distinct = (key: string) => [...new Set(tokens.map((t) => t[key]).filter((v): v is string => typeof v === 'string' && v !== ''))];
  const caller = (clientId: string, clientName = 'Sandbox admin') => ({ client_id: clientId, client_name: clientName, user_id: `${clientId}@clients` });
  switch (cause.by) {
    case 'user':
      return tokens.map((token) => ({
        type: 'srrt',
        user_id: userId,
        client_id: token.client_id,
        description: 'Refresh token revoked',
        details: { credential_id: token.id },
      }));
    case 'api':
      return tokens.map((token) => ({
        type: 'sapi',
        ...caller(cause.clientId, cause.clientName),
        description: 'Delete a refresh token',
        details: { request: { method: 'delete', path: `/api/v2/refresh-tokens/${encodeURIComponent(String(token.id))}` }, response: { statusCode: 202 } },
      }));
    case 'reuse':
      return [
        {
          type: 'ferrt',
          user_id: userId,
          client_id: tokens[0]?.client_id,
          description: 'Unsuccessful Refresh Token exchange, reused refresh token detected',
        },
      ];
    case 'logout':
      return distinct('session_id').map((session) => ({
        type: 'slo',
        user_id: userId,
        description: 'User successfully logged out',
        details: { session_id: session },
      }));
    case 'session_api':
      return distinct('session_id').map((session) => ({
        type: 'sapi',
        ...caller(cause.clientId, cause.clientName),
        description: 'Revoke a session',
        details: { request: { method: 'post', path: `/api/v2/sessions/${encodeURIComponent(session)}/revoke` }, response: { statusCode: 202 } },
      }));
    case 'cleanup':
      return distinct('client_id').map((client) => ({
        type: 'resource_cleanup',
        user_id: userId,
        client_id: client,
        description: 'Refresh token excess warning: the oldest tokens were removed past 200 per user and application',
      }));
    case 'expiry':
      return [];
  }
}

/** What Auth0 logs when a user is deleted: `sdu`, or a `sapi` delete when an admin's client did it through the API. */
export function logEntriesForUserDeletion(userId: string, byApi?: { clientId: string; clientName?: string }): LogEntryJson[] {
  if (!byApi) return [{ type: 'sdu', user_id: userId, description: 'User deleted' }];
  return [
    {
      type: 'sapi',
      client_id: byApi.clientId,
      client_name: byApi.clientName ?? 'Sandbox admin',
      user_id: `${byApi.clientId}@clients`,
      description: 'Delete a user',
      details: { request: { method: 'delete', path: `/api/v2/users/${encodeURIComponent(userId)}` }, response: { statusCode: 204 } },
    },
  ];
}
