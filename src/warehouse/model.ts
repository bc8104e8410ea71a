import type { DeletionReason, RefreshTokenDeviceRow, RefreshTokenResourceServerRow, SessionChange, TokenChange } from './schema.js';

/*
 * The warehouse's write model: the rows a user's listing maps to, the outcome of syncing a
 * user, what is stored now, and the plan of one batch write. The pipeline (src/pipeline/) builds
 * these; the writer here consumes them. Types only.
 */

/** One `auth0.refresh_tokens` row as the writer sends it: dates as ISO strings, JSON as text. */
export interface TokenRecord {
  id: string;
  user_id: string;
  client_id: string | null;
  session_id: string | null;
  rotating: boolean | null;
  created_at: string | null;
  idle_expires_at: string | null;
  expires_at: string | null;
  last_exchanged_at: string | null;
  metadata: string | null;
  raw: string;
}

/** Device and resource-server rows are written as the warehouse holds them; the writer adds the tenant. */
export type DeviceRecord = Omit<RefreshTokenDeviceRow, 'tenant'>;
export type ResourceServerRecord = Omit<RefreshTokenResourceServerRow, 'tenant'>;

/** Everything the warehouse stores for one user's complete listing. */
export interface UserTokenRecords {
  tokens: TokenRecord[];
  devices: DeviceRecord[];
  resourceServers: ResourceServerRecord[];
}

/**
 * What syncing one user came to. Only `synced` carries rows; a failed user keeps its old ones.
 * `sessions` (issue #22) is the user's complete session listing when sessions were listed (empty
 * for a `not_found` user: a 404 lists nothing); undefined when they were not, and then the user's
 * stored sessions are left as they are.
 */
export type UserOutcome =
  | { status: 'synced'; userId: string; records: UserTokenRecords; sessions?: SessionRecord[] }
  | { status: 'not_found'; userId: string; sessions?: SessionRecord[] }
  | { status: 'failed'; userId: string; code: string; message: string };

/** What the warehouse holds for a token now, as far as planning a write needs it. */
export interface StoredToken {
  id: string;
  user_id: string;
  deleted_at: Date | null;
  last_exchanged_at: Date | null;
  raw: unknown;
  /** Whether a device row is stored; without one there is no last location to compare with. */
  has_device: boolean;
  last_ip: string | null;
  last_asn: string | null;
  last_user_agent: string | null;
}

export interface ChangeRecord {
  token_id: string;
  user_id: string;
  change: TokenChange;
  old_value: string | null;
  new_value: string | null;
  /** Set on `deleted` changes only (issue #22): why, and the log entry and API client that say so. */
  reason?: DeletionReason;
  reason_log_id?: string | null;
  reason_client_id?: string | null;
}

export interface PlanCounts {
  /** Live tokens stored for the users with a complete listing: what `deleted` is a share of. */
  held: number;
  added: number;
  changed: number;
  restored: number;
  deleted: number;
  /**
   * Of `deleted`, tokens that no log entry of their user and no expiry explain (issue #18): what
   * the deletion guard measures.
   */
  unexplained: number;
  /**
   * Users the listings record as gone from Auth0 (404) with no log entry of their deletion: the
   * signature of the wrong tenant (issue #18).
   */
  goneUnexplained: number;
}

/** Everything one batch of outcomes will write; `counts` is also what a dry run reports. */
export interface WritePlan {
  /**
   * The batch's outcomes as written: a user that listed a token stored under another user is
   * turned `failed` here (Auth0 token ids are unique: the listing is wrong, not the warehouse).
   */
  outcomes: UserOutcome[];
  /**
   * Listed tokens that are new, restored or changed (raw differs), with their devices and
   * resource servers: an unchanged listed token is not written at all.
   */
  tokens: TokenRecord[];
  devices: DeviceRecord[];
  resourceServers: ResourceServerRecord[];
  /** Live tokens of listed users that the complete listing no longer holds. */
  deletedIds: string[];
  changes: ChangeRecord[];
  counts: PlanCounts;
  /** Users the tenant deleted whose listing confirms it (404): `auth0.users.removed_at` is set. */
  removedUsers: string[];
  /** Users a listing with tokens, or the tenant's logs, show alive: `removed_at` is cleared. */
  revivedUsers: string[];
}

/** One `auth0.sessions` row as the writer sends it (issue #22): dates as ISO strings, JSON as text. */
export interface SessionRecord {
  id: string;
  user_id: string;
  created_at: string | null;
  updated_at: string | null;
  authenticated_at: string | null;
  last_interacted_at: string | null;
  idle_expires_at: string | null;
  expires_at: string | null;
  initial_ip: string | null;
  /** initial_ip when it parses as an address (PostgreSQL `inet`), else null. */
  initial_ip_inet: string | null;
  initial_asn: string | null;
  initial_user_agent: string | null;
  last_ip: string | null;
  last_ip_inet: string | null;
  last_asn: string | null;
  last_user_agent: string | null;
  client_ids: string[];
  /** JSON array of `{name, type, timestamp}`. */
  authentication_methods: string;
  raw: string;
}

/** What the warehouse holds for a session now, as far as planning a write needs it. */
export interface StoredSession {
  id: string;
  user_id: string;
  deleted_at: Date | null;
  raw: unknown;
  authenticated_at: Date | null;
  last_interacted_at: Date | null;
  last_ip: string | null;
  last_asn: string | null;
  last_user_agent: string | null;
  client_ids: string[];
  authentication_methods: unknown;
}

export interface SessionChangeRecord {
  session_id: string;
  user_id: string;
  change: SessionChange;
  old_value: string | null;
  new_value: string | null;
}

/** What one batch writes of sessions (planSessionWrites). */
export interface SessionWritePlan {
  /** Sessions that are new, restored or changed: an unchanged listed session is not written. */
  sessions: SessionRecord[];
  /** Live sessions of listed users that the complete listing no longer holds. */
  deletedIds: string[];
  changes: SessionChangeRecord[];
  /** Users whose sessions were listed completely: their sessions_synced_at moves. */
  listedUsers: string[];
  /**
   * `held`: live sessions stored for the listed users (what `deleted` is a share of); `unexplained`:
   * of `deleted`, sessions that no log entry of their user and no expiry explain (the deletion
   * guard measures them as it measures tokens).
   */
  counts: { held: number; added: number; changed: number; restored: number; deleted: number; unexplained: number };
}
