import { sql, type Kysely } from 'kysely';

/**
 * Schema docs and forensics (issue #11).
 *
 * - `comment on` every table, column and view of the `auth0` schema (view columns too), so
 *   `\d+` and BI tools show what README.md and docs/reporting.md say. The rule from here on:
 *   a migration that adds a table, column or view comments it (test/warehouse/schema-docs.test.ts
 *   fails otherwise). Kysely's own `kysely_migration*` tables are left alone.
 * - `auth0.refresh_tokens_as_of(at)`: the tokens the warehouse believed live at a moment.
 * - `auth0.recent_token_changes`: the changes observed in the last 24 hours, exchanges left out.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create function auth0.refresh_tokens_as_of(at timestamptz)
    returns table (
      id text, user_id text, client_id text, session_id text, rotating boolean,
      created_at timestamptz, expires_at timestamptz, idle_expires_at timestamptz,
      first_seen_at timestamptz, live_since timestamptz, deleted_at timestamptz
    )
    language sql stable
    as $fn$
      select t.id, t.user_id, t.client_id, t.session_id, t.rotating,
             t.created_at, t.expires_at, t.idle_expires_at, t.first_seen_at,
             coalesce(s.observed_at, t.first_seen_at) as live_since,
             t.deleted_at
      from auth0.refresh_tokens t
      -- The deletion or restoration in force at $1: the latest one observed by then.
      left join lateral (
        select c.change, c.observed_at
        from auth0.refresh_token_changes c
        where c.token_id = t.id and c.change in ('deleted', 'restored') and c.observed_at <= $1
        order by c.observed_at desc, c.id desc
        limit 1
      ) s on true
      where t.first_seen_at <= $1
        -- No deletion or restoration observed by then: the token row's own deleted_at decides.
        and case when s.change is null then t.deleted_at is null or t.deleted_at > $1
                 else s.change = 'restored' end
        and (t.expires_at is null or t.expires_at > $1)
        and (t.idle_expires_at is null or t.idle_expires_at > $1)
    $fn$
  `.execute(db);
  await sql`comment on function auth0.refresh_tokens_as_of(timestamptz) is ${sql.lit(AS_OF_COMMENT)}`.execute(db);

  await sql`
    create view auth0.recent_token_changes as
    select c.observed_at, c.change, c.token_id, c.user_id, u.email, t.client_id, t.session_id,
           c.old_value, c.new_value, c.run_id
    from auth0.refresh_token_changes c
    left join auth0.refresh_tokens t on t.id = c.token_id
    left join auth0.users u on u.user_id = c.user_id
    where c.observed_at > now() - interval '24 hours'
      and c.change <> 'exchanged'
  `.execute(db);

  for (const [relation, doc] of Object.entries(DOCS)) {
    const name = sql.table(`auth0.${relation}`);
    if (doc.comment) {
      const kind = doc.kind === 'view' ? sql.raw('view') : sql.raw('table');
      await sql`comment on ${kind} ${name} is ${sql.lit(doc.comment)}`.execute(db);
    }
    for (const [column, text] of Object.entries(doc.columns)) {
      await sql`comment on column ${sql.table(`auth0.${relation}`)}.${sql.ref(column)} is ${sql.lit(text)}`.execute(db);
    }
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop view if exists auth0.recent_token_changes`.execute(db);
  await sql`drop function if exists auth0.refresh_tokens_as_of(timestamptz)`.execute(db);
  // Back to the comments earlier migrations set: none on tables and columns but these two.
  for (const [relation, doc] of Object.entries(DOCS)) {
    if (relation === 'recent_token_changes') continue;
    if (doc.kind === 'table') await sql`comment on table ${sql.table(`auth0.${relation}`)} is null`.execute(db);
    for (const column of Object.keys(doc.columns)) {
      await sql`comment on column ${sql.table(`auth0.${relation}`)}.${sql.ref(column)} is null`.execute(db);
    }
  }
  await sql`comment on column auth0.sync_runs.tokens_held is 'Live tokens the warehouse held for the users this run listed: the deletion guard''s denominator'`.execute(db);
  await sql`comment on column auth0.users.removed_at is 'Set by import-users when a complete export no longer holds the user; cleared if it returns. Full syncs skip removed users.'`.execute(db);
}

const AS_OF_COMMENT =
  'The tokens the warehouse believed live at the moment given: first seen by then, not deleted ' +
  'then (the latest deleted/restored change observed by then decides; without one, deleted_at), ' +
  'not past expires_at or idle_expires_at then. Precision: a change is known when the sync that ' +
  'listed the token\'s user saw it, so times are as observed by the sync, late by up to that ' +
  'user\'s sync interval; a token created and revoked between two syncs of its user never ' +
  'appears. Other columns are today\'s values. With SYNC_HISTORY_DAYS, exact for moments inside ' +
  'the retention window; before it, a token deleted and restored before the window may show as ' +
  'live during its deleted spell. live_since: first_seen_at, or the restoration in force.';

/** Shared by refresh_tokens and the views that repeat its columns. */
const TOKEN: Record<string, string> = {
  id: 'Auth0 refresh token id (not the token itself, which Auth0 never lists).',
  user_id: 'Auth0 user id holding the token.',
  client_id: 'Application (client_id) the token was issued to.',
  session_id: 'Auth0 session the token belongs to.',
  rotating: 'Whether the token rotates on use (null: Auth0 did not say).',
  created_at: 'When Auth0 issued the token.',
  idle_expires_at: 'When the token expires if not exchanged before (moves with each exchange).',
  expires_at: 'Absolute expiry of the token.',
  last_exchanged_at: 'When the token was last exchanged for an access token, as Auth0 reported.',
  metadata: 'refresh_token_metadata as given by Auth0 (jsonb).',
  raw: 'The token exactly as Auth0 listed it, including fields added later (jsonb).',
  first_seen_at: 'When a sync first saw the token (not when Auth0 issued it).',
  last_changed_at:
    'When the row was last written because something changed (first sighting, a changed field, deletion, restoration); not "last seen".',
  deleted_at:
    'When a complete listing of the user first no longer held the token (as observed by that sync); cleared if it comes back.',
  first_seen_run_id: 'auth0.sync_runs.id of the run that first saw the token.',
  last_changed_run_id: 'auth0.sync_runs.id of the run that last wrote the row because something changed.',
};

