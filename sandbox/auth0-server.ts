/**
 * A fake Auth0 Management API on a real `node:http` server: `POST /oauth/token`,
 * `GET /api/v2/refresh-tokens` (Early Access: `earlyAccess: false` switches it off),
 * `GET /api/v2/users/{user_id}/refresh-tokens`, `GET /api/v2/users/{user_id}/sessions` and `GET /api/v2/logs` (see logs.ts), with Auth0's wire format (as documented in Auth0's Management API reference and recorded answers in auth0/go-auth0's test data),
 * keyset cursors, a token-bucket rate limiter, seeded transient faults and scripted faults.
 * Used by the Jest tests, the benchmark (through serve.ts) and the demo sandbox.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import {
  booleanProblem,
  closeServer,
  errorBody,
  firstAfter,
  listenOnLoopback,
  readBody,
  UNKNOWN_ROUTE_BODY,
  unknownParameter,
  unknownParameterBody,
} from './http.js';
import { byId, mulberry32, sessionsForTokens, tokenId, type Auth0SessionJson, type Auth0TokenJson } from './tenant.js';
import {
  createTenantLog,
  logEntriesForRemoval,
  logEntriesForTokens,
  logEntriesForUserDeletion,
  type LogEntryJson,
  type LogQuirks,
  type TenantLog,
  type TokenRemoval,
} from './logs.js';
import { startUsersExport, type UsersExportOptions, type UsersExportSandbox } from './users-export.js';

/** A scripted answer from `intercept`. */
export interface Fault {
  /** Default 500 (unless only `delayMs` is set). */
  status?: number;
  /** Default: a JSON error body in Auth0's shape for `status`. */
  body?: string;
  headers?: Record<string, string>;
  /** Destroy the socket without answering. */
  reset?: boolean;
  /** Answer after a delay; alone, it means "delay, then handle normally". */
  delayMs?: number;
  /** Send a 200 with a cut-off JSON body. */
  truncate?: boolean;
}

export interface InterceptContext {
  method: string;
  path: string;
  query: URLSearchParams;
  userId?: string;
  /** 1-based index of this request among all requests to the server. */
  count: number;
}

export interface FakeAuth0Options {
  /** Default 'test-client'. */
  clientId?: string;
  /** Default 'test-secret'. */
  clientSecret?: string;
  /** Scope granted in the token answer, default 'read:refresh_tokens read:users read:logs'. */
  scope?: string;
  /** `expires_in` of access tokens, default 86400. */
  tokenLifetimeSeconds?: number;
  /**
   * Token bucket for /api/v2/*, whose state every answer carries in `x-ratelimit-limit`,
   * `-remaining` and `-reset`, as Auth0's always do. Default DEFAULT_RATE_LIMIT: generous enough
   * that no test or benchmark on one machine reaches it, so the job's header-driven limiter
   * runs in every test without ever holding a request back.
   */
  rateLimit?: { perSecond: number; burst: number };
  /**
   * Default false: `GET /api/v2/users/{user_id}/refresh-tokens` honours `include_totals` as
   * Auth0's parameter text says. True: it always answers the bare array (and takes a token id as
   * `from`), as a tenant that ignores the parameter would.
   */
  usersRouteBareArray?: boolean;
  /** Added delay before each /api/v2 answer, default 0. */
  latencyMs?: number;
  /** Default 24 h. */
  cursorLifetimeMs?: number;
  /** Default true: the last non-empty page still carries `next`, as a real Auth0 recording shows. */
  nextOnLastPage?: boolean;
  /** 0..1, default 0: fraction of /api/v2 requests that fail transiently (seeded PRNG). */
  faultRate?: number;
  /** PRNG seed, default 1. */
  seed?: number;
  /**
   * Default true: the tenant serves the Early Access `GET /api/v2/refresh-tokens`. When false it
   * answers that route as an unknown one; `GET /api/v2/users/{user_id}/refresh-tokens` always works.
   */
  earlyAccess?: boolean;
  /** Default 0 (ephemeral); the host is always 127.0.0.1. */
  port?: number;
  /** The users export's job timing, link lifetime and storage host (sandbox/users-export.ts). */
  usersExport?: UsersExportOptions;
  /** How the logs endpoint misbehaves (logs.ts); tests may change it later with `logs.setQuirks`. */
  logQuirks?: LogQuirks;
  /**
   * `GET /api/v2/users/{user_id}/sessions` (issue #22): `on` (default) serves it to tokens with
   * `read:sessions` (403 "Insufficient scope" without); `absent` answers it as an unknown route
   * (404), `forbidden` as a tenant whose plan lacks it (403 naming no scope).
   */
  sessionsEndpoint?: SessionsEndpointMode;
}

