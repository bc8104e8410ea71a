/**
 * Tenant log entries to the users whose refresh tokens may have changed (issue #10). Pure: the
 * caller reads the entries (src/auth0/logs.ts) and resolves token and session ids through the
 * warehouse (`toLookupKeys` says which), then passes both here. Event types and `sapi` paths
 * follow Auth0's tenant log docs and event-type schemas (auth0/auth0-log-schemas).
 */
import { compareLogIds, logIdOf } from '../auth0/log-id.js';
import type { Auth0LogEntry } from '../auth0/logs.js';
import { checkUserId } from '../core/user-id.js';
import { checkIdText } from '../core/upstream-text.js';
import type { LogExplanation, LoggedReason } from './deletion-reason.js';
import type { LogLookups } from '../warehouse/log-checkpoint.js';

export type { LogLookups };

/** Why an entry changed nobody. */
export type SkipReason =
  /** A type that does not touch refresh tokens, or a `sapi` call that does not remove any. */
  | 'other_type'
  /** A type that does, but the entry names no user (and no token or session we could resolve). */
  | 'no_user'
  /** A machine-to-machine client (`…@clients`): it has no refresh tokens. */
  | 'machine_client'
  /** A token or session id the warehouse does not hold: nothing stored can be stale. */
  | 'unresolved'
  /** A user ID that fails the job's ID check (a control character, too long): never stored or sent on. */
  | 'invalid_user';

export interface ChangedUsers {
  /** Every user to sync, in the order first seen, each once. */
  userIds: string[];
  /** Of those, users created (`ss`): added to the source table when it is auth0.users. */
  signedUp: string[];
  /**
   * Of those, users whose last lifecycle entry is their deletion (`sdu`, or a Management API
   * `delete /users/{id}`): `removed_at` is set once their sync marks their tokens deleted.
   */
  deleted: string[];
  /**
   * Of those, users whose last lifecycle entry is a sign of life (a signup, a login, an
   * exchange): `removed_at` is cleared. Entries count in log order, so `sdu` then `ss` of one ID
   * (a user deleted and created again) leaves it live, and `ss` then `sdu` removes it.
   */
  alive: string[];
  /**
   * The entries that explain a loss of their users' tokens, in log order, one per user named: a
   * revocation (by the user, an admin or Auth0's reuse detection), a logout, a password change, a
   * block, the 200-token cleanup or the user's deletion, with the reason each gives (issue #22).
   * Deletions they explain are never counted by the deletion guard.
   */
  explanations: LogExplanation[];
  /** Entries read. */
  read: number;
  /** Entries that changed nobody, by reason. */
  skipped: Record<SkipReason, number>;
}

/** What a type of entry says about its user besides "list it again". */
interface TypeMeaning {
  /** A loss of the user's tokens is expected, for this reason (src/pipeline/deletion-reason.ts). */
  reason?: LoggedReason;
  /** The user was deleted, or shown to exist (after a deletion: the same ID was created again). */
  lifecycle?: 'deleted' | 'alive';
}

const ALIVE: TypeMeaning = { lifecycle: 'alive' };

/**
 * The one table of event types whose top-level `user_id` is the user whose tokens may have
 * changed, with what each means (issue #22: the reason it gives a deletion is also what makes it
 * explain one for the deletion guard). `sapi` is apart: its `user_id` is the caller.
 */
const USER_EVENTS: Readonly<Record<string, TypeMeaning>> = {
  // Exchanges, and logins that can issue a token: signs of life.
  sertft: ALIVE,
  seacft: ALIVE,
  sepft: ALIVE,
  sede: ALIVE,
  sercft: ALIVE,
  secte: ALIVE,
  sens: ALIVE,
  seotpft: ALIVE,
  seoobft: ALIVE,
  s: ALIVE,
  ss: ALIVE,
  // A failed exchange: the token was revoked or expired; list the user again.
  fertft: {},
  ferrt: { reason: 'reuse_detected' },
  srrt: { reason: 'revoked_by_user' },
  // A logout ends the session its tokens belong to.
  slo: { reason: 'session_revoked' },
  sdu: { reason: 'user_deleted', lifecycle: 'deleted' },
  resource_cleanup: { reason: 'pruned' },
  // A password change may revoke the user's refresh tokens (a tenant setting; not documented
  // either way): list the user again and take a loss as the user's own doing.
  scp: { reason: 'revoked_by_user', lifecycle: 'alive' },
};