const DEVICE: Record<string, string> = {
  initial_ip: 'IP address the token was issued to.',
  initial_asn: 'Network (ASN) the token was issued to.',
  initial_user_agent: 'User agent the token was issued to.',
  last_ip: 'IP address the token was last used from, as of the latest listing.',
  last_asn: 'Network (ASN) the token was last used from, as of the latest listing.',
  last_user_agent: 'User agent the token was last used from, as of the latest listing.',
};

const pick = (from: Record<string, string>, ...names: string[]): Record<string, string> =>
  Object.fromEntries(names.map((name) => [name, from[name] as string]));

/**
 * One comment per table, view and column. Views created earlier keep their own comments (set by
 * the migration that made them); their columns are commented here.
 */
const DOCS: Record<string, { kind: 'table' | 'view'; comment?: string; columns: Record<string, string> }> = {
  users: {
    kind: 'table',
    comment: 'Users whose tokens are synced (the default source of user IDs), loaded by hand or by import-users from the tenant\'s users export.',
    columns: {
      user_id: 'Auth0 user id.',
      loaded_at: 'When the row was inserted.',
      email: 'Email from the users export (import-users).',
      connection: 'Name of the connection of the user\'s first identity (import-users).',
      created_at: 'When Auth0 created the user (import-users).',
      last_login: 'The user\'s last login as the export gave it (import-users).',
      blocked: 'Whether the user is blocked in Auth0 (import-users).',
      first_imported_at: 'When import-users first imported the user.',
      last_imported_at: 'When import-users last found the user in an export.',
      removed_at:
        'Set by import-users when a complete export no longer holds the user; cleared if it returns. Full syncs skip removed users.',
    },
  },
  sync_runs: {
    kind: 'table',
    comment: 'One row per sync run: trigger, outcome, counts. Pruned after SYNC_HISTORY_DAYS when set (runs a row still references are kept).',
    columns: {
      id: 'Run id.',
      trigger: 'What started the run: manual, schedule, backfill or logs.',
      status: 'running, succeeded, partial (some users failed), failed or interrupted.',
      args: 'Options the run was started with (jsonb).',
      host: 'Host name of the process that ran it.',
      pid: 'Process id that ran it.',
      started_at: 'When the run started.',
      finished_at: 'When the run finished (null while running or if it died).',
      users_total: 'Users the run set out to sync.',
      users_synced: 'Users whose tokens were listed and written.',
      users_not_found: 'Users Auth0 no longer has.',
      users_failed: 'Users that failed (see auth0.user_sync_state.error).',
      tokens_seen: 'Tokens listed.',
      tokens_deleted: 'Tokens marked deleted (no longer listed).',
      requests: 'Requests made to Auth0.',
      error: 'Why the run failed, when it did.',
      tokens_added: 'Tokens seen for the first time.',
      tokens_changed: 'Tokens whose row changed.',
      tokens_held: 'Live tokens the warehouse held for the users this run listed: the deletion guard\'s denominator.',
      max_delete_ratio: 'Deletion guard bound in force (null when an operator confirmed a mass deletion).',
      delete_guard_tripped: 'Whether the deletion guard stopped the run.',
      tokens_endpoint: 'Route the run listed tokens through: refresh-tokens or users (null if it listed none).',
    },
  },
  refresh_tokens: {
    kind: 'table',
    comment:
      'Every refresh token a sync has seen, live or deleted; a row is written only when something changed. Never pruned.',
    columns: TOKEN,
  },
  refresh_token_devices: {
    kind: 'table',
    comment: 'Device of a token as of its latest listing; a row only where Auth0 gave a device object.',
    columns: { token_id: 'auth0.refresh_tokens.id.', ...DEVICE },
  },
  refresh_token_resource_servers: {
    kind: 'table',
    comment: 'APIs (audiences) a token grants access to, with their scopes, as of its latest listing.',
    columns: {
      token_id: 'auth0.refresh_tokens.id.',
      audience: 'API identifier (audience).',
      scopes: 'Scopes granted for that audience, space-separated as given.',
    },
  },
  user_sync_state: {
    kind: 'table',
    comment: 'One row per user: the outcome of the latest sync attempt and the last success.',
    columns: {
      user_id: 'Auth0 user id.',
      status: 'Latest attempt: synced, not_found or failed.',
      last_attempt_at: 'When the user was last attempted.',
      last_success_at:
        'When a complete listing of the user last succeeded: when its live tokens were last seen.',
      last_run_id: 'auth0.sync_runs.id of the latest attempt.',
      token_count: 'Tokens the latest successful listing held.',
      error_code: 'Stable code of the latest failure.',
      error: 'Message of the latest failure.',
    },
  },
  refresh_token_changes: {
    kind: 'table',
    comment:
      'Append-only change history: one row per change a sync observed on a token. Pruned after SYNC_HISTORY_DAYS when set, keeping the rows live tokens need.',
    columns: {
      id: 'Change id (increasing).',
      token_id: 'auth0.refresh_tokens.id (no foreign key).',
      user_id: 'Auth0 user id holding the token.',
      change:
        'created, deleted, restored, exchanged, last_ip_changed, last_asn_changed or last_user_agent_changed.',
      old_value: 'Value before the change (null for created, deleted, restored).',
      new_value: 'Value after the change.',
      run_id: 'auth0.sync_runs.id of the run that observed it.',
      observed_at: 'When the sync observed the change (not when it happened in Auth0).',
    },
  },
  run_lease: {
    kind: 'table',
    comment: 'One row (id = 1): which holding of the run lock may write. Every write checks it.',
    columns: {
      id: 'Always 1.',
      holder: 'Random id of the current taking of the run lock.',
      run_id: 'auth0.sync_runs.id of the run holding it (no foreign key).',
      acquired_at: 'When the lock was taken.',
    },
  },
  log_checkpoint: {
    kind: 'table',
    comment: 'One row: where the log follower (sync --from-logs) reads the tenant logs on from.',
    columns: {
      id: 'Always true (a single row).',
      log_id: 'Log entry id to read on from.',
      last_entry_date: 'Date of the last entry read.',
      lag_seconds: 'How far the last entry read was behind the time it was read.',
      entries_read: 'Log entries read in all.',
      entries_skipped: 'Entries that named no user to sync.',
      users_changed: 'Users the entries named.',
      last_run_id: 'auth0.sync_runs.id of the last run that advanced it.',
      started_at: 'When following started.',
      updated_at: 'When the checkpoint last moved.',
      history_lost_at: 'When the checkpoint was older than the log retention: a full pass is due since.',
    },
  },
  active_refresh_tokens: {
    kind: 'view',
    columns: {
      ...TOKEN,
      last_seen_at: 'When a complete listing of the user last held the token: its user\'s user_sync_state.last_success_at.',
      ...DEVICE,
    },
  },
  refresh_tokens_per_client: {
    kind: 'view',
    columns: {
      client_id: TOKEN.client_id as string,
      active_tokens: 'Active tokens of the application.',
      users: 'Distinct users holding them.',
      rotating_share: 'Share of them that rotate, 0..1 (null rotating counts as not rotating).',
      oldest_created_at: 'Creation of the oldest of them.',
      last_exchanged_at: 'Latest exchange among them.',
    },
  },
  refresh_tokens_expiring_soon: {
    kind: 'view',
    columns: {
      ...pick(TOKEN, 'id', 'user_id', 'client_id', 'expires_at', 'idle_expires_at'),
      expires_first_at: 'The earlier of expires_at and idle_expires_at.',
      reason: 'absolute (expires_at first, or a tie) or idle.',
    },
  },
  refresh_tokens_location_changed: {
    kind: 'view',
    columns: {
      ...pick(TOKEN, 'id', 'user_id', 'client_id', 'last_exchanged_at'),
      ...DEVICE,
      ip_changed: 'last_ip differs from initial_ip (both known).',
      asn_changed: 'last_asn differs from initial_asn (both known).',
    },
  },
  refresh_tokens_unused: {
    kind: 'view',
    columns: {
      ...pick(TOKEN, 'id', 'user_id', 'client_id', 'created_at', 'last_exchanged_at'),
      last_used_at: 'The last exchange, else creation.',
      unused_for: 'Time since last_used_at.',
    },
  },
  recent_token_changes: {
    kind: 'view',
    comment:
      'Changes observed in the last 24 hours: tokens created, deleted (revoked), restored, and last IP / ASN / user agent changes (exchanges left out). ' +
      'observed_at is when the sync saw the change, late by up to the user\'s sync interval.',
    columns: {
      observed_at: 'When the sync observed the change.',
      change: 'created, deleted, restored, last_ip_changed, last_asn_changed or last_user_agent_changed.',
      token_id: 'auth0.refresh_tokens.id.',
      user_id: 'Auth0 user id holding the token.',
      email: 'The user\'s email, where auth0.users has it.',
      client_id: TOKEN.client_id as string,
      session_id: TOKEN.session_id as string,
      old_value: 'Value before the change (location changes).',
      new_value: 'Value after the change (location changes).',
      run_id: 'auth0.sync_runs.id of the run that observed it.',
    },
  },
};
