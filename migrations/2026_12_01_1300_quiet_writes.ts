import { sql, type Kysely } from 'kysely';

/**
 * Quiet writes (issue #14): a sync pass in which nothing changed writes no token, device or
 * resource-server row. "Last seen" therefore no longer lives on each token row:
 *
 * - `refresh_tokens.last_seen_at` / `last_seen_run_id` become `last_changed_at` /
 *   `last_changed_run_id`: the last time the row was written because something changed (first
 *   sighting, a changed field, a deletion, a restoration). Renamed rather than redefined, so a
 *   query written for the old meaning fails loudly instead of silently answering another
 *   question. Existing values are kept: for rows written before this migration they are the
 *   time of that last write.
 * - A live token was last seen when its user's listing was last confirmed complete,
 *   `user_sync_state.last_success_at`; the reporting views expose that as `last_seen_at`.
 * - `user_sync_state` is rewritten for every user on every pass (it records the attempt):
 *   fillfactor 70 leaves room on each page for the new row versions, so updates that change no
 *   indexed column (a failed attempt) stay HOT and the others stay on their page.
 *
 * The views are dropped and created again (a view cannot lose or rename a column in place);
 * their definitions are the ones of 2026_11_26_1100_reporting_views except for those columns.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await dropViews(db);
  await sql`alter table auth0.refresh_tokens rename column last_seen_at to last_changed_at`.execute(db);
  await sql`alter table auth0.refresh_tokens rename column last_seen_run_id to last_changed_run_id`.execute(db);
  await sql`alter table auth0.user_sync_state set (fillfactor = 70)`.execute(db);
  await createViews(db, {
    // greatest: a token's user always has a state row written with it, but rows loaded by hand
    // may not, and then the last change is the best known sighting.
    columns: sql`t.last_changed_at, t.deleted_at, t.first_seen_run_id, t.last_changed_run_id,
           greatest(s.last_success_at, t.last_changed_at) as last_seen_at`,
    // The state row of the token's user: one index probe per token.
    join: sql`left join auth0.user_sync_state s on s.user_id = t.user_id`,
    comment:
      'Tokens that are live now: not deleted, not past expires_at, not past idle_expires_at. ' +
      'All token columns plus the device columns (null where the token has no device row). ' +
      'last_seen_at is when a complete listing of the user last held the token (its user\'s ' +
      'user_sync_state.last_success_at); last_changed_at is when the row was last written ' +
      'because something changed. The other reporting views read from this one.',
  });
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await dropViews(db);
  await sql`alter table auth0.user_sync_state reset (fillfactor)`.execute(db);
  await sql`alter table auth0.refresh_tokens rename column last_changed_at to last_seen_at`.execute(db);
  await sql`alter table auth0.refresh_tokens rename column last_changed_run_id to last_seen_run_id`.execute(db);
  await createViews(db, {
    columns: sql`t.last_seen_at, t.deleted_at, t.first_seen_run_id, t.last_seen_run_id`,
    join: sql``,
    comment:
      'Tokens that are live now: not deleted, not past expires_at, not past idle_expires_at. ' +
      'All token columns plus the device columns (null where the token has no device row). The ' +
      'other reporting views read from this one.',
  });
}

const VIEWS = [
  'refresh_tokens_unused',
  'refresh_tokens_location_changed',
  'refresh_tokens_expiring_soon',
  'refresh_tokens_per_client',
  'active_refresh_tokens',
];

// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function dropViews(db: Kysely<any>): Promise<void> {
  for (const view of VIEWS) await db.schema.withSchema('auth0').dropView(view).ifExists().execute();
}

/** The five reporting views; only active_refresh_tokens' seen/changed columns differ by version. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function createViews(db: Kysely<any>, active: { columns: ReturnType<typeof sql>; join: ReturnType<typeof sql>; comment: string }): Promise<void> {
  await sql`
    create view auth0.active_refresh_tokens as
    select t.id, t.user_id, t.client_id, t.session_id, t.rotating,
           t.created_at, t.idle_expires_at, t.expires_at, t.last_exchanged_at,
           t.metadata, t.raw, t.first_seen_at, ${active.columns},
           d.initial_ip, d.initial_asn, d.initial_user_agent,
           d.last_ip, d.last_asn, d.last_user_agent
    from auth0.refresh_tokens t
    left join auth0.refresh_token_devices d on d.token_id = t.id
    ${active.join}
    where t.deleted_at is null
      and (t.expires_at is null or t.expires_at > now())
      and (t.idle_expires_at is null or t.idle_expires_at > now())
  `.execute(db);
  await comment(db, 'active_refresh_tokens', active.comment);

  await sql`
    create view auth0.refresh_tokens_per_client as
    select client_id,
           count(*) as active_tokens,
           count(distinct user_id) as users,
           round(avg(coalesce(rotating, false)::int), 3) as rotating_share,
           min(created_at) as oldest_created_at,
           max(last_exchanged_at) as last_exchanged_at
    from auth0.active_refresh_tokens
    group by client_id
  `.execute(db);
  await comment(
    db,
    'refresh_tokens_per_client',
    'Per application (client_id): active tokens, distinct users holding them, share of them ' +
    'that rotate (0..1, null rotating counted as not rotating), oldest creation and latest ' +
    'exchange.',
  );

  await sql`
    create view auth0.refresh_tokens_expiring_soon as
    with soon as (
      select id, user_id, client_id, expires_at, idle_expires_at,
             least(expires_at, idle_expires_at) as expires_first_at
      from auth0.active_refresh_tokens
    )
    select id, user_id, client_id, expires_at, idle_expires_at, expires_first_at,
           case when expires_at = expires_first_at then 'absolute' else 'idle' end as reason
    from soon
    where expires_first_at <= now() + interval '7 days'
  `.execute(db);
  await comment(
    db,
    'refresh_tokens_expiring_soon',
    'Active tokens that expire within the next 7 days, absolutely (expires_at) or by idleness ' +
    '(idle_expires_at): expires_first_at is the earlier of the two, reason says which ' +
    '(absolute on a tie).',
  );

  await sql`
    create view auth0.refresh_tokens_location_changed as
    with compared as (
      select id, user_id, client_id,
             initial_ip, last_ip, initial_asn, last_asn,
             initial_user_agent, last_user_agent, last_exchanged_at,
             (initial_ip is not null and last_ip is not null
              and last_ip is distinct from initial_ip) as ip_changed,
             (initial_asn is not null and last_asn is not null
              and last_asn is distinct from initial_asn) as asn_changed
      from auth0.active_refresh_tokens
    )
    select id, user_id, client_id,
           initial_ip, last_ip, initial_asn, last_asn,
           initial_user_agent, last_user_agent, last_exchanged_at,
           ip_changed, asn_changed
    from compared
    where ip_changed or asn_changed
  `.execute(db);
  await comment(
    db,
    'refresh_tokens_location_changed',
    'Active tokens now used from another IP (ip_changed) or network (asn_changed) than the ' +
    'one they were issued to: a theft signal. A pair is compared only where both its initial ' +
    'and last values are known; user agent changes alone do not count.',
  );

  await sql`
    create view auth0.refresh_tokens_unused as
    with usage as (
      select id, user_id, client_id, created_at, last_exchanged_at,
             coalesce(last_exchanged_at, created_at) as last_used_at
      from auth0.active_refresh_tokens
    )
    select id, user_id, client_id, created_at, last_exchanged_at, last_used_at,
           now() - last_used_at as unused_for
    from usage
    where last_used_at < now() - interval '30 days'
  `.execute(db);
  await comment(
    db,
    'refresh_tokens_unused',
    'Active tokens not exchanged for 30 days (last_used_at is the last exchange, else ' +
    'creation; tokens with neither are left out): candidates for revocation. unused_for is ' +
    'the time since last_used_at.',
  );
}

/** `comment on view auth0.<view>`: the text is a quoted literal (comment takes no parameters). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function comment(db: Kysely<any>, view: string, text: string): Promise<void> {
  await sql`comment on view ${sql.table(`auth0.${view}`)} is ${sql.lit(text)}`.execute(db);
}