/** The types of USER_EVENTS: entries of these name the user to list again. */
export const USER_EVENT_TYPES: ReadonlySet<string> = new Set(Object.keys(USER_EVENTS));

/** What one entry points at, before lookups. */
type Target = { user: string } | { token: string } | { session: string };

/** What an entry says about its users besides "list them again". */
interface Meaning extends TypeMeaning {
  /** What the entry names, for the deletion reason (LogExplanation). */
  tokenIds?: string[];
  sessionIds?: string[];
  clientId?: string;
  /** A `sapi` entry's own client: the caller. */
  callerClientId?: string;
}

/** Token and session ids the entries refer to: resolve these through the warehouse. */
export function toLookupKeys(entries: readonly Auth0LogEntry[]): { tokenIds: string[]; sessionIds: string[] } {
  const tokenIds = new Set<string>();
  const sessionIds = new Set<string>();
  for (const entry of entries) {
    const { targets } = targetsOf(entry);
    for (const target of targets) {
      if ('token' in target) tokenIds.add(target.token);
      else if ('session' in target) sessionIds.add(target.session);
    }
  }
  return { tokenIds: [...tokenIds], sessionIds: [...sessionIds] };
}

/**
 * The users whose refresh tokens the entries may have changed. Entries of other types,
 * entries naming no user, machine-to-machine clients and ids the warehouse does not hold are
 * skipped and counted. Never takes a `sapi` entry's own `user_id`: that is the caller.
 */
export function toChangedUsers(entries: readonly Auth0LogEntry[], lookups: LogLookups): ChangedUsers {
  const users = new Set<string>();
  const signedUp = new Set<string>();
  const explanations: LogExplanation[] = [];
  /** Each user's last lifecycle entry so far, in log order. */
  const lifecycle = new Map<string, 'deleted' | 'alive'>();
  const skipped: Record<SkipReason, number> = { other_type: 0, no_user: 0, machine_client: 0, unresolved: 0, invalid_user: 0 };
  for (const entry of inLogOrder(entries)) {
    const { targets, skip, meaning } = targetsOf(entry);
    if (skip) {
      skipped[skip] += 1;
      continue;
    }
    const found = new Set<string>();
    let machine = false;
    let invalid = false;
    for (const target of targets) {
      const ids =
        'user' in target
          ? [target.user]
          : 'token' in target
            ? [lookups.tokenOwners.get(target.token)].filter((id): id is string => id !== undefined)
            : (lookups.sessionUsers.get(target.session) ?? []);
      for (const id of ids) {
        if (isMachineClient(id)) machine = true;
        else if (checkUserId(id)) invalid = true;
        else found.add(id);
      }
    }
    if (found.size === 0) {
      skipped[invalid ? 'invalid_user' : machine ? 'machine_client' : 'unresolved'] += 1;
      continue;
    }
    const logId = logIdOf(entry);
    for (const id of found) {
      users.add(id);
      if (meaning.reason) explanations.push(toExplanation(id, meaning.reason, logId, meaning));
      if (meaning.lifecycle) lifecycle.set(id, meaning.lifecycle);
      if (entry.type === 'ss') signedUp.add(id);
    }
  }
  const last = (state: 'deleted' | 'alive') => [...lifecycle].filter(([, s]) => s === state).map(([id]) => id);
  return {
    userIds: [...users],
    signedUp: [...signedUp],
    deleted: last('deleted'),
    alive: last('alive'),
    explanations,
    read: entries.length,
    skipped,
  };
}

