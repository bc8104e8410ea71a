import type { ColumnType, Generated, Insertable, Selectable } from 'kysely';

/** Timestamps come back from pg as Date and may be written as Date or ISO string. */
type Timestamp = ColumnType<Date, Date | string, Date | string>;
type Json = ColumnType<unknown, string, string>;

/** `logs`: the log follower (`sync --from-logs`) syncing the users the tenant logs name. */
export type RunTrigger = 'manual' | 'schedule' | 'backfill' | 'logs';
export type RunStatus = 'running' | 'succeeded' | 'partial' | 'failed' | 'interrupted';
export type UserSyncStatus = 'synced' | 'not_found' | 'failed';

export interface UsersTable {
  /** Tenant the row belongs to (issue #23): its short name, checked by src/core/tenant-name.ts. */
  tenant: string;
  user_id: string;
  loaded_at: Generated<Date>;
  /** Profile fields from the users export (`npm run import-users`); null for rows loaded by hand. */
  email: string | null;
  /** The connection's name (the first identity's), e.g. `Username-Password-Authentication`. */
  connection: string | null;
  created_at: Timestamp | null;
  last_login: Timestamp | null;
  blocked: boolean | null;
  first_imported_at: Timestamp | null;
  last_imported_at: Timestamp | null;
  /** Set when a complete export no longer holds the user; cleared if it returns. */
  removed_at: Timestamp | null;
}

export interface SyncRunsTable {
  /** Tenant the row belongs to (issue #23): its short name, checked by src/core/tenant-name.ts. */
  tenant: string;
  id: Generated<number>;
  trigger: RunTrigger;
  status: RunStatus;
  args: Json | null;
  host: string | null;
  pid: number | null;
  started_at: Generated<Date>;
  finished_at: Timestamp | null;
  users_total: number | null;
  users_synced: Generated<number>;
  users_not_found: Generated<number>;
  users_failed: Generated<number>;
  tokens_seen: Generated<number>;
  tokens_deleted: Generated<number>;
  tokens_added: Generated<number>;
  tokens_changed: Generated<number>;
  requests: Generated<number>;
  error: string | null;
  /** Live tokens held for the users the run listed: the deletion guard's denominator. */
  tokens_held: Generated<number>;
  /** The guard's bound in force; null when a mass deletion was confirmed. */
  max_delete_ratio: number | null;
  delete_guard_tripped: Generated<boolean>;
  /** The route that listed the tokens (`refresh-tokens` or `users`); null before any listing. */
  tokens_endpoint: 'refresh-tokens' | 'users' | null;
  /** Every source user, no budget: clears "full pass due" and the guard's running total. */
  full_pass: Generated<boolean>;
  /** Deletions no log entry and no expiry explain (the guard's running total between full passes). */
  users_gone_unexplained: Generated<number>;
  tokens_unexplained: Generated<number>;
  /** Sessions listed, live ones held for the users listed (the guard's denominator), first seen, marked deleted, and deleted unexplained (issue #22). */
  sessions_seen: Generated<number>;
  sessions_held: Generated<number>;
  sessions_added: Generated<number>;
  sessions_deleted: Generated<number>;
  sessions_unexplained: Generated<number>;
}

export interface RefreshTokensTable {
  /** Tenant the row belongs to (issue #23): its short name, checked by src/core/tenant-name.ts. */
  tenant: string;
  id: string;
  user_id: string;
  client_id: string | null;
  session_id: string | null;
  rotating: boolean | null;
  created_at: Timestamp | null;
  idle_expires_at: Timestamp | null;
  expires_at: Timestamp | null;
  last_exchanged_at: Timestamp | null;
  metadata: Json | null;
  raw: Json;
  first_seen_at: Timestamp;
  /** Last time the row was written because something changed; last seen is the user's last_success_at. */
  last_changed_at: Timestamp;
  deleted_at: Timestamp | null;
  first_seen_run_id: number | null;
  last_changed_run_id: number | null;
}