export type SessionsEndpointMode = 'on' | 'absent' | 'forbidden';

export interface FakeAuth0Stats {
  requests: number;
  tokenRequests: number;
  /** Requests to either listing route. */
  listRequests: number;
  /** Requests to `GET /api/v2/logs`. */
  logRequests: number;
  /** Of those, requests to `GET /api/v2/users/{user_id}/refresh-tokens`. */
  userListRequests: number;
  /** Requests to `GET /api/v2/users/{user_id}/sessions` (not counted in `listRequests`). */
  sessionListRequests: number;
  rateLimited: number;
  faults: number;
  byStatus: Record<number, number>;
  maxInFlight: number;
  /**
   * Listings of one user's tokens or sessions that arrived while another listing of the same
   * user was still unanswered: two runs of one tenant at once (issue #23 wants none), or a run
   * listing a user twice in parallel.
   */
  overlappingUserListings: number;
  firstRequestAt?: number;
  lastRequestAt?: number;
}

export interface FakeAuth0 {
  /** 'http://127.0.0.1:PORT' */
  readonly url: string;
  /** The tenant: user id -> tokens. Tests may mutate it between (or during) runs. */
  readonly users: Map<string, Auth0TokenJson[]>;
  /**
   * Stores a copy of `tokens` sorted by id, and logs the change (`ss`, `s`, `sertft`, `srrt`:
   * see logs.ts). Mutating `users` directly logs nothing.
   */
  setUser(userId: string, tokens: Auth0TokenJson[]): void;
  /** Removes the user and logs `sdu`, or a `sapi` delete of the user when `byApi` names the admin's client. */
  deleteUser(userId: string, byApi?: { clientId: string; clientName?: string }): void;
  /**
   * Removes these tokens of the user and logs what Auth0 logs for `cause` (issue #22: a revocation
   * by the user or through the API, reuse detection, a logout or session revocation, the 200-token
   * cleanup, or nothing for an expiry). Returns the entries appended.
   */
  removeTokens(userId: string, tokenIds: readonly string[], cause: TokenRemoval): LogEntryJson[];
  /**
   * The sessions the tenant lists for a user: those set with `setSessions`, else the ones its
   * tokens' `session_id`s derive (tenant.ts `sessionsForTokens`); undefined for an unknown user.
   */
  sessionsOf(userId: string): Auth0SessionJson[] | undefined;
  /** Replace the sessions listed for a user (sorted by id); `undefined` goes back to the derived ones. */
  setSessions(userId: string, sessions: Auth0SessionJson[] | undefined): void;
  /** Serve the sessions route (`on`), or answer it as a tenant without it. */
  setSessionsEndpoint(mode: SessionsEndpointMode): void;
  /** The tenant logs (`GET /api/v2/logs`); tests append entries and expire old ones here. */
  readonly logs: TenantLog;
  /** Scripted faults, consulted for every request before anything else; `undefined` removes it. */
  intercept(fn: ((ctx: InterceptContext) => Fault | undefined) | undefined): void;
  /** Every cursor issued so far becomes invalid. */
  expireCursors(): void;
  /** Every access token issued so far becomes invalid (401 "Invalid token."). */
  revokeAccessTokens(): void;
  /** Scope granted to access tokens issued from now on; tokens already issued keep theirs, like a JWT. */
  setScope(scope: string): void;
  /** Serve (true) or switch off (false) the Early Access `GET /api/v2/refresh-tokens`. */
  setEarlyAccess(enabled: boolean): void;
  /** `POST /api/v2/jobs/users-exports`, `GET /api/v2/jobs/{id}` and the storage host of their files. */
  readonly usersExport: UsersExportSandbox;
  readonly stats: FakeAuth0Stats;
  resetStats(): void;
  /** Closes the server and every keep-alive socket, and cancels pending delayed answers. */
  close(): Promise<void>;
}

const JSON_TYPE = 'application/json; charset=utf-8';