function toExplanation(userId: string, reason: LoggedReason, logId: string | undefined, meaning: Meaning): LogExplanation {
  const explanation: LogExplanation = { userId, reason };
  if (logId !== undefined) explanation.logId = logId;
  if (meaning.callerClientId !== undefined) explanation.callerClientId = meaning.callerClientId;
  if (meaning.tokenIds !== undefined) explanation.tokenIds = meaning.tokenIds;
  if (meaning.sessionIds !== undefined) explanation.sessionIds = meaning.sessionIds;
  if (meaning.clientId !== undefined) explanation.clientId = meaning.clientId;
  return explanation;
}

/** The entries sorted by log id (stable; entries without one keep their place at the end). */
function inLogOrder(entries: readonly Auth0LogEntry[]): Auth0LogEntry[] {
  return [...entries].sort((a, b) => {
    const [x, y] = [logIdOf(a), logIdOf(b)];
    if (x === undefined || y === undefined) return x === y ? 0 : x === undefined ? 1 : -1;
    return compareLogIds(x, y);
  });
}

/** Client-credentials grants act as `{client_id}@clients`: such a subject has no refresh tokens. */
function isMachineClient(userId: string): boolean {
  return userId.endsWith('@clients');
}

interface EntryTargets {
  targets: Target[];
  skip?: SkipReason;
  meaning: Meaning;
}

function targetsOf(entry: Auth0LogEntry): EntryTargets {
  const type = typeof entry.type === 'string' ? entry.type : '';
  if (type === 'sapi') return sapiTargets(entry);
  const typeMeaning = Object.hasOwn(USER_EVENTS, type) ? USER_EVENTS[type] : undefined;
  if (!typeMeaning) return { targets: [], skip: 'other_type', meaning: NOTHING };
  const details = asObject(entry.details);
  // A revocation names its token, a login or logout its session: what a reason is matched on.
  const credential = type === 'srrt' ? nonEmpty(details?.credential_id) : undefined;
  const session = nonEmpty(details?.session_id) ?? nonEmpty(asObject(details?.refresh_token)?.session_id);
  const meaning: Meaning = { ...typeMeaning };
  if (meaning.reason) {
    if (checkedId(credential)) meaning.tokenIds = [credential!];
    else if (checkedId(session) && type === 'slo') meaning.sessionIds = [session!];
    // The cleanup removes the oldest tokens of one application.
    if (type === 'resource_cleanup') meaning.clientId = checkedId(entry.client_id);
  }
  const found = (targets: Target[]): EntryTargets => ({ targets, meaning });
  const userId = nonEmpty(entry.user_id);
  if (userId) return found([{ user: userId }]);
  // No user on the entry: found through its token or session.
  if (credential) return found([{ token: credential }]);
  if (session) return found([{ session }]);
  return { targets: [], skip: 'no_user', meaning: NOTHING };
}

const NOTHING: Meaning = {};

/**
 * A Management API write (`sapi`): `details.request.method` (lower case) and `.path` say what was
 * done to whom. Only requests that remove refresh tokens, sessions or grants count, and a block
 * (`patch /users/{id}` with `blocked: true`); the path may carry the API prefix with or without
 * `/api/v2` and a query string.
 */