export interface RefreshTokenDevicesTable {
  /** Tenant the row belongs to (issue #23): its short name, checked by src/core/tenant-name.ts. */
  tenant: string;
  token_id: string;
  initial_ip: string | null;
  initial_asn: string | null;
  initial_user_agent: string | null;
  last_ip: string | null;
  last_asn: string | null;
  last_user_agent: string | null;
}

export interface RefreshTokenResourceServersTable {
  /** Tenant the row belongs to (issue #23): its short name, checked by src/core/tenant-name.ts. */
  tenant: string;
  token_id: string;
  audience: string;
  scopes: string | null;
}

export interface UserSyncStateTable {
  /** Tenant the row belongs to (issue #23): its short name, checked by src/core/tenant-name.ts. */
  tenant: string;
  user_id: string;
  status: UserSyncStatus;
  last_attempt_at: Timestamp;
  last_success_at: Timestamp | null;
  last_run_id: number | null;
  token_count: number | null;
  error_code: string | null;
  error: string | null;
  /** When a complete listing of the user's sessions last succeeded (SYNC_SESSIONS, issue #22). */
  sessions_synced_at: Timestamp | null;
}

export type TokenChange = 'created' | 'deleted' | 'restored' | 'exchanged' | 'last_ip_changed' | 'last_asn_changed' | 'last_user_agent_changed';

/**
 * Why a token was deleted (issue #22), as `refresh_token_changes.reason` holds it; the check
 * constraint of migrations/2026_12_04_1900_change_reasons.ts lists the same words.
 */
export const DELETION_REASONS = [
  'revoked_by_user',
  'revoked_by_api',
  'reuse_detected',
  'session_revoked',
  'user_deleted',
  'pruned',
  'expired',
  'unexplained',
] as const;
export type DeletionReason = (typeof DELETION_REASONS)[number];

export interface RefreshTokenChangesTable {
  /** Tenant the row belongs to (issue #23): its short name, checked by src/core/tenant-name.ts. */
  tenant: string;
  id: Generated<number>;
  token_id: string;
  user_id: string;
  change: TokenChange;
  old_value: string | null;
  new_value: string | null;
  run_id: number | null;
  observed_at: Generated<Date>;
  /** Why the token was deleted: set on `deleted` rows written since issue #22, null on the others. */
  reason: DeletionReason | null;
  /** The tenant log entry (`log_id`) the reason was read from; null when no entry gave it. */
  reason_log_id: string | null;
  /** The Management API client that made the call, when the reason comes from a `sapi` entry naming it. */
  reason_client_id: string | null;
}

/** One row per tenant: which holding of that tenant's run lock may write (issues #13, #23). */
export interface RunLeaseTable {
  /** Tenant the row belongs to (issue #23): its short name, checked by src/core/tenant-name.ts. */
  tenant: string;
  holder: string | null;
  run_id: number | null;
  acquired_at: Timestamp | null;
}

/** One row per tenant: where the log follower reads that tenant's logs on from (src/jobs/follow-logs.ts). */
export interface LogCheckpointTable {
  /** Tenant the row belongs to (issue #23): its short name, checked by src/core/tenant-name.ts. */
  tenant: string;
  log_id: string;
  last_entry_date: Timestamp | null;
  /** Seconds by which the checkpoint trails the tenant's newest entry; 0 when caught up. */
  lag_seconds: number | null;
  /** Totals since following began (bigint; src/warehouse/connection.ts reads int8 as a number). */
  entries_read: Generated<number>;
  entries_skipped: Generated<number>;
  users_changed: Generated<number>;
  last_run_id: number | null;
  started_at: Generated<Date>;
  updated_at: Timestamp;
  /** When a checkpoint older than retention was found: a full pass is due after this time. */
  history_lost_at: Timestamp | null;
  /** The tenant's newest entry when the follower last looked. */
  newest_log_id: string | null;
  newest_entry_date: Timestamp | null;
  /** How lost history was detected; set with history_lost_at. */
  history_lost_reason: string | null;
}