/** The bucket when `rateLimit` is not set: 10,000 requests, refilled at 10,000 a second. */
export const DEFAULT_RATE_LIMIT: Readonly<{ perSecond: number; burst: number }> = Object.freeze({ perSecond: 10_000, burst: 10_000 });
const EA_LIST_PATH = '/api/v2/refresh-tokens';
const USER_LIST_PATH = /^\/api\/v2\/users\/([^/]+)\/refresh-tokens$/;
const SESSIONS_PATH = /^\/api\/v2\/users\/([^/]+)\/sessions$/;
const SESSIONS_SCOPE = 'read:sessions';
/** What the sandbox grants by default: what the job needs, without sessions (tests of tokens alone). */
const DEFAULT_SCOPE = 'read:refresh_tokens read:users read:logs';
/** Every scope the job can use, sessions included (`npm run sandbox`, the demo). */
export const SCOPE_WITH_SESSIONS = `${DEFAULT_SCOPE} ${SESSIONS_SCOPE}`;

/** The user a sessions listing asks for; undefined for other paths, '' for a malformed escape. */
function sessionsRoute(path: string): string | undefined {
  const match = SESSIONS_PATH.exec(path);
  if (!match) return undefined;
  try {
    return decodeURIComponent(match[1]!);
  } catch {
    return '';
  }
}
/**
 * The query parameters each listing route takes (Auth0's Management API OpenAPI description);
 * any other is refused with Auth0's 400. The Early Access route has no `include_totals`; the
 * users route has no `client_id`, `fields` or `include_fields`.
 */
const EA_PARAMETERS: ReadonlySet<string> = new Set(['user_id', 'client_id', 'from', 'take', 'fields', 'include_fields']);
const USERS_PARAMETERS: ReadonlySet<string> = new Set(['include_totals', 'from', 'take']);

/**
 * Which listing route `path` is and whose tokens it asks for: the query's `user_id` for the
 * Early Access route, the decoded path segment for the users route. Undefined for other paths.
 */
function listRoute(path: string, query: URLSearchParams): { route: 'refresh-tokens' | 'users'; userId: string | undefined } | undefined {
  if (path === EA_LIST_PATH) return { route: 'refresh-tokens', userId: query.get('user_id') ?? undefined };
  const match = USER_LIST_PATH.exec(path);
  if (!match) return undefined;
  try {
    return { route: 'users', userId: decodeURIComponent(match[1]!) };
  } catch {
    return { route: 'users', userId: undefined }; // malformed escapes: answered as a missing user id
  }
}
const REQUIRED_SCOPE = 'read:refresh_tokens';
const LOGS_PATH = '/api/v2/logs';
const LOG_SCOPES = ['read:logs', 'read:logs_users'];

const MSG_INVALID_TOKEN = 'Invalid token.';
const MSG_EXPIRED_TOKEN = 'Expired token received for JSON Web Token validation';
const MSG_BAD_CURSOR = "The checkpoint ID provided in the 'from' parameter has expired or is invalid, please remove the checkpoint ID and try again";

function sortedById(tokens: Auth0TokenJson[]): Auth0TokenJson[] {
  for (let i = 1; i < tokens.length; i++) {
    if (byId(tokens[i - 1]!, tokens[i]!) > 0) return [...tokens].sort(byId);
  }
  return tokens;
}

interface Cursor {
  u: string; // user id
  l: string; // last id returned (exclusive start of the next page)
  t: number; // issued at, ms
  g: number; // generation, bumped by expireCursors()
}

function encodeCursor(c: Cursor): string {
  return Buffer.from(JSON.stringify(c)).toString('base64url');
}

function decodeCursor(from: string): Cursor | undefined {
  try {
    const c = JSON.parse(Buffer.from(from, 'base64url').toString('utf8')) as Partial<Cursor> | null;
    if (c && typeof c.u === 'string' && typeof c.l === 'string' && typeof c.t === 'number' && typeof c.g === 'number') {
      return c as Cursor;
    }
  } catch {
    // malformed: reported as an invalid checkpoint below
  }
  return undefined;
}

function project(token: Auth0TokenJson, fields: Set<string>, include: boolean): Auth0TokenJson {
  const out: Auth0TokenJson = {};
  for (const key of Object.keys(token)) {
    if (fields.has(key) === include) out[key] = token[key];
  }
  return out;
}

function parseTokenBody(req: IncomingMessage, raw: string): Record<string, unknown> | undefined {
  const type = req.headers['content-type'] ?? '';
  if (type.includes('json')) {
    try {
      const parsed: unknown = JSON.parse(raw);
      return parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? (parsed as Record<string, unknown>) : undefined;
    } catch {
      return undefined;
    }
  }
  return Object.fromEntries(new URLSearchParams(raw));
}

