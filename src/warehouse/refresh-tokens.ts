import { sql, type Kysely } from 'kysely';
import type { Database } from '../database.js';
import { toSafeText } from '../upstream-text.js';
import type { UserOutcome } from '../sync/outcome.js';
import type { StoredToken, WritePlan } from '../sync/plan.js';

/**
 * The stored tokens of these users (live and deleted), and any stored token with one of
 * `tokenIds` whoever owns it, with their device's last location: what planWrites compares a
 * batch's listings with (a token listed for one user but stored for another is an anomaly).
 */
export async function readStoredTokens(db: Kysely<Database>, userIds: readonly string[], tokenIds: readonly string[] = []): Promise<StoredToken[]> {
  if (userIds.length === 0) return [];
  const { rows } = await sql<StoredToken>`
    select t.id, t.user_id, t.deleted_at, t.last_exchanged_at, t.raw, d.token_id is not null as has_device,
      d.last_ip, d.last_asn, d.last_user_agent
    from auth0.refresh_tokens t
    -- lateral: one index probe per token. A plain left join let the planner hash the whole
    -- devices table once it had statistics, and every batch got slower as the table grew.
    left join lateral (select * from auth0.refresh_token_devices d where d.token_id = t.id) d on true
    where t.user_id = any(${[...userIds]}::text[]) or t.id = any(${[...tokenIds]}::text[])
  `.execute(db);
  return rows;
}

/**
 * Apply a batch's plan in one statement, so every user in it is all-or-nothing:
 * upsert the planned tokens (new, changed or restored: first_seen_* kept, last_changed_* moved,
 * deleted_at cleared for a token that came back), bring their device and resource-server rows
 * in line with the listing, mark deleted the live tokens the listings no longer hold, append the
 * change history, and upsert user_sync_state for every user (a failed user keeps last_success_at
 * and token_count). Rows are written only where their content differs (issue #14): replaying the
 * same outcomes writes nothing but the users' attempt times, and a listed token that did not
 * change keeps its row version (its last-seen time is its user's last_success_at).
 *
 * Set-based: arrays through UNNEST, each table in its own data-modifying CTE.
 * The CTEs touch disjoint rows (listed vs deleted tokens, devices kept vs dropped), and foreign
 * keys are checked at the end of the statement, when the new tokens exist. One round trip per
 * batch matters: the writer shares its event loop with many fetches.
 */
