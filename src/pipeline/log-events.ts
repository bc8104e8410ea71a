/**
 * Tenant log entries to the users whose refresh tokens may have changed (issue #10). Pure: the
 * caller reads the entries (src/auth0/logs.ts) and resolves token and session ids through the
 * warehouse (`toLookupKeys` says which), then passes both here. Event types and `sapi` paths
 * follow Auth0's tenant log docs and event-type schemas (auth0/auth0-log-schemas).
 */
import { compareLogIds, logIdOf } from '../auth0/log-id.js';
import type { Auth0LogEntry } from '../auth0/logs.js';
import { checkUserId } from '../core/user-id.js';
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
   * Of those, users whose entries explain a loss of tokens: a revocation (by the user, an admin
   * or Auth0's reuse detection), a logout, a password change, a block, the 200-token cleanup or
   * the user's deletion. Their deletions are expected, never counted by the deletion guard.
   */
  explained: string[];
  /** Entries read. */
  read: number;
  /** Entries that changed nobody, by reason. */
  skipped: Record<SkipReason, number>;
}

/**
 * Types whose top-level `user_id` is the user whose tokens may have changed: exchanges and
 * their failures, reuse detection, revocation, logins that can issue a token, logout, signup,
 * deletion and the 200-token cleanup. `sapi` is apart: its `user_id` is the caller.
 */
export const USER_EVENT_TYPES: ReadonlySet<string> = new Set([
  'sertft',
  'fertft',
  'ferrt',
  'srrt',
  'seacft',
  'sepft',
  'sede',
  'sercft',
  'secte',
  'sens',
  'seotpft',
  'seoobft',
  's',
  'slo',
  'ss',
  'sdu',
  'resource_cleanup',
  // A password change may revoke the user's refresh tokens (tenant setting; not documented
  // either way): list the user again and take a loss as explained.
  'scp',
]);

/** Types after which a loss of the user's tokens is expected. */
const EXPLAINING_TYPES: ReadonlySet<string> = new Set(['srrt', 'ferrt', 'slo', 'sdu', 'resource_cleanup', 'scp']);

/** Types that show the user exists (after a deletion: the same ID was created again). */
const SIGN_OF_LIFE_TYPES: ReadonlySet<string> = new Set(
  [...USER_EVENT_TYPES].filter((type) => !['fertft', 'ferrt', 'srrt', 'slo', 'sdu', 'resource_cleanup'].includes(type)),
);

/** What one entry points at, before lookups. */
type Target = { user: string } | { token: string } | { session: string };

/** What an entry says about its users besides "list them again". */
interface Meaning {
  /** A loss of tokens is expected (a revocation, a logout, a deletion, ...). */
  explains: boolean;
  /** The user was deleted (`deleted`) or shown to exist (`alive`); undefined: neither. */
  lifecycle?: 'deleted' | 'alive';
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
  const explained = new Set<string>();
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
    for (const id of found) {
      users.add(id);
      if (meaning.explains) explained.add(id);
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
    explained: [...explained],
    read: entries.length,
    skipped,
  };
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
  if (!USER_EVENT_TYPES.has(type)) return { targets: [], skip: 'other_type', meaning: NOTHING };
  const meaning: Meaning = {
    explains: EXPLAINING_TYPES.has(type),
    lifecycle: type === 'sdu' ? 'deleted' : SIGN_OF_LIFE_TYPES.has(type) ? 'alive' : undefined,
  };
  const found = (targets: Target[]): EntryTargets => ({ targets, meaning });
  const userId = nonEmpty(entry.user_id);
  if (userId) return found([{ user: userId }]);
  // No user on the entry: a revocation names its token, a login or logout its session.
  const details = asObject(entry.details);
  const credential = nonEmpty(details?.credential_id);
  if (type === 'srrt' && credential) return found([{ token: credential }]);
  const session = nonEmpty(details?.session_id) ?? nonEmpty(asObject(details?.refresh_token)?.session_id);
  if (session) return found([{ session }]);
  return { targets: [], skip: 'no_user', meaning: NOTHING };
}

const NOTHING: Meaning = { explains: false };
/** Every `sapi` request we follow removes tokens, sessions or grants: each explains a loss. */
const REMOVES: Meaning = { explains: true };

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
  const removes = (targets: Target[]): EntryTargets => (targets.length > 0 ? { targets, meaning: REMOVES } : { targets, skip: 'no_user', meaning: NOTHING });

  if (resource === 'refresh-tokens') {
    if (method === 'delete' && id && !sub) return removes([{ token: id }]);
    if (method === 'post' && id === 'revoke' && !sub) {
      const ids = Array.isArray(body?.ids) ? body.ids.map(nonEmpty).filter((x): x is string => x !== undefined) : [];
      const userId = nonEmpty(body?.user_id);
      return removes([...ids.map((token) => ({ token })), ...(userId ? [{ user: userId }] : [])]);
    }
  }
  if (resource === 'users' && id && !extra) {
    if (method === 'delete' && !sub) return { targets: [{ user: id }], meaning: { explains: true, lifecycle: 'deleted' } };
    if (method === 'delete' && (sub === 'refresh-tokens' || sub === 'sessions')) return removes([{ user: id }]);
    // Blocking a user may revoke its tokens: list it again and take a loss as explained.
    if (method === 'patch' && !sub && body?.blocked === true) return removes([{ user: id }]);
  }
  if (resource === 'sessions' && id) {
    if ((method === 'delete' && !sub) || (method === 'post' && sub === 'revoke' && !extra)) return removes([{ session: id }]);
  }
  // Revoking a user's grants (`delete /grants?user_id=`) revokes the tokens issued under them.
  if (resource === 'grants' && method === 'delete') {
    const userId = nonEmpty(queryOf(rawPath).get('user_id'));
    if (userId) return removes([{ user: userId }]);
  }
  // Device credentials of type refresh_token: the id is looked up as a token id; not every
  // device credential is one, so an id the warehouse does not hold is skipped as unresolved.
  if (resource === 'device-credentials' && id && method === 'delete' && !sub) return removes([{ token: id }]);
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

function nonEmpty(value: unknown): string | undefined {
  return typeof value === 'string' && value.trim() !== '' ? value : undefined;
}

function asObject(value: unknown): Record<string, unknown> | undefined {
  return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
}
