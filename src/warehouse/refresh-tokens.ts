import { sql, type Kysely } from 'kysely';
import type { Database } from '../database.js';
import type { UserOutcome } from '../sync/outcome.js';
import type { StoredToken, WritePlan } from '../sync/plan.js';

/**
 * The stored tokens of these users (live and deleted) with their device's last location:
 * what planWrites compares a batch's listings with.
 */
export async function readStoredTokens(trx: Kysely<Database>, userIds: readonly string[]): Promise<StoredToken[]> {
  if (userIds.length === 0) return [];
  const { rows } = await sql<StoredToken>`
    select t.id, t.user_id, t.deleted_at, t.last_exchanged_at, t.raw, d.token_id is not null as has_device,
      d.last_ip, d.last_asn, d.last_user_agent
    from auth0.refresh_tokens t left join auth0.refresh_token_devices d on d.token_id = t.id
    where t.user_id = any(${[...userIds]}::text[])
  `.execute(trx);
  return rows;
}

/**
 * Apply a batch's plan, set-based (one statement per table, arrays through UNNEST), inside the
 * caller's transaction so every user in it is all-or-nothing: upsert the listed tokens
 * (first_seen_* kept, last_seen_* moved, deleted_at cleared for a token that came back),
 * replace the device and resource-server rows of the listed tokens, mark deleted the live
 * tokens the listings no longer hold, append the change history, and upsert user_sync_state
 * for every user (a failed user keeps last_success_at and token_count). Idempotent: replaying
 * the same outcomes changes nothing but the seen and attempt times.
 */
export async function applyWritePlan(
  trx: Kysely<Database>,
  runId: number,
  plan: WritePlan,
  outcomes: readonly UserOutcome[],
): Promise<void> {
  const { tokens, devices, resourceServers: servers, changes } = plan;
  const tokenIds = tokens.map((t) => t.id);

  if (tokens.length > 0) {
    await sql`
      insert into auth0.refresh_tokens as t (
        id, user_id, client_id, session_id, rotating, created_at, idle_expires_at, expires_at,
        last_exchanged_at, metadata, raw, first_seen_at, last_seen_at, first_seen_run_id, last_seen_run_id)
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
        last_seen_at = excluded.last_seen_at, last_seen_run_id = excluded.last_seen_run_id, deleted_at = null
    `.execute(trx);

    await sql`delete from auth0.refresh_token_devices where token_id = any(${tokenIds}::text[])`.execute(trx);
    await sql`delete from auth0.refresh_token_resource_servers where token_id = any(${tokenIds}::text[])`.execute(trx);
  }
  if (devices.length > 0) {
    await sql`
      insert into auth0.refresh_token_devices
        (token_id, initial_ip, initial_asn, initial_user_agent, last_ip, last_asn, last_user_agent)
      select * from unnest(
        ${col(devices, 'token_id')}::text[], ${col(devices, 'initial_ip')}::text[],
        ${col(devices, 'initial_asn')}::text[], ${col(devices, 'initial_user_agent')}::text[],
        ${col(devices, 'last_ip')}::text[], ${col(devices, 'last_asn')}::text[],
        ${col(devices, 'last_user_agent')}::text[])
    `.execute(trx);
  }
  if (servers.length > 0) {
    await sql`
      insert into auth0.refresh_token_resource_servers (token_id, audience, scopes)
      select * from unnest(${col(servers, 'token_id')}::text[], ${col(servers, 'audience')}::text[], ${col(servers, 'scopes')}::text[])
    `.execute(trx);
  }
  if (plan.deletedIds.length > 0) {
    await sql`
      update auth0.refresh_tokens set deleted_at = now() where id = any(${plan.deletedIds}::text[]) and deleted_at is null
    `.execute(trx);
  }
  if (changes.length > 0) {
    await sql`
      insert into auth0.refresh_token_changes (token_id, user_id, change, old_value, new_value, run_id)
      select u.*, ${runId} from unnest(
        ${col(changes, 'token_id')}::text[], ${col(changes, 'user_id')}::text[], ${col(changes, 'change')}::text[],
        ${col(changes, 'old_value')}::text[], ${col(changes, 'new_value')}::text[]) as u
    `.execute(trx);
  }

  await sql`
    insert into auth0.user_sync_state as s
      (user_id, status, last_attempt_at, last_success_at, last_run_id, token_count, error_code, error)
    select u.user_id, u.status, now(), case when u.status <> 'failed' then now() end, ${runId},
      u.token_count, u.error_code, u.error
    from unnest(
      ${outcomes.map((o) => o.userId)}::text[], ${outcomes.map((o) => o.status)}::text[],
      ${outcomes.map(tokenCount)}::int[], ${outcomes.map((o) => (o.status === 'failed' ? o.code : null))}::text[],
      ${outcomes.map((o) => (o.status === 'failed' ? withoutNul(o.message) : null))}::text[]
    ) as u(user_id, status, token_count, error_code, error)
    on conflict (user_id) do update set
      status = excluded.status, last_attempt_at = excluded.last_attempt_at,
      last_success_at = coalesce(excluded.last_success_at, s.last_success_at),
      last_run_id = excluded.last_run_id, token_count = coalesce(excluded.token_count, s.token_count),
      error_code = excluded.error_code, error = excluded.error
  `.execute(trx);
}

function tokenCount(outcome: UserOutcome): number | null {
  if (outcome.status === 'synced') return outcome.records.tokens.length;
  return outcome.status === 'not_found' ? 0 : null;
}

/** PostgreSQL text cannot hold U+0000, and an error message may quote a value that has one. */
function withoutNul(text: string): string {
  return text.replaceAll('\u0000', '\\u0000');
}

function col<T, K extends keyof T>(rows: readonly T[], key: K): T[K][] {
  return rows.map((row) => row[key]);
}