/** Users a follow could not sync, retried by the next follow (src/jobs/follow-logs.ts). */
export interface LogFollowRetriesTable {
  /** Tenant the row belongs to (issue #23): its short name, checked by src/core/tenant-name.ts. */
  tenant: string;
  user_id: string;
  deleted: Generated<boolean>;
  explained: Generated<boolean>;
  /** The log entries that explained a loss, with their reasons (issue #22): `LogExplanation[]` as JSON. */
  explanations: ColumnType<unknown, string | undefined, string>;
  first_failed_at: Generated<Date>;
  attempts: Generated<number>;
  last_run_id: number | null;
}

/**
 * The reporting views (docs/reporting.md), as pg returns their columns: counts as numbers (the
 * int8 parser in src/warehouse/connection.ts), numeric as a string, interval as an object. Read-only; the
 * migrations define them (the latest definition of each: 2026_12_01_1300_quiet_writes and
 * 2026_12_01_1800_schema_docs_forensics), and test/warehouse/view-types.test.ts checks these
 * declarations against the database's columns.
 */
export interface ReportingViews extends SessionViews {
  'auth0.active_refresh_tokens': ActiveRefreshTokensView;
  'auth0.refresh_tokens_per_client': RefreshTokensPerClientView;
  'auth0.refresh_tokens_expiring_soon': RefreshTokensExpiringSoonView;
  'auth0.refresh_tokens_location_changed': RefreshTokensLocationChangedView;
  'auth0.refresh_tokens_unused': RefreshTokensUnusedView;
  'auth0.recent_token_changes': RecentTokenChangesView;
  'auth0.refresh_token_deletions': RefreshTokenDeletionsView;
  'auth0.refresh_token_deletions_by_reason': RefreshTokenDeletionsByReasonView;
  'auth0.refresh_token_scopes': RefreshTokenScopesView;
}

/**
 * Live tokens: every token column, when the token was last seen, and its device columns (null
 * without a device row). Since 2026_12_04_1910_typed_columns the IPs are `inet` in SQL (pg
 * returns them as text, canonical: `2001:db8::1`; null when Auth0's text does not parse).
 */
export interface ActiveRefreshTokensView extends Selectable<RefreshTokensTable>, Omit<Selectable<RefreshTokenDevicesTable>, 'token_id'> {
  /** Tenant the row belongs to (issue #23): its short name, checked by src/core/tenant-name.ts. */
  tenant: string;
  /** When a complete listing of the user last held the token (its user's last_success_at). */
  last_seen_at: Date;
  /** Audiences, sorted (`text[]`); null when none. */
  audiences: string[] | null;
  /** Every scope over all audiences, distinct and sorted (`text[]`); null when none. */
  scopes: string[] | null;
}

/** Each live token's audiences, one row each, scopes as `text[]`. */
export interface RefreshTokenScopesView {
  /** Tenant the row belongs to (issue #23): its short name, checked by src/core/tenant-name.ts. */
  tenant: string;
  token_id: string;
  user_id: string;
  client_id: string | null;
  audience: string;
  scopes: string[] | null;
}

/** Per application: its active tokens, the users holding them, the share that rotate. */
export interface RefreshTokensPerClientView {
  /** Tenant the row belongs to (issue #23): its short name, checked by src/core/tenant-name.ts. */
  tenant: string;
  client_id: string | null;
  active_tokens: number;
  users: number;
  /** 0..1 with three decimals (numeric, so a string). */
  rotating_share: string;
  oldest_created_at: Date | null;
  last_exchanged_at: Date | null;
}

