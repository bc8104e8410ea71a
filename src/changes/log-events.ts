/**
 * Tenant log entries to the users whose refresh tokens may have changed (issue #10). Pure: the
 * caller reads the entries (src/auth0/logs.ts) and resolves token and session ids through the
 * warehouse (`toLookupKeys` says which), then passes both here. Event types and `sapi` paths
 * follow Auth0's tenant log docs and event-type schemas (auth0/auth0-log-schemas).
 */
import type { Auth0LogEntry } from '../auth0/logs.js';

/** What the warehouse knows about ids found in the entries. */
export interface LogLookups {
  /** `auth0.refresh_tokens.id` → `user_id`. */
  tokenOwners: ReadonlyMap<string, string>;
  /** `auth0.refresh_tokens.session_id` → the users holding tokens of that session. */
  sessionUsers: ReadonlyMap<string, readonly string[]>;
}

/** Why an entry changed nobody. */
export type SkipReason =
  /** A type that does not touch refresh tokens, or a `sapi` call that does not remove any. */
  | 'other_type'
  /** A type that does, but the entry names no user (and no token or session we could resolve). */
  | 'no_user'
  /** A machine-to-machine client (`…@clients`): it has no refresh tokens. */
  | 'machine_client'
  /** A token or session id the warehouse does not hold: nothing stored can be stale. */
  | 'unresolved';

export interface ChangedUsers {
  /** Every user to sync, in the order first seen, each once. */
  userIds: string[];
  /** Of those, users created (`ss`): added to the source table when it is auth0.users. */
  signedUp: string[];
  /** Of those, users deleted (`sdu`): their sync marks the tokens deleted; `removed_at` is set. */
  deleted: string[];
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
]);

/** What one entry points at, before lookups. */
type Target = { user: string } | { token: string } | { session: string };

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
  const deleted = new Set<string>();
  const skipped: Record<SkipReason, number> = { other_type: 0, no_user: 0, machine_client: 0, unresolved: 0 };
  for (const entry of entries) {
    const { targets, skip } = targetsOf(entry);
    if (skip) {
      skipped[skip] += 1;
      continue;
    }
    const found = new Set<string>();
    let machine = false;
    for (const target of targets) {
      const ids =
        'user' in target
          ? [target.user]
          : 'token' in target
            ? [lookups.tokenOwners.get(target.token)].filter((id): id is string => id !== undefined)
            : (lookups.sessionUsers.get(target.session) ?? []);
      for (const id of ids) {
        if (isMachineClient(id)) machine = true;
        else found.add(id);
      }
    }
    if (found.size === 0) {
      skipped[machine ? 'machine_client' : 'unresolved'] += 1;
      continue;
    }
    for (const id of found) users.add(id);
    if (entry.type === 'ss') for (const id of found) signedUp.add(id);
    if (entry.type === 'sdu') for (const id of found) deleted.add(id);
  }
  return { userIds: [...users], signedUp: [...signedUp], deleted: [...deleted], read: entries.length, skipped };
}

/** Client-credentials grants act as `{client_id}@clients`: such a subject has no refresh tokens. */
function isMachineClient(userId: string): boolean {
  return userId.endsWith('@clients');
}

function targetsOf(entry: Auth0LogEntry): { targets: Target[]; skip?: SkipReason } {
  const type = typeof entry.type === 'string' ? entry.type : '';
  if (type === 'sapi') return sapiTargets(entry);
  if (!USER_EVENT_TYPES.has(type)) return { targets: [], skip: 'other_type' };
  const userId = nonEmpty(entry.user_id);
  if (userId) return { targets: [{ user: userId }] };
  // No user on the entry: a revocation names its token, a login or logout its session.
  const details = asObject(entry.details);
  const credential = nonEmpty(details?.credential_id);
  if (type === 'srrt' && credential) return { targets: [{ token: credential }] };
  const session = nonEmpty(details?.session_id) ?? nonEmpty(asObject(details?.refresh_token)?.session_id);
  if (session) return { targets: [{ session }] };
  return { targets: [], skip: 'no_user' };
}

/**
 * A Management API write (`sapi`): `details.request.method` (lower case) and `.path` say what was
 * done to whom. Only requests that remove refresh tokens count (the Management API endpoints that revoke tokens or sessions); the path may
 * carry the API prefix with or without `/api/v2` and a query string.
 */
function sapiTargets(entry: Auth0LogEntry): { targets: Target[]; skip?: SkipReason } {
  const request = asObject(asObject(entry.details)?.request);
  const method = typeof request?.method === 'string' ? request.method.toLowerCase() : '';
  const rawPath = typeof request?.path === 'string' ? request.path : '';
  const segments = toSegments(rawPath);
  if (!segments) return { targets: [], skip: 'other_type' };
  const [resource, id, sub, extra] = segments;
  const body = asObject(request?.body);

  if (resource === 'refresh-tokens') {
    if (method === 'delete' && id && !sub) return { targets: [{ token: id }] };
    if (method === 'post' && id === 'revoke' && !sub) {
      const ids = Array.isArray(body?.ids) ? body.ids.map(nonEmpty).filter((x): x is string => x !== undefined) : [];
      const userId = nonEmpty(body?.user_id);
      const targets: Target[] = [...ids.map((token) => ({ token })), ...(userId ? [{ user: userId }] : [])];
      return targets.length > 0 ? { targets } : { targets, skip: 'no_user' };
    }
  }
  if (resource === 'users' && id && method === 'delete' && !extra) {
    if (!sub || sub === 'refresh-tokens' || sub === 'sessions') return { targets: [{ user: id }] };
  }
  if (resource === 'sessions' && id) {
    if ((method === 'delete' && !sub) || (method === 'post' && sub === 'revoke' && !extra)) return { targets: [{ session: id }] };
  }
  // Device credentials of type refresh_token: the id is looked up as a token id; not every
  // device credential is one, so an id the warehouse does not hold is skipped as unresolved.
  if (resource === 'device-credentials' && id && method === 'delete' && !sub) return { targets: [{ token: id }] };
  return { targets: [], skip: 'other_type' };
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
