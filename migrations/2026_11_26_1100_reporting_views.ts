import { sql, type Kysely } from 'kysely';

/**
 * Reporting views for analysts (docs/reporting.md). `auth0.active_refresh_tokens` defines
 * "active" once; the other four read from it, so they all agree on which tokens count.
 * Each view's window (7 days, 30 days) is fixed; for another window, query the base tables
 * (docs/reporting.md shows how). Views evaluate now() when queried, not when created.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create view auth0.active_refresh_tokens as
    select t.id, t.user_id, t.client_id, t.session_id, t.rotating,
           t.created_at, t.idle_expires_at, t.expires_at, t.last_exchanged_at,
           t.metadata, t.raw, t.first_seen_at, t.last_seen_at, t.deleted_at,
           t.first_seen_run_id, t.last_seen_run_id,
           d.initial_ip, d.initial_asn, d.initial_user_agent,
           d.last_ip, d.last_asn, d.last_user_agent
    from auth0.refresh_tokens t
    left join auth0.refresh_token_devices d on d.token_id = t.id
    where t.deleted_at is null
      and (t.expires_at is null or t.expires_at > now())
      and (t.idle_expires_at is null or t.idle_expires_at > now())
  `.execute(db);
  await comment(
    db,
    'active_refresh_tokens',
    'Tokens that are live now: not deleted, not past expires_at, not past idle_expires_at. ' +
    'All token columns plus the device columns (null where the token has no device row). The ' +
    'other reporting views read from this one.',
  );

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

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  for (const view of [
    'refresh_tokens_unused',
    'refresh_tokens_location_changed',
    'refresh_tokens_expiring_soon',
    'refresh_tokens_per_client',
    'active_refresh_tokens',
  ]) {
    await db.schema.withSchema('auth0').dropView(view).ifExists().execute();
  }
}

/** `comment on view auth0.<view>`: the text is a quoted literal (comment takes no parameters). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function comment(db: Kysely<any>, view: string, text: string): Promise<void> {
  await sql`comment on view ${sql.table(`auth0.${view}`)} is ${sql.lit(text)}`.execute(db);
}