/** Active tokens that expire within 7 days. */
export interface RefreshTokensExpiringSoonView {
  /** Tenant the row belongs to (issue #23): its short name, checked by src/core/tenant-name.ts. */
  tenant: string;
  id: string;
  user_id: string;
  client_id: string | null;
  expires_at: Date | null;
  idle_expires_at: Date | null;
  expires_first_at: Date;
  reason: 'absolute' | 'idle';
}

/** Active tokens used from another IP or network than the one they were issued to. */
export interface RefreshTokensLocationChangedView extends Omit<Selectable<RefreshTokenDevicesTable>, 'token_id'> {
  /** Tenant the row belongs to (issue #23): its short name, checked by src/core/tenant-name.ts. */
  tenant: string;
  id: string;
  user_id: string;
  client_id: string | null;
  last_exchanged_at: Date | null;
  ip_changed: boolean;
  asn_changed: boolean;
}

/** An interval as pg returns it (postgres-interval): only the units that are not zero are set. */
export interface PgInterval {
  years?: number;
  months?: number;
  days?: number;
  hours?: number;
  minutes?: number;
  seconds?: number;
  milliseconds?: number;
  toISOString(): string;
}

/** Active tokens not exchanged (or, never exchanged, not created) for 30 days. */
export interface RefreshTokensUnusedView {
  /** Tenant the row belongs to (issue #23): its short name, checked by src/core/tenant-name.ts. */
  tenant: string;
  id: string;
  user_id: string;
  client_id: string | null;
  created_at: Date | null;
  last_exchanged_at: Date | null;
  last_used_at: Date;
  unused_for: PgInterval;
}

/** Changes observed in the last 24 hours, exchanges left out. */
export interface RecentTokenChangesView {
  /** Tenant the row belongs to (issue #23): its short name, checked by src/core/tenant-name.ts. */
  tenant: string;
  observed_at: Date;
  change: Exclude<TokenChange, 'exchanged'>;
  token_id: string;
  user_id: string;
  email: string | null;
  client_id: string | null;
  session_id: string | null;
  old_value: string | null;
  new_value: string | null;
  run_id: number | null;
  /** Set on deletions (issue #22); null on other changes and on deletions recorded before reasons were. */
  reason: DeletionReason | null;
  reason_log_id: string | null;
  reason_client_id: string | null;
}

/** Deletions observed in the last 7 days, with why (issue #22). */
export interface RefreshTokenDeletionsView {
  /** Tenant the row belongs to (issue #23): its short name, checked by src/core/tenant-name.ts. */
  tenant: string;
  observed_at: Date;
  token_id: string;
  user_id: string;
  email: string | null;
  client_id: string | null;
  session_id: string | null;
  /** Null for deletions recorded before reasons were. */
  reason: DeletionReason | null;
  reason_log_id: string | null;
  reason_client_id: string | null;
  run_id: number | null;
}

/** Deletions of the last 30 days per UTC day and reason. */
export interface RefreshTokenDeletionsByReasonView {
  /** Tenant the row belongs to (issue #23): its short name, checked by src/core/tenant-name.ts. */
  tenant: string;
  /** Midnight UTC of the day. */
  day: Date;
  reason: DeletionReason | null;
  deletions: number;
  users: number;
}

/**
 * One row of `auth0.refresh_tokens_as_of(at)`: a token the warehouse believed live at `at`. A
 * function, not a relation: `db.selectFrom(sql<RefreshTokenAsOfRow>`auth0.refresh_tokens_as_of(${at})`.as('t'))`.
 */
export interface RefreshTokenAsOfRow {
  /** Tenant the row belongs to (issue #23): its short name, checked by src/core/tenant-name.ts. */
  tenant: string;
  id: string;
  user_id: string;
  client_id: string | null;
  session_id: string | null;
  rotating: boolean | null;
  created_at: Date | null;
  expires_at: Date | null;
  idle_expires_at: Date | null;
  first_seen_at: Date;
  /** first_seen_at, or the restoration in force at `at`. */
  live_since: Date;
  deleted_at: Date | null;
}

