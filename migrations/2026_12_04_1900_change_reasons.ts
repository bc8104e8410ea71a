import { sql, type Kysely } from 'kysely';

/**
 * The why of each deletion (issue #22):
 * - `refresh_token_changes.reason`: why a `deleted` row's token went (the words below; the rule
 *   is src/pipeline/deletion-reason.ts), `reason_log_id` the tenant log entry that says so, and
 *   `reason_client_id` the Management API client that made the call when a `sapi` entry names
 *   it. Only deletions carry a reason. Rows written before this migration keep null: whether the
 *   logs explained them was never recorded, and calling them `unexplained` would be a guess
 *   (and would swell what status and the metrics call out).
 * - `log_follow_retries.explanations`: the entries that explained a loss for a user a follow
 *   could not sync, so the retry records the same reason and log id. Rows from before keep `[]`:
 *   their deletions, if any, are recorded `unexplained`.
 * - `auth0.refresh_token_deletions` (the last 7 days of deletions, with reason, log id and API
 *   client) and `auth0.refresh_token_deletions_by_reason` (per UTC day and reason, 30 days).
 * - `auth0.recent_token_changes` gains the three columns (appended, so the view keeps its own).
 */
const REASONS = ['revoked_by_user', 'revoked_by_api', 'reuse_detected', 'session_revoked', 'user_deleted', 'pruned', 'expired', 'unexplained'];

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .withSchema('auth0')
    .alterTable('refresh_token_changes')
    .addColumn('reason', 'text', (c) => c.check(sql`reason in (${sql.join(REASONS.map((r) => sql.lit(r)))})`))
    .addColumn('reason_log_id', 'text')
    .addColumn('reason_client_id', 'text')
    .execute();
  await sql`
    alter table auth0.refresh_token_changes add constraint refresh_token_changes_reason_on_deletions
    check (change = 'deleted' or (reason is null and reason_log_id is null and reason_client_id is null))`.execute(db);
  await db.schema
    .withSchema('auth0')
    .alterTable('log_follow_retries')
    .addColumn('explanations', 'jsonb', (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .execute();

  await sql`
    create view auth0.refresh_token_deletions as
    select c.observed_at, c.token_id, c.user_id, u.email, t.client_id, t.session_id, c.reason, c.reason_log_id, c.reason_client_id, c.run_id
    from auth0.refresh_token_changes c
    left join auth0.refresh_tokens t on t.id = c.token_id
    left join auth0.users u on u.user_id = c.user_id
    where c.change = 'deleted' and c.observed_at > now() - interval '7 days'`.execute(db);
  await sql`
    create view auth0.refresh_token_deletions_by_reason as
    select date_trunc('day', c.observed_at at time zone 'UTC') at time zone 'UTC' as day, c.reason, count(*)::int as deletions,
      count(distinct c.user_id)::int as users
    from auth0.refresh_token_changes c
    where c.change = 'deleted' and c.observed_at > now() - interval '30 days'
    group by 1, 2`.execute(db);
  // Appended columns: `create or replace` keeps the view's existing columns and their comments.
  await sql`
    create or replace view auth0.recent_token_changes as
    select c.observed_at, c.change, c.token_id, c.user_id, u.email, t.client_id, t.session_id, c.old_value, c.new_value, c.run_id,
      c.reason, c.reason_log_id, c.reason_client_id
    from auth0.refresh_token_changes c
    left join auth0.refresh_tokens t on t.id = c.token_id
    left join auth0.users u on u.user_id = c.user_id
    where c.observed_at > now() - interval '24 hours' and c.change <> 'exchanged'`.execute(db);

  for (const [relation, columns] of Object.entries(COMMENTS)) {
    for (const [column, text] of Object.entries(columns)) {
      await sql`comment on column ${sql.table(`auth0.${relation}`)}.${sql.ref(column)} is ${sql.lit(text)}`.execute(db);
    }
  }
  await sql`comment on view auth0.refresh_token_deletions is ${sql.lit(DELETIONS_COMMENT)}`.execute(db);
  await sql`comment on view auth0.refresh_token_deletions_by_reason is ${sql.lit(BY_REASON_COMMENT)}`.execute(db);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop view auth0.refresh_token_deletions_by_reason`.execute(db);
  await sql`drop view auth0.refresh_token_deletions`.execute(db);
  // A view loses no column through `create or replace`: drop it and put back the earlier
  // definition (2026_12_01_1800_schema_docs_forensics) with its comments.
  await sql`drop view auth0.recent_token_changes`.execute(db);
  await sql`
    create view auth0.recent_token_changes as
    select c.observed_at, c.change, c.token_id, c.user_id, u.email, t.client_id, t.session_id, c.old_value, c.new_value, c.run_id
    from auth0.refresh_token_changes c
    left join auth0.refresh_tokens t on t.id = c.token_id
    left join auth0.users u on u.user_id = c.user_id
    where c.observed_at > now() - interval '24 hours' and c.change <> 'exchanged'`.execute(db);
  await sql`comment on view auth0.recent_token_changes is ${sql.lit(RECENT_COMMENT)}`.execute(db);
  for (const [column, text] of Object.entries(RECENT_COLUMNS)) {
    await sql`comment on column auth0.recent_token_changes.${sql.ref(column)} is ${sql.lit(text)}`.execute(db);
  }
  await db.schema.withSchema('auth0').alterTable('log_follow_retries').dropColumn('explanations').execute();
  await sql`alter table auth0.refresh_token_changes drop constraint refresh_token_changes_reason_on_deletions`.execute(db);
  await db.schema.withSchema('auth0').alterTable('refresh_token_changes').dropColumn('reason').dropColumn('reason_log_id').dropColumn('reason_client_id').execute();
}

const REASON_TEXT =
  "Why the token was deleted (deleted rows only): revoked_by_user (srrt), revoked_by_api (a Management API revocation, block or grant removal), reuse_detected (ferrt), session_revoked (a logout or a session revoked), user_deleted (sdu or an API delete), pruned (resource_cleanup, or beyond Auth0's 200 tokens per user and application), expired (past expires_at or idle_expires_at when it vanished) or unexplained (what the deletion guard counts). Null on deletions recorded before reasons were (2026-12-04).";
const REASON_LOG_ID_TEXT = 'log_id of the tenant log entry the reason was read from; null for expired, unexplained, and pruned inferred from the cap.';
const REASON_CLIENT_ID_TEXT = 'The Management API client (client_id) that made the call, when the reason comes from a sapi entry naming it.';

const DELETIONS_COMMENT =
  'Tokens marked deleted in the last 7 days, newest questions first: who held them, which application and session, why (reason), and the log entry (reason_log_id) and Management API client (reason_client_id) that say so. observed_at is when a sync saw the token gone.';
const BY_REASON_COMMENT =
  'Deletions of the last 30 days per UTC day and reason: the unexplained ones are what the deletion guard watches. A null reason: recorded before reasons were.';

const RECENT_COMMENT =
  'Changes observed in the last 24 hours: tokens created, deleted (revoked), restored, and last IP / ASN / user agent changes (exchanges left out). observed_at is when the sync saw the change, late by up to the user\'s sync interval.';
const RECENT_COLUMNS: Record<string, string> = {
  observed_at: 'When the sync observed the change.',
  change: 'created, deleted, restored, last_ip_changed, last_asn_changed or last_user_agent_changed.',
  token_id: 'auth0.refresh_tokens.id.',
  user_id: 'Auth0 user id holding the token.',
  email: "The user's email, where auth0.users has it.",
  client_id: 'Application (client_id) the token was issued to.',
  session_id: 'Auth0 session the token belongs to.',
  old_value: 'Value before the change (location changes).',
  new_value: 'Value after the change (location changes).',
  run_id: 'auth0.sync_runs.id of the run that observed it.',
};

const COMMENTS: Record<string, Record<string, string>> = {
  refresh_token_changes: { reason: REASON_TEXT, reason_log_id: REASON_LOG_ID_TEXT, reason_client_id: REASON_CLIENT_ID_TEXT },
  log_follow_retries: {
    explanations:
      'The log entries that explained a loss of the user\'s tokens (reason, log_id, what they name), so its retry records the same reason; [] when none did.',
  },
  recent_token_changes: { reason: REASON_TEXT, reason_log_id: REASON_LOG_ID_TEXT, reason_client_id: REASON_CLIENT_ID_TEXT },
  refresh_token_deletions: {
    observed_at: 'When a sync saw the token gone (not when it went in Auth0).',
    token_id: 'auth0.refresh_tokens.id.',
    user_id: 'Auth0 user id that held the token.',
    email: "The user's email, where auth0.users has it.",
    client_id: 'Application (client_id) the token was issued to.',
    session_id: 'Auth0 session the token belonged to.',
    reason: REASON_TEXT,
    reason_log_id: REASON_LOG_ID_TEXT,
    reason_client_id: REASON_CLIENT_ID_TEXT,
    run_id: 'auth0.sync_runs.id of the run that saw it gone.',
  },
  refresh_token_deletions_by_reason: {
    day: 'Start (midnight UTC) of the day the deletions were observed.',
    reason: 'Why (see refresh_token_changes.reason); null for deletions recorded before reasons were.',
    deletions: 'Tokens marked deleted that day for that reason.',
    users: 'Distinct users those tokens belonged to.',
  },
};