function sapiTargets(entry: Auth0LogEntry): EntryTargets {
  const request = asObject(asObject(entry.details)?.request);
  const method = typeof request?.method === 'string' ? request.method.toLowerCase() : '';
  const rawPath = typeof request?.path === 'string' ? request.path : '';
  const segments = toSegments(rawPath);
  const other: EntryTargets = { targets: [], skip: 'other_type', meaning: NOTHING };
  if (!segments) return other;
  const [resource, id, sub, extra] = segments;
  const body = asObject(request?.body);
  // Every request followed here removes tokens, sessions or grants: each explains a loss, for
  // `reason`, naming the Management API client that made the call (the entry's own client_id).
  const callerClientId = checkedId(entry.client_id);
  const removes = (reason: LoggedReason, targets: Target[], names: Omit<Meaning, 'reason' | 'callerClientId'> = {}): EntryTargets =>
    targets.length > 0 ? { targets, meaning: { ...names, reason, callerClientId } } : { targets, skip: 'no_user', meaning: NOTHING };

  if (resource === 'refresh-tokens') {
    if (method === 'delete' && id && !sub) return removes('revoked_by_api', [{ token: id }], { tokenIds: [id].filter(checkedId) });
    if (method === 'post' && id === 'revoke' && !sub) {
      const ids = Array.isArray(body?.ids) ? body.ids.map(nonEmpty).filter((x): x is string => x !== undefined) : [];
      const userId = nonEmpty(body?.user_id);
      const clientId = checkedId(body?.client_id);
      return removes('revoked_by_api', [...ids.map((token) => ({ token })), ...(userId ? [{ user: userId }] : [])], {
        ...(ids.length > 0 && !userId ? { tokenIds: ids.filter(checkedId) } : {}),
        ...(clientId ? { clientId } : {}),
      });
    }
  }
  if (resource === 'users' && id && !extra) {
    if (method === 'delete' && !sub) return removes('user_deleted', [{ user: id }], { lifecycle: 'deleted' });
    if (method === 'delete' && sub === 'refresh-tokens') return removes('revoked_by_api', [{ user: id }]);
    if (method === 'delete' && sub === 'sessions') return removes('session_revoked', [{ user: id }]);
    // Blocking a user may revoke its tokens: list it again and take a loss as the API's doing.
    if (method === 'patch' && !sub && body?.blocked === true) return removes('revoked_by_api', [{ user: id }]);
  }
  if (resource === 'sessions' && id) {
    if ((method === 'delete' && !sub) || (method === 'post' && sub === 'revoke' && !extra)) {
      return removes('session_revoked', [{ session: id }], { sessionIds: [id].filter(checkedId) });
    }
  }
  // Revoking a user's grants (`delete /grants?user_id=`) revokes the tokens issued under them.
  if (resource === 'grants' && method === 'delete') {
    const userId = nonEmpty(queryOf(rawPath).get('user_id'));
    if (userId) return removes('revoked_by_api', [{ user: userId }]);
  }
  // Device credentials of type refresh_token: the id is looked up as a token id; not every
  // device credential is one, so an id the warehouse does not hold is skipped as unresolved.
  if (resource === 'device-credentials' && id && method === 'delete' && !sub)
    return removes('revoked_by_api', [{ token: id }], { tokenIds: [id].filter(checkedId) });
  return other;
}

/** The query of a logged request path (`/api/v2/grants?user_id=auth0%7C1`); empty when unreadable. */
function queryOf(path: string): URLSearchParams {
  const query = path.split('#', 1)[0]?.split('?')[1] ?? '';
  try {
    return new URLSearchParams(query);
  } catch {
    return new URLSearchParams();
  }
}

/** `/api/v2/users/auth0%7C1/sessions?x=1` → `['users', 'auth0|1', 'sessions']`; undefined when unreadable. */
function toSegments(path: string): string[] | undefined {
  const bare = path.split(/[?#]/, 1)[0] ?? '';
  const parts = bare.split('/').filter(Boolean);
  const start = parts[0] === 'api' && parts[1] === 'v2' ? 2 : 0;
  try {
    return parts.slice(start).map((part) => decodeURIComponent(part));
  } catch {
    return undefined; // a malformed escape: not a path we can trust
  }
}

/** A token, session or client id from an entry, kept only when it could be stored and printed as it is. */
function checkedId(value: unknown): string | undefined {
  const id = nonEmpty(value);
  return id !== undefined && checkIdText(id, MAX_NAMED_ID_LENGTH) === undefined ? id : undefined;
}

/** Longest token, session or client id kept from an entry (Auth0's are well under 100 characters). */
const MAX_NAMED_ID_LENGTH = 256;

function nonEmpty(value: unknown): string | undefined {
  return typeof value === 'string' && value.trim() !== '' ? value : undefined;
}

function asObject(value: unknown): Record<string, unknown> | undefined {
  return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}