export interface Database extends ReportingViews {
  'auth0.users': UsersTable;
  'auth0.sync_runs': SyncRunsTable;
  'auth0.refresh_tokens': RefreshTokensTable;
  'auth0.refresh_token_devices': RefreshTokenDevicesTable;
  'auth0.refresh_token_resource_servers': RefreshTokenResourceServersTable;
  'auth0.user_sync_state': UserSyncStateTable;
  'auth0.refresh_token_changes': RefreshTokenChangesTable;
  'auth0.run_lease': RunLeaseTable;
  'auth0.log_checkpoint': LogCheckpointTable;
  'auth0.log_follow_retries': LogFollowRetriesTable;
  'auth0.sessions': SessionsTable;
  'auth0.session_changes': SessionChangesTable;
}

export type SyncRunRow = Selectable<SyncRunsTable>;
export type RefreshTokenDeviceRow = Selectable<RefreshTokenDevicesTable>;
export type RefreshTokenResourceServerRow = Selectable<RefreshTokenResourceServersTable>;
export type NewSyncRun = Insertable<SyncRunsTable>;

/** `auth0.sessions` (issue #22): one Auth0 session, kept like a token. */
export interface SessionsTable {
  /** Tenant the row belongs to (issue #23): its short name, checked by src/core/tenant-name.ts. */
  tenant: string;
  id: string;
  user_id: string;
  created_at: Timestamp | null;
  updated_at: Timestamp | null;
  authenticated_at: Timestamp | null;
  last_interacted_at: Timestamp | null;
  idle_expires_at: Timestamp | null;
  expires_at: Timestamp | null;
  initial_ip: string | null;
  /** `inet`: null when initial_ip does not parse; pg returns it as text. */
  initial_ip_inet: string | null;
  initial_asn: string | null;
  initial_user_agent: string | null;
  last_ip: string | null;
  last_ip_inet: string | null;
  last_asn: string | null;
  last_user_agent: string | null;
  client_ids: ColumnType<string[], string[], string[]>;
  /** JSON array of `{name, type, timestamp}`. */
  authentication_methods: Json;
  raw: Json;
  first_seen_at: Timestamp;
  last_changed_at: Timestamp;
  deleted_at: Timestamp | null;
  first_seen_run_id: number | null;
  last_changed_run_id: number | null;
}

export type SessionChange =
  | 'created'
  | 'deleted'
  | 'restored'
  | 'interacted'
  | 'authenticated'
  | 'last_ip_changed'
  | 'last_asn_changed'
  | 'last_user_agent_changed'
  | 'clients_changed'
  | 'methods_changed';

export interface SessionChangesTable {
  /** Tenant the row belongs to (issue #23): its short name, checked by src/core/tenant-name.ts. */
  tenant: string;
  id: Generated<number>;
  session_id: string;
  user_id: string;
  change: SessionChange;
  old_value: string | null;
  new_value: string | null;
  run_id: number | null;
  observed_at: Generated<Date>;
}

/** The reporting views that join tokens to sessions (issue #22). IPs are `inet`, returned as text. */
export interface SessionViews {
  'auth0.active_sessions': ActiveSessionsView;
  'auth0.refresh_tokens_with_session': RefreshTokensWithSessionView;
  'auth0.refresh_tokens_outliving_session': RefreshTokensOutlivingSessionView;
  'auth0.refresh_tokens_without_second_factor': RefreshTokensWithoutSecondFactorView;
  'auth0.sessions_per_device': SessionsPerDeviceView;
  'auth0.sessions_per_client': SessionsPerClientView;
}