interface AccessToken {
  expiresAt: number;
  scopes: Set<string>;
}

type TransientFault = 'html503' | 'json500' | 'timeout408' | 'reset' | 'truncated' | 'garbage';
const TRANSIENT_FAULTS: readonly TransientFault[] = ['html503', 'json500', 'timeout408', 'reset', 'truncated', 'garbage'];
const TRUNCATED_BODY = '{"refresh_tokens":[{"id":"rt_';

/** Starts the fake Auth0 tenant on 127.0.0.1 and resolves once it is listening. */
export async function startFakeAuth0(options: FakeAuth0Options = {}): Promise<FakeAuth0> {
  const clientId = options.clientId ?? 'test-client';
  const clientSecret = options.clientSecret ?? 'test-secret';
  const tokenLifetimeSeconds = options.tokenLifetimeSeconds ?? 86400;
  const latencyMs = options.latencyMs ?? 0;
  const cursorLifetimeMs = options.cursorLifetimeMs ?? 24 * 60 * 60 * 1000;
  const nextOnLastPage = options.nextOnLastPage ?? true;
  const faultRate = options.faultRate ?? 0;
  const rateLimit = options.rateLimit ?? DEFAULT_RATE_LIMIT;
  const usersRouteBareArray = options.usersRouteBareArray ?? false;
  if (!(rateLimit.perSecond > 0 && rateLimit.burst >= 1)) {
    throw new RangeError('rateLimit needs perSecond > 0 and burst >= 1');
  }
  let scope = options.scope ?? DEFAULT_SCOPE;
  let earlyAccess = options.earlyAccess ?? true;
  let sessionsEndpoint: SessionsEndpointMode = options.sessionsEndpoint ?? 'on';
  const sessionOverrides = new Map<string, Auth0SessionJson[]>();
  const sessionsOf = (userId: string): Auth0SessionJson[] | undefined => {
    const tokens = users.get(userId);
    if (!tokens) return undefined;
    return sessionOverrides.get(userId) ?? sessionsForTokens(userId, tokens);
  };

  const users = new Map<string, Auth0TokenJson[]>();
  const logs = createTenantLog(options.logQuirks);
  const accessTokens = new Map<string, AccessToken>();
  const random = mulberry32(options.seed ?? 1);
  let faultTurn = 0;
  let cursorGeneration = 0;
  let interceptFn: ((ctx: InterceptContext) => Fault | undefined) | undefined;
  let requestCount = 0;
  let inFlight = 0;
  const timers = new Set<NodeJS.Timeout>();

  const freshStats = (): FakeAuth0Stats => ({
    requests: 0,
    tokenRequests: 0,
    listRequests: 0,
    logRequests: 0,
    userListRequests: 0,
    sessionListRequests: 0,
    rateLimited: 0,
    faults: 0,
    byStatus: {},
    maxInFlight: inFlight,
    overlappingUserListings: 0,
  });
  /** Unanswered listings per user, for `overlappingUserListings`. */
  const listingsInFlight = new Map<string, number>();
  let stats = freshStats();

  // Token bucket, refilled lazily on each request.
  let bucketTokens = rateLimit.burst;
  let bucketUpdatedAt = Date.now();

  function refillBucket(now: number): void {
    bucketTokens = Math.min(rateLimit.burst, bucketTokens + ((now - bucketUpdatedAt) / 1000) * rateLimit.perSecond);
    bucketUpdatedAt = now;
  }

  /**
   * x-ratelimit-* headers for the bucket's current state. `reset` is the UNIX time in seconds
   * at which at least one token is available again, rounded up to the next whole second: so it
   * equals "now" (rounded up) while tokens remain, as Auth0's can (auth0-api.md, go-auth0#501).
   */
  function rateLimitHeaders(now: number): Record<string, string> {
    const waitMs = bucketTokens >= 1 ? 0 : ((1 - bucketTokens) / rateLimit.perSecond) * 1000;
    return {
      'x-ratelimit-limit': String(rateLimit.burst),
      'x-ratelimit-remaining': String(Math.floor(bucketTokens)),
      'x-ratelimit-reset': String(Math.ceil((now + waitMs) / 1000)),
    };
  }

  function later(ms: number, fn: () => void): void {
    const timer = setTimeout(() => {
      timers.delete(timer);
      fn();
    }, ms);
    timers.add(timer);
  }

  function send(res: ServerResponse, status: number, body: string, headers: Record<string, string> = {}): void {
    if (res.destroyed || res.writableEnded) return;
    stats.byStatus[status] = (stats.byStatus[status] ?? 0) + 1;
    res.writeHead(status, { 'content-type': JSON_TYPE, 'content-length': Buffer.byteLength(body), ...headers });
    res.end(body);
  }

  function answerFault(req: IncomingMessage, res: ServerResponse, fault: Fault): void {
    if (fault.reset) {
      req.socket.destroy();
      return;
    }
    if (fault.truncate) {
      send(res, 200, TRUNCATED_BODY, fault.headers);
      return;
    }
    const status = fault.status ?? 500;
    // A code of the sandbox's own: a scripted fault must not pass for one of Auth0's (a 404
    // `inexistent_user` would mark the user deleted).
    send(res, status, fault.body ?? errorBody(status, 'Injected fault', 'injected_fault'), fault.headers);
  }

  function sendTransientFault(req: IncomingMessage, res: ServerResponse, headers: Record<string, string>): void {
    const kind = TRANSIENT_FAULTS[faultTurn++ % TRANSIENT_FAULTS.length]!;
    switch (kind) {
      case 'html503':
        send(res, 503, '<html>Service Unavailable</html>', { ...headers, 'content-type': 'text/html' });
        return;
      case 'json500':
        send(res, 500, errorBody(500, 'Internal error', 'internal_error'), headers);
        return;
      case 'timeout408':
        send(res, 408, errorBody(408, 'Request timeout', 'request_timeout'), headers);
        return;
      case 'reset':
        req.socket.destroy();
        return;
      case 'truncated':
        send(res, 200, TRUNCATED_BODY, headers);
        return;
      case 'garbage':
        send(res, 200, 'not json', { ...headers, 'content-type': 'application/json' });
        return;
    }
  }

  async function handleTokenRequest(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const raw = await readBody(req);
    const body = raw === undefined ? undefined : parseTokenBody(req, raw);
    if (!body) {
      send(res, 400, JSON.stringify({ error: 'invalid_request', error_description: 'Invalid request body' }));
      return;
    }
    if (body.grant_type !== 'client_credentials') {
      send(
        res,
        403,
        JSON.stringify({
          error: 'unauthorized_client',
          error_description: `Grant type '${String(body.grant_type ?? '')}' not allowed for the client.`,
        }),
      );
      return;
    }
    if (body.client_id !== clientId || body.client_secret !== clientSecret) {
      send(res, 401, JSON.stringify({ error: 'access_denied', error_description: 'Unauthorized' }));
      return;
    }
    const audience = `${url}/api/v2/`;
    if (body.audience !== audience) {
      send(
        res,
        403,
        JSON.stringify({
          error: 'access_denied',
          error_description: `Service not enabled within domain: ${String(body.audience ?? '')}`,
        }),
      );
      return;
    }
    const accessToken = randomBytes(24).toString('base64url');
    accessTokens.set(accessToken, {
      expiresAt: Date.now() + tokenLifetimeSeconds * 1000,
      scopes: new Set(scope.split(' ').filter(Boolean)),
    });
    send(res, 200, JSON.stringify({ access_token: accessToken, token_type: 'Bearer', expires_in: tokenLifetimeSeconds, scope }));
  }

  function handleApi(req: IncomingMessage, res: ServerResponse, path: string, query: URLSearchParams): void {
    const now = Date.now();
    refillBucket(now);

    // Faults are decided before the limiter: they stand for failures in front of the API (load
    // balancer, network), so a faulted request consumes no bucket token. Its answer still shows
    // the bucket's current state.
    if (faultRate > 0 && random() < faultRate) {
      stats.faults++;
      sendTransientFault(req, res, rateLimitHeaders(now));
      return;
    }

    if (bucketTokens < 1) {
      stats.rateLimited++;
      send(res, 429, errorBody(429, 'Global limit has been reached', 'too_many_requests'), rateLimitHeaders(now));
      return;
    }
    bucketTokens -= 1;
    const headers = rateLimitHeaders(now);

    if (req.method === 'GET' && path === LOGS_PATH) {
      answerLogs(req, res, query, headers, now);
      return;
    }
    const sessionsUser = req.method === 'GET' ? sessionsRoute(path) : undefined;
    if (sessionsUser !== undefined) {
      answerSessions(req, res, sessionsUser, query, headers, now);
      return;
    }
    const list = req.method === 'GET' ? listRoute(path, query) : undefined;
    const exportRoute = usersExport.handles(req.method ?? 'GET', path);
    if (!exportRoute && (!list || (list.route === 'refresh-tokens' && !earlyAccess))) {
      send(res, 404, UNKNOWN_ROUTE_BODY, headers);
      return;
    }

    const auth = req.headers.authorization;
    const granted = auth?.startsWith('Bearer ') ? accessTokens.get(auth.slice(7)) : undefined;
    if (!granted) {
      send(res, 401, errorBody(401, MSG_INVALID_TOKEN, 'invalid_token'), headers);
      return;
    }
    if (now >= granted.expiresAt) {
      send(res, 401, errorBody(401, MSG_EXPIRED_TOKEN, 'invalid_token'), headers);
      return;
    }
    if (exportRoute || !list /* never both false here; narrows `list` */) {
      void usersExport.answer(req, res, path, granted.scopes, (r, status, body) => send(r, status, body, headers));
      return;
    }
    if (!granted.scopes.has(REQUIRED_SCOPE)) {
      send(res, 403, errorBody(403, `Insufficient scope, expected any of: ${REQUIRED_SCOPE}`, 'insufficient_scope'), headers);
      return;
    }

    const unknown = unknownParameter(query, list.route === 'users' ? USERS_PARAMETERS : EA_PARAMETERS);
    if (unknown !== undefined) {
      send(res, 400, unknownParameterBody(unknown), headers);
      return;
    }
    const userId = list.userId;
    if (!userId) {
      send(res, 400, errorBody(400, "Missing required 'user_id' parameter.", 'invalid_query_string'), headers);
      return;
    }
    const takeParam = query.get('take');
    const take = takeParam === null ? 50 : /^\d+$/.test(takeParam) ? Number(takeParam) : NaN;
    if (!(take >= 1 && take <= 100)) {
      send(
        res,
        400,
        errorBody(400, `Query validation error: 'take' must be an integer between 1 and 100, got '${takeParam ?? ''}'.`, 'invalid_query_string'),
        headers,
      );
      return;
    }
    const includeParam = query.get('include_fields');
    const badBoolean = booleanProblem(query, 'include_fields') ?? booleanProblem(query, 'include_totals');
    if (badBoolean !== undefined) {
      send(res, 400, badBoolean, headers);
      return;
    }
    // `false`, the default, answers a bare array (Auth0's parameter text for this route).
    const bareArray = list.route === 'users' && (usersRouteBareArray || query.get('include_totals') !== 'true');

    const stored = users.get(userId);
    if (!stored) {
      send(res, 404, errorBody(404, 'The user does not exist.', 'inexistent_user'), headers);
      return;
    }

    const from = query.get('from');
    let after: string | undefined;
    if (from) {
      const cursor = decodeCursor(from);
      if (cursor && cursor.u === userId && cursor.g === cursorGeneration && now - cursor.t <= cursorLifetimeMs) {
        after = cursor.l;
      } else if (list.route === 'users' && !cursor) {
        // This route documents `from` as a token id (node-auth0: "token ID from which to start
        // selection (exclusive)"): how a client that got a bare array asks for the next page.
        after = from;
      } else {
        send(res, 400, errorBody(400, MSG_BAD_CURSOR, 'invalid_query_string'), headers);
        return;
      }
    }

    let tokens = sortedById(stored);
    const clientFilter = query.get('client_id');
    if (clientFilter) tokens = tokens.filter((t) => t.client_id === clientFilter);
    const first = after === undefined ? 0 : firstAfter(tokens, tokenId, after);
    let page = tokens.slice(first, first + take);
    const more = first + take < tokens.length;

    const fields = query.get('fields');
    if (fields) {
      const set = new Set(
        fields
          .split(',')
          .map((f) => f.trim())
          .filter(Boolean),
      );
      const include = includeParam !== 'false';
      page = page.map((t) => project(t, set, include));
    }
    if (bareArray) {
      send(res, 200, JSON.stringify(page), headers);
      return;
    }
    // The same token objects and cursors on both routes; only the array's key differs.
    const answer: Record<string, unknown> = list.route === 'users' ? { tokens: page } : { refresh_tokens: page };
    const last = page[page.length - 1];
    if (last && (more || nextOnLastPage)) {
      answer.next = encodeCursor({ u: userId, l: tokenId(last), t: now, g: cursorGeneration });
    }
    send(res, 200, JSON.stringify(answer), headers);
  }

  /**
   * `GET /api/v2/users/{user_id}/sessions`: `{sessions, next}` with the same keyset cursors as the
   * token listings; `read:sessions` required; a tenant set without the route answers as Auth0 would.
   */
  function answerSessions(
    req: IncomingMessage,
    res: ServerResponse,
    userId: string,
    query: URLSearchParams,
    headers: Record<string, string>,
    now: number,
  ): void {
    if (sessionsEndpoint === 'absent') {
      send(res, 404, UNKNOWN_ROUTE_BODY, headers);
      return;
    }
    const auth = req.headers.authorization;
    const granted = auth?.startsWith('Bearer ') ? accessTokens.get(auth.slice(7)) : undefined;
    if (!granted || now >= granted.expiresAt) {
      send(res, 401, errorBody(401, granted ? MSG_EXPIRED_TOKEN : MSG_INVALID_TOKEN, 'invalid_token'), headers);
      return;
    }
    if (sessionsEndpoint === 'forbidden') {
      send(res, 403, errorBody(403, 'This feature is not enabled for this tenant.', 'operation_not_supported'), headers);
      return;
    }
    if (!granted.scopes.has(SESSIONS_SCOPE)) {
      send(res, 403, errorBody(403, `Insufficient scope, expected any of: ${SESSIONS_SCOPE}`, 'insufficient_scope'), headers);
      return;
    }
    const takeParam = query.get('take');
    const take = takeParam === null ? 50 : /^\d+$/.test(takeParam) ? Number(takeParam) : NaN;
    if (!userId || !(take >= 1 && take <= 100)) {
      send(
        res,
        400,
        errorBody(400, `Query validation error: 'take' must be an integer between 1 and 100, got '${takeParam ?? ''}'.`, 'invalid_query_string'),
        headers,
      );
      return;
    }
    const sessions = sessionsOf(userId);
    if (!sessions) {
      send(res, 404, errorBody(404, 'The user does not exist.', 'inexistent_user'), headers);
      return;
    }
    const from = query.get('from');
    let after: string | undefined;
    if (from) {
      const cursor = decodeCursor(from);
      if (!cursor || cursor.u !== userId || cursor.g !== cursorGeneration || now - cursor.t > cursorLifetimeMs) {
        send(res, 400, errorBody(400, MSG_BAD_CURSOR, 'invalid_query_string'), headers);
        return;
      }
      after = cursor.l;
    }
    const sorted = sortedById(sessions);
    const first = after === undefined ? 0 : firstAfter(sorted, tokenId, after);
    const page = sorted.slice(first, first + take);
    const answer: Record<string, unknown> = { sessions: page };
    const last = page[page.length - 1];
    if (last && (first + take < sorted.length || nextOnLastPage)) answer.next = encodeCursor({ u: userId, l: tokenId(last), t: now, g: cursorGeneration });
    send(res, 200, JSON.stringify(answer), headers);
  }

  /** `GET /api/v2/logs`: the same access-token checks, the `read:logs` scope, then logs.ts. */
  function answerLogs(req: IncomingMessage, res: ServerResponse, query: URLSearchParams, headers: Record<string, string>, now: number): void {
    const auth = req.headers.authorization;
    const granted = auth?.startsWith('Bearer ') ? accessTokens.get(auth.slice(7)) : undefined;
    if (!granted || now >= granted.expiresAt) {
      send(res, 401, errorBody(401, granted ? MSG_EXPIRED_TOKEN : MSG_INVALID_TOKEN, 'invalid_token'), headers);
      return;
    }
    if (!LOG_SCOPES.some((s) => granted.scopes.has(s))) {
      send(res, 403, errorBody(403, `Insufficient scope, expected any of: ${LOG_SCOPES.join(',')}`, 'insufficient_scope'), headers);
      return;
    }
    const answer = logs.answer(query, url);
    send(res, answer.status, answer.body, { ...headers, ...answer.headers });
  }

  function handleRequest(req: IncomingMessage, res: ServerResponse, path: string, query: URLSearchParams): void {
    if (path.startsWith('/api/v2/')) {
      if (latencyMs > 0) later(latencyMs, () => handleApi(req, res, path, query));
      else handleApi(req, res, path, query);
      return;
    }
    if (path === '/oauth/token' && req.method === 'POST') {
      void handleTokenRequest(req, res);
      return;
    }
    send(res, 404, UNKNOWN_ROUTE_BODY);
  }

  // Its storage host starts first, so the API never answers before it can route export jobs.
  const usersExport = await startUsersExport(() => users.keys(), options.usersExport);
  const server = createServer({ keepAlive: true }, (req, res) => {
    const now = Date.now();
    stats.requests++;
    stats.firstRequestAt ??= now;
    stats.lastRequestAt = now;
    const count = ++requestCount;
    inFlight++;
    if (inFlight > stats.maxInFlight) stats.maxInFlight = inFlight;
    res.once('close', () => inFlight--);

    const target = req.url ?? '/';
    const q = target.indexOf('?');
    const path = q === -1 ? target : target.slice(0, q);
    const query = new URLSearchParams(q === -1 ? '' : target.slice(q + 1));
    // Counted per endpoint whether or not a fault answers it: tests count attempts.
    const list = listRoute(path, query);
    const listedUser = list?.userId ?? sessionsRoute(path);
    if (listedUser) {
      const listings = listingsInFlight.get(listedUser) ?? 0;
      if (listings > 0) stats.overlappingUserListings++;
      listingsInFlight.set(listedUser, listings + 1);
      res.once('close', () => {
        const left = (listingsInFlight.get(listedUser) ?? 1) - 1;
        if (left > 0) listingsInFlight.set(listedUser, left);
        else listingsInFlight.delete(listedUser);
      });
    }
    if (list) {
      stats.listRequests++;
      if (list.route === 'users') stats.userListRequests++;
    } else if (path === LOGS_PATH) stats.logRequests++;
    else if (sessionsRoute(path) !== undefined) stats.sessionListRequests++;
    else if (path === '/oauth/token') stats.tokenRequests++;

    const fault = interceptFn?.({
      method: req.method ?? 'GET',
      path,
      query,
      userId: list?.userId ?? sessionsRoute(path),
      count,
    });
    if (!fault) {
      handleRequest(req, res, path, query);
      return;
    }
    const delayOnly = fault.status === undefined && fault.body === undefined && fault.headers === undefined && !fault.reset && !fault.truncate;
    const act = delayOnly
      ? () => handleRequest(req, res, path, query)
      : () => {
          stats.faults++;
          answerFault(req, res, fault);
        };
    if (fault.delayMs && fault.delayMs > 0) later(fault.delayMs, act);
    else act();
  });

  const url = await listenOnLoopback(server, options.port);

  return {
    url,
    users,
    logs,
    setUser(userId, tokens) {
      const sorted = [...tokens].sort(byId);
      for (const entry of logEntriesForTokens(userId, users.get(userId), sorted)) logs.append(entry);
      users.set(userId, sorted);
    },
    sessionsOf,
    setSessions(userId, sessions) {
      if (sessions === undefined) sessionOverrides.delete(userId);
      else sessionOverrides.set(userId, [...sessions].sort(byId));
    },
    setSessionsEndpoint(mode) {
      sessionsEndpoint = mode;
    },
    deleteUser(userId, byApi) {
      sessionOverrides.delete(userId);
      if (users.delete(userId)) for (const entry of logEntriesForUserDeletion(userId, byApi)) logs.append(entry);
    },
    removeTokens(userId, tokenIds, cause) {
      const held = users.get(userId) ?? [];
      const ids = new Set(tokenIds);
      const removed = held.filter((token) => ids.has(tokenId(token)));
      users.set(
        userId,
        held.filter((token) => !ids.has(tokenId(token))),
      );
      return logEntriesForRemoval(userId, removed, cause).map((entry) => logs.append(entry));
    },
    intercept(fn) {
      interceptFn = fn;
    },
    expireCursors() {
      cursorGeneration++;
    },
    revokeAccessTokens() {
      accessTokens.clear();
    },
    setScope(next) {
      scope = next;
    },
    setEarlyAccess(enabled) {
      earlyAccess = enabled;
    },
    usersExport,
    get stats() {
      return stats;
    },
    resetStats() {
      stats = freshStats();
    },
    async close() {
      for (const timer of timers) clearTimeout(timer);
      timers.clear();
      await usersExport.close();
      await closeServer(server);
    },
  };
}