export async function applyWritePlan(
  db: Kysely<Database>,
  runId: number,
  plan: WritePlan,
  outcomes: readonly UserOutcome[],
): Promise<void> {
  const { tokens, devices, resourceServers: servers, changes } = plan;
  const tokenIds = col(tokens, 'id');
  await sql`
    with
    upserted_tokens as (
      insert into auth0.refresh_tokens as t (
        id, user_id, client_id, session_id, rotating, created_at, idle_expires_at, expires_at,
        last_exchanged_at, metadata, raw, first_seen_at, last_changed_at, first_seen_run_id, last_changed_run_id)
      select u.id, u.user_id, u.client_id, u.session_id, u.rotating, u.created_at, u.idle_expires_at,
        u.expires_at, u.last_exchanged_at, u.metadata::jsonb, u.raw::jsonb, now(), now(), ${runId}, ${runId}
      from unnest(
        ${tokenIds}::text[], ${col(tokens, 'user_id')}::text[], ${col(tokens, 'client_id')}::text[],
        ${col(tokens, 'session_id')}::text[], ${col(tokens, 'rotating')}::bool[],
        ${col(tokens, 'created_at')}::timestamptz[], ${col(tokens, 'idle_expires_at')}::timestamptz[],
        ${col(tokens, 'expires_at')}::timestamptz[], ${col(tokens, 'last_exchanged_at')}::timestamptz[],
        ${col(tokens, 'metadata')}::text[], ${col(tokens, 'raw')}::text[]
      ) as u(id, user_id, client_id, session_id, rotating, created_at, idle_expires_at, expires_at,
             last_exchanged_at, metadata, raw)
      on conflict (id) do update set
        user_id = excluded.user_id, client_id = excluded.client_id, session_id = excluded.session_id,
        rotating = excluded.rotating, created_at = excluded.created_at,
        idle_expires_at = excluded.idle_expires_at, expires_at = excluded.expires_at,
        last_exchanged_at = excluded.last_exchanged_at, metadata = excluded.metadata, raw = excluded.raw,
        last_changed_at = excluded.last_changed_at, last_changed_run_id = excluded.last_changed_run_id, deleted_at = null
      -- The planner sends only changed tokens; this guard keeps a replayed plan from rewriting them.
      where (t.user_id, t.client_id, t.session_id, t.rotating, t.created_at, t.idle_expires_at, t.expires_at,
             t.last_exchanged_at, t.metadata, t.raw, t.deleted_at)
        is distinct from (excluded.user_id, excluded.client_id, excluded.session_id, excluded.rotating,
             excluded.created_at, excluded.idle_expires_at, excluded.expires_at, excluded.last_exchanged_at,
             excluded.metadata, excluded.raw, null::timestamptz)
      returning 1
    ),
    dropped_devices as (
      -- A device row only where the latest listing gave a device. Only the planned (changed)
      -- tokens are looked at: an unchanged token's raw, and so its device, is as stored.
      delete from auth0.refresh_token_devices
      where token_id = any(${tokenIds}::text[]) and not token_id = any(${col(devices, 'token_id')}::text[])
      returning 1
    ),
    upserted_devices as (
      insert into auth0.refresh_token_devices as d
        (token_id, initial_ip, initial_asn, initial_user_agent, last_ip, last_asn, last_user_agent)
      select * from unnest(
        ${col(devices, 'token_id')}::text[], ${col(devices, 'initial_ip')}::text[],
        ${col(devices, 'initial_asn')}::text[], ${col(devices, 'initial_user_agent')}::text[],
        ${col(devices, 'last_ip')}::text[], ${col(devices, 'last_asn')}::text[],
        ${col(devices, 'last_user_agent')}::text[])
      on conflict (token_id) do update set
        initial_ip = excluded.initial_ip, initial_asn = excluded.initial_asn,
        initial_user_agent = excluded.initial_user_agent, last_ip = excluded.last_ip,
        last_asn = excluded.last_asn, last_user_agent = excluded.last_user_agent
      where (d.initial_ip, d.initial_asn, d.initial_user_agent, d.last_ip, d.last_asn, d.last_user_agent)
        is distinct from (excluded.initial_ip, excluded.initial_asn, excluded.initial_user_agent,
                          excluded.last_ip, excluded.last_asn, excluded.last_user_agent)
      returning 1
    ),
    listed_servers as (
      select * from unnest(${col(servers, 'token_id')}::text[], ${col(servers, 'audience')}::text[], ${col(servers, 'scopes')}::text[])
        as s(token_id, audience, scopes)
    ),
    dropped_servers as (
      delete from auth0.refresh_token_resource_servers r
      where r.token_id = any(${tokenIds}::text[])
        and not exists (select 1 from listed_servers s where s.token_id = r.token_id and s.audience = r.audience)
      returning 1
    ),
    upserted_servers as (
      insert into auth0.refresh_token_resource_servers as r (token_id, audience, scopes)
      select token_id, audience, scopes from listed_servers
      on conflict (token_id, audience) do update set scopes = excluded.scopes
      where r.scopes is distinct from excluded.scopes
      returning 1
    ),
    deleted_tokens as (
      update auth0.refresh_tokens set deleted_at = now(), last_changed_at = now(), last_changed_run_id = ${runId}
      where id = any(${plan.deletedIds}::text[]) and deleted_at is null
      returning 1
    ),
    history as (
      insert into auth0.refresh_token_changes (token_id, user_id, change, old_value, new_value, run_id)
      select u.*, ${runId} from unnest(
        ${col(changes, 'token_id')}::text[], ${col(changes, 'user_id')}::text[], ${col(changes, 'change')}::text[],
        ${col(changes, 'old_value')}::text[], ${col(changes, 'new_value')}::text[]) as u
      returning 1
    ),
    user_state as (
      insert into auth0.user_sync_state as s
        (user_id, status, last_attempt_at, last_success_at, last_run_id, token_count, error_code, error)
      select u.user_id, u.status, now(), case when u.status <> 'failed' then now() end, ${runId},
        u.token_count, u.error_code, u.error
      from unnest(
        ${outcomes.map((o) => o.userId)}::text[], ${outcomes.map((o) => o.status)}::text[],
        ${outcomes.map(tokenCount)}::int[], ${outcomes.map((o) => (o.status === 'failed' ? o.code : null))}::text[],
        ${outcomes.map((o) => (o.status === 'failed' ? toSafeText(o.message) : null))}::text[]
      ) as u(user_id, status, token_count, error_code, error)
      on conflict (user_id) do update set
        status = excluded.status, last_attempt_at = excluded.last_attempt_at,
        last_success_at = coalesce(excluded.last_success_at, s.last_success_at),
        last_run_id = excluded.last_run_id, token_count = coalesce(excluded.token_count, s.token_count),
        error_code = excluded.error_code, error = excluded.error
      returning 1
    )
    select 1
  `.execute(db);
}

/**
 * Refresh the planner's statistics of the tables the writer looks rows up in. A warehouse
 * filled for the first time outgrows its statistics faster than autovacuum re-analyzes it;
 * tables analyzed while empty made PostgreSQL plan sequential scans for every keyed lookup and
 * a first sync of 100,000 users ran 2.3 times slower. Failure (say, a role that does not own
 * the tables) only costs speed, so it is ignored.
 */
export async function refreshStatistics(db: Kysely<Database>): Promise<void> {
  await sql`analyze auth0.refresh_tokens, auth0.refresh_token_devices, auth0.refresh_token_resource_servers, auth0.user_sync_state`
    .execute(db)
    .catch(() => {});
}

function tokenCount(outcome: UserOutcome): number | null {
  if (outcome.status === 'synced') return outcome.records.tokens.length;
  return outcome.status === 'not_found' ? 0 : null;
}


function col<T, K extends keyof T>(rows: readonly T[], key: K): T[K][] {
  return rows.map((row) => row[key]);
}