/** Live sessions, IPs typed, with their method names and whether one was a second factor. */
export interface ActiveSessionsView {
  /** Tenant the row belongs to (issue #23): its short name, checked by src/core/tenant-name.ts. */
  tenant: string;
  id: string;
  user_id: string;
  created_at: Date | null;
  updated_at: Date | null;
  authenticated_at: Date | null;
  last_interacted_at: Date | null;
  idle_expires_at: Date | null;
  expires_at: Date | null;
  initial_ip: string | null;
  initial_asn: string | null;
  initial_user_agent: string | null;
  last_ip: string | null;
  last_asn: string | null;
  last_user_agent: string | null;
  client_ids: string[];
  authentication_methods: unknown;
  /** `pwd`, `mfa:otp`, `passkey`, ... */
  methods: string[];
  has_second_factor: boolean;
  first_seen_at: Date;
  last_changed_at: Date;
}

/** Every stored token with its session (null columns where the warehouse does not hold it). */
export interface RefreshTokensWithSessionView {
  /** Tenant the row belongs to (issue #23): its short name, checked by src/core/tenant-name.ts. */
  tenant: string;
  token_id: string;
  user_id: string;
  client_id: string | null;
  session_id: string | null;
  token_created_at: Date | null;
  token_expires_at: Date | null;
  token_idle_expires_at: Date | null;
  last_exchanged_at: Date | null;
  token_first_seen_at: Date;
  token_deleted_at: Date | null;
  token_live: boolean;
  session_found: boolean;
  session_created_at: Date | null;
  authenticated_at: Date | null;
  last_interacted_at: Date | null;
  session_expires_at: Date | null;
  session_idle_expires_at: Date | null;
  session_deleted_at: Date | null;
  session_live: boolean;
  authentication_methods: unknown;
  methods: string[] | null;
  has_second_factor: boolean | null;
  session_initial_ip: string | null;
  session_last_ip: string | null;
  session_last_asn: string | null;
  session_last_user_agent: string | null;
  sessions_synced_at: Date | null;
}

/** Live tokens whose session ended, and why. */
export interface RefreshTokensOutlivingSessionView {
  /** Tenant the row belongs to (issue #23): its short name, checked by src/core/tenant-name.ts. */
  tenant: string;
  token_id: string;
  user_id: string;
  client_id: string | null;
  session_id: string;
  token_created_at: Date | null;
  token_expires_at: Date | null;
  token_idle_expires_at: Date | null;
  last_exchanged_at: Date | null;
  why: 'session_gone' | 'session_deleted' | 'session_expired' | 'session_idle_expired';
  session_ended_at: Date | null;
  authenticated_at: Date | null;
  methods: string[] | null;
  has_second_factor: boolean | null;
  session_last_ip: string | null;
  session_last_user_agent: string | null;
}

/** Live tokens whose held session saw no method named mfa. */
export interface RefreshTokensWithoutSecondFactorView {
  /** Tenant the row belongs to (issue #23): its short name, checked by src/core/tenant-name.ts. */
  tenant: string;
  token_id: string;
  user_id: string;
  client_id: string | null;
  session_id: string;
  token_created_at: Date | null;
  token_expires_at: Date | null;
  last_exchanged_at: Date | null;
  session_live: boolean;
  authenticated_at: Date | null;
  methods: string[];
  session_last_ip: string | null;
  session_last_user_agent: string | null;
}

interface SessionCounts {
  active_sessions: number;
  users: number;
  without_second_factor: number;
  first_authenticated_at: Date | null;
  last_interacted_at: Date | null;
}

/** Live sessions per last user agent, IP and ASN. */
export interface SessionsPerDeviceView extends SessionCounts {
  /** Tenant the row belongs to (issue #23): its short name, checked by src/core/tenant-name.ts. */
  tenant: string;
  last_user_agent: string | null;
  last_ip: string | null;
  last_asn: string | null;
}

/** Live sessions per application. */
export interface SessionsPerClientView extends SessionCounts {
  /** Tenant the row belongs to (issue #23): its short name, checked by src/core/tenant-name.ts. */
  tenant: string;
  client_id: string;
}
