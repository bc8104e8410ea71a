import { sql, type Kysely } from 'kysely';

/**
 * Tenants in the schema (issue #23): one warehouse for many Auth0 tenants.
 *
 * - Every table the job writes gets `tenant text not null` (checked against the tenant name rule
 *   of src/core/tenant-name.ts). Rows from before tenants get the tenant the configuration points
 *   at, read from the setting `auth0_sync.tenant` that `migrateToLatest(db, { tenant })` sets on
 *   the migration's connection. The column is added with that name as a constant default, then
 *   the default is dropped: PostgreSQL (11 and later) keeps a constant default in the catalog
 *   instead of rewriting the table, so a large warehouse is not rewritten. An empty warehouse
 *   needs no name; one holding rows without a name is refused with one sentence.
 * - Natural keys start with the tenant: (tenant, user_id), (tenant, id), (tenant, token_id[,
 *   audience]); the foreign keys between them too. log_checkpoint and run_lease hold one row per
 *   tenant (key: tenant). Serial ids (sync_runs.id, *_changes.id) stay the keys; their indexes
 *   start with the tenant.
 * - Every view gets `tenant` as its first column and joins on it; views span every tenant and
 *   are filtered with `where tenant = …`. `refresh_tokens_as_of(at, tenant_name)` returns the
 *   tenant (the parameter cannot be named `tenant`: PostgreSQL refuses a parameter named as an
 *   output column). Views are made again (a column cannot be added in front in place): their
 *   comments and grants are put back as they were.
 * - `down` undoes it all while one tenant at most holds rows; with more it refuses (keys would
 *   collide).
 */

/** Every table of schema auth0 the job writes (all but Kysely's own). */
const TABLES = [
  'users',
  'refresh_tokens',
  'refresh_token_devices',
  'refresh_token_resource_servers',
  'refresh_token_changes',
  'user_sync_state',
  'sync_runs',
  'log_checkpoint',
  'log_follow_retries',
  'run_lease',
  'sessions',
  'session_changes',
] as const;

/** src/core/tenant-name.ts's TENANT_NAME, as PostgreSQL reads it. */
const TENANT_PATTERN = '^[a-z0-9][a-z0-9-]{0,31}$';

const NO_NAME =
  'the warehouse holds rows from before tenants: run migrate with the settings of the tenant they came from (AUTH0_DOMAIN / AUTH0_TENANT_NAME, or TENANTS_FILE and --tenant NAME)';

/** Natural keys, before and after. */
const KEYS: readonly (readonly [table: string, columns: string])[] = [
  ['users', 'user_id'],
  ['refresh_tokens', 'id'],
  ['refresh_token_devices', 'token_id'],
  ['refresh_token_resource_servers', 'token_id, audience'],
  ['user_sync_state', 'user_id'],
  ['log_follow_retries', 'user_id'],
  ['sessions', 'id'],
];

/** Indexes whose columns start with the tenant, and what they were before. */
const INDEXES: readonly (readonly [name: string, table: string, columns: string])[] = [
  ['refresh_token_changes_token_idx', 'refresh_token_changes', 'token_id, observed_at'],
  ['refresh_token_resource_servers_audience_idx', 'refresh_token_resource_servers', 'audience'],
  ['refresh_tokens_client_id_idx', 'refresh_tokens', 'client_id'],
  ['refresh_tokens_user_id_idx', 'refresh_tokens', 'user_id'],
  ['session_changes_session_idx', 'session_changes', 'session_id, observed_at'],
  ['sessions_user_idx', 'sessions', 'user_id'],
  ['user_sync_state_last_success_idx', 'user_sync_state', 'last_success_at, user_id'],
  ['users_connection_idx', 'users', 'connection, user_id'],
];

/** Foreign keys from a token's parts to the token. */
const TOKEN_PARTS = ['refresh_token_devices', 'refresh_token_resource_servers'] as const;

const TENANT_COLUMN_COMMENT = 'Tenant the row belongs to: its short name (AUTH0_TENANT_NAME, or name in TENANTS_FILE).';
const TENANT_VIEW_COMMENT = 'Tenant the row belongs to (short name); filter with where tenant = ….';

const SINGLE_ROW_COMMENTS = {
  up: {
    log_checkpoint: "One row per tenant: where the log follower (sync --from-logs) reads that tenant's logs on from.",
    run_lease: 'One row per tenant: which holding of that tenant\'s run lock may write. Every write checks it.',
  },
  down: {
    log_checkpoint: 'One row: where the log follower (sync --from-logs) reads the tenant logs on from.',
    run_lease: 'One row (id = 1): which holding of the run lock may write. Every write checks it.',
  },
} as const;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  const tables = sql.raw(`array[${TABLES.map((t) => `'${t}'`).join(', ')}]`);
  await sql`
    do $$
    declare
      name text := coalesce(current_setting('auth0_sync.tenant', true), '');
      t text;
      held boolean;
    begin
      if name <> '' and name !~ ${sql.lit(TENANT_PATTERN)} then
        raise exception 'the tenant name % is not a short name of lower-case letters, digits and hyphens (at most 32), such as prod-eu', quote_literal(name);
      end if;
      if name = '' then
        -- The lease row the run_lease migration made holds nothing: each tenant gets its own.
        delete from auth0.run_lease;
        foreach t in array ${tables} loop
          execute format('select exists (select from auth0.%I)', t) into held;
          if held then
            raise exception ${sql.lit(NO_NAME)};
          end if;
        end loop;
      end if;
      foreach t in array ${tables} loop
        if name = '' then
          execute format('alter table auth0.%I add column tenant text not null', t);
        else
          -- A constant default: kept in the catalog, the table is not rewritten.
          execute format('alter table auth0.%I add column tenant text not null default %L', t, name);
          execute format('alter table auth0.%I alter column tenant drop default', t);
        end if;
        execute format('alter table auth0.%I add constraint %I check (tenant ~ %L)', t, t || '_tenant_check', ${sql.lit(TENANT_PATTERN)});
      end loop;
    end $$`.execute(db);
  for (const table of TABLES) {
    await sql`comment on column ${sql.table(`auth0.${table}`)}.tenant is ${sql.lit(TENANT_COLUMN_COMMENT)}`.execute(db);
  }

  const views = await saveViews(db);
  await dropViews(db);
  await sql`drop function auth0.refresh_tokens_as_of(timestamptz)`.execute(db);

  for (const part of TOKEN_PARTS) await sql`alter table ${sql.table(`auth0.${part}`)} drop constraint ${sql.ref(`${part}_token_id_fkey`)}`.execute(db);
  for (const [table, columns] of KEYS) {
    await sql`alter table ${sql.table(`auth0.${table}`)} drop constraint ${sql.ref(`${table}_pkey`)}`.execute(db);
    await sql`alter table ${sql.table(`auth0.${table}`)} add primary key (tenant, ${sql.raw(columns)})`.execute(db);
  }
  for (const part of TOKEN_PARTS) {
    await sql`alter table ${sql.table(`auth0.${part}`)} add constraint ${sql.ref(`${part}_token_id_fkey`)}
      foreign key (tenant, token_id) references auth0.refresh_tokens (tenant, id) on delete cascade`.execute(db);
  }
  for (const table of ['log_checkpoint', 'run_lease'] as const) {
    await sql`alter table ${sql.table(`auth0.${table}`)} drop column id`.execute(db);
    await sql`alter table ${sql.table(`auth0.${table}`)} add primary key (tenant)`.execute(db);
    await sql`comment on table ${sql.table(`auth0.${table}`)} is ${sql.lit(SINGLE_ROW_COMMENTS.up[table])}`.execute(db);
  }
  for (const [name, table, columns] of INDEXES) {
    await sql`drop index ${sql.table(`auth0.${name}`)}`.execute(db);
    await sql`create index ${sql.ref(name)} on ${sql.table(`auth0.${table}`)} (tenant, ${sql.raw(columns)})`.execute(db);
  }
  await sql`create index sync_runs_tenant_started_idx on auth0.sync_runs (tenant, started_at)`.execute(db);

  await createAsOf(db, true);
  await createViews(db, true, views);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  const union = sql.raw(TABLES.map((t) => `select tenant from auth0.${t}`).join(' union '));
  const { rows } = await sql<{ tenant: string }>`select tenant from (${union}) t order by tenant`.execute(db);
  if (rows.length > 1) {
    throw new Error(
      `the warehouse holds rows of ${rows.length} tenants (${rows.map((r) => r.tenant).join(', ')}): without a tenant column their keys would collide, so this migration cannot be undone; keep one tenant's rows first`,
    );
  }

  const views = await saveViews(db);
  await dropViews(db);
  await sql`drop function auth0.refresh_tokens_as_of(timestamptz, text)`.execute(db);
  await sql`drop index auth0.sync_runs_tenant_started_idx`.execute(db);
  for (const part of TOKEN_PARTS) await sql`alter table ${sql.table(`auth0.${part}`)} drop constraint ${sql.ref(`${part}_token_id_fkey`)}`.execute(db);
  for (const [table, columns] of KEYS) {
    await sql`alter table ${sql.table(`auth0.${table}`)} drop constraint ${sql.ref(`${table}_pkey`)}`.execute(db);
    await sql`alter table ${sql.table(`auth0.${table}`)} add primary key (${sql.raw(columns)})`.execute(db);
  }
  for (const part of TOKEN_PARTS) {
    await sql`alter table ${sql.table(`auth0.${part}`)} add constraint ${sql.ref(`${part}_token_id_fkey`)}
      foreign key (token_id) references auth0.refresh_tokens (id) on delete cascade`.execute(db);
  }
  for (const [name, table, columns] of INDEXES) {
    await sql`drop index ${sql.table(`auth0.${name}`)}`.execute(db);
    await sql`create index ${sql.ref(name)} on ${sql.table(`auth0.${table}`)} (${sql.raw(columns)})`.execute(db);
  }
  for (const table of ['log_checkpoint', 'run_lease'] as const) {
    await sql`alter table ${sql.table(`auth0.${table}`)} drop constraint ${sql.ref(`${table}_pkey`)}`.execute(db);
    await sql`comment on table ${sql.table(`auth0.${table}`)} is ${sql.lit(SINGLE_ROW_COMMENTS.down[table])}`.execute(db);
  }
  await sql`alter table auth0.log_checkpoint add column id boolean not null default true constraint log_checkpoint_id_check check (id) primary key`.execute(db);
  await sql`alter table auth0.run_lease add column id integer not null default 1 constraint run_lease_id_check check (id = 1) primary key`.execute(db);
  await sql`alter table auth0.run_lease alter column id drop default`.execute(db);
  await sql`comment on column auth0.log_checkpoint.id is 'Always true (a single row).'`.execute(db);
  await sql`comment on column auth0.run_lease.id is 'Always 1.'`.execute(db);
  for (const table of TABLES) await sql`alter table ${sql.table(`auth0.${table}`)} drop column tenant`.execute(db);
  // The run_lease migration's one row, which the table held before tenants.
  await sql`insert into auth0.run_lease (id) select 1 where not exists (select from auth0.run_lease)`.execute(db);

  await createAsOf(db, false);
  await createViews(db, false, views);
}

/** What a view keeps across being made again: its comment, its columns' comments, its grants. */
interface SavedView {
  comment: string | null;
  columns: Record<string, string | null>;
  grants: { grantee: string; privilege: string; grantable: boolean }[];
}

/** Every reporting view, in an order that can be created (each after those it reads). */
const VIEW_ORDER = [
  'active_refresh_tokens',
  'active_sessions',
  'recent_token_changes',
  'refresh_token_deletions',
  'refresh_token_deletions_by_reason',
  'refresh_token_scopes',
  'refresh_tokens_expiring_soon',
  'refresh_tokens_location_changed',
  'refresh_tokens_with_session',
  'refresh_tokens_outliving_session',
  'refresh_tokens_per_client',
  'refresh_tokens_unused',
  'refresh_tokens_without_second_factor',
  'sessions_per_client',
  'sessions_per_device',
] as const;
type ViewName = (typeof VIEW_ORDER)[number];

// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function saveViews(db: Kysely<any>): Promise<Map<string, SavedView>> {
  const saved = new Map<string, SavedView>();
  for (const view of VIEW_ORDER) {
    const relation = `auth0.${view}`;
    const { rows } = await sql<{ comment: string | null }>`select obj_description(${relation}::regclass, 'pg_class') as comment`.execute(db);
    const { rows: columns } = await sql<{ name: string; comment: string | null }>`
      select a.attname as name, col_description(a.attrelid, a.attnum) as comment
      from pg_attribute a where a.attrelid = ${relation}::regclass and a.attnum > 0 and not a.attisdropped`.execute(db);
    // The owner's own privileges come back with the view; every other role's are granted again.
    const { rows: grants } = await sql<{ grantee: string; privilege: string; grantable: boolean }>`
      select case when g.grantee = 0 then 'public' else quote_ident(r.rolname) end as grantee, g.privilege_type as privilege, g.is_grantable as grantable
      from pg_class c cross join lateral aclexplode(c.relacl) g
      left join pg_roles r on r.oid = g.grantee
      where c.oid = ${relation}::regclass and g.grantee <> c.relowner`.execute(db);
    saved.set(view, { comment: rows[0]?.comment ?? null, columns: Object.fromEntries(columns.map((c) => [c.name, c.comment])), grants });
  }
  return saved;
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function dropViews(db: Kysely<any>): Promise<void> {
  for (const view of [...VIEW_ORDER].reverse()) await sql`drop view ${sql.table(`auth0.${view}`)}`.execute(db);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function createViews(db: Kysely<any>, tenant: boolean, saved: Map<string, SavedView>): Promise<void> {
  const definitions = viewDefinitions(tenant);
  for (const view of VIEW_ORDER) {
    const relation = sql.table(`auth0.${view}`);
    await sql`create view ${relation} as ${sql.raw(definitions[view])}`.execute(db);
    const { comment, columns, grants } = saved.get(view)!;
    if (comment !== null) await sql`comment on view ${relation} is ${sql.lit(comment)}`.execute(db);
    const texts = tenant ? { ...columns, tenant: TENANT_VIEW_COMMENT } : columns;
    const { rows: present } = await sql<{ name: string }>`
      select attname as name from pg_attribute where attrelid = ${`auth0.${view}`}::regclass and attnum > 0 and not attisdropped`.execute(db);
    for (const { name } of present) {
      const text = texts[name];
      if (text) await sql`comment on column ${relation}.${sql.ref(name)} is ${sql.lit(text)}`.execute(db);
    }
    for (const { grantee, privilege, grantable } of grants) {
      await sql`grant ${sql.raw(privilege)} on ${relation} to ${sql.raw(grantee)}${sql.raw(grantable ? ' with grant option' : '')}`.execute(db);
    }
  }
}

/**
 * The reporting views with or without the tenant: `tenant` first and in every join when
 * `tenant`, as they were before tenants otherwise (what `down` makes again).
 */
function viewDefinitions(tenant: boolean): Record<ViewName, string> {
  /** `text` where the views have a tenant, nothing otherwise. */
  const t = (text: string): string => (tenant ? text : '');
  const live = (alias: string) =>
    `${alias}.deleted_at is null and (${alias}.expires_at is null or ${alias}.expires_at > now()) and (${alias}.idle_expires_at is null or ${alias}.idle_expires_at > now())`;
  const methods = (alias: string) =>
    `array(select coalesce(m.value ->> 'name', '') || coalesce(':' || (m.value ->> 'type'), '') from jsonb_array_elements(${alias}.authentication_methods) m(value))`;
  const secondFactor = (alias: string) => `exists (select 1 from jsonb_array_elements(${alias}.authentication_methods) m(value) where m.value ->> 'name' = 'mfa')`;
  return {
    active_refresh_tokens: `
      select ${t('t.tenant,')} t.id, t.user_id, t.client_id, t.session_id, t.rotating,
             t.created_at, t.idle_expires_at, t.expires_at, t.last_exchanged_at,
             t.metadata, t.raw, t.first_seen_at, t.last_changed_at, t.deleted_at, t.first_seen_run_id, t.last_changed_run_id,
             greatest(s.last_success_at, t.last_changed_at) as last_seen_at,
             auth0.to_inet(d.initial_ip) as initial_ip, d.initial_asn, d.initial_user_agent,
             auth0.to_inet(d.last_ip) as last_ip, d.last_asn, d.last_user_agent,
             (select array_agg(r.audience order by r.audience) from auth0.refresh_token_resource_servers r
               where ${t('r.tenant = t.tenant and')} r.token_id = t.id) as audiences,
             (select array_agg(distinct scope order by scope)
                from auth0.refresh_token_resource_servers r cross join lateral unnest(auth0.to_scopes(r.scopes)) as scope
               where ${t('r.tenant = t.tenant and')} r.token_id = t.id) as scopes
      from auth0.refresh_tokens t
      left join auth0.refresh_token_devices d on ${t('d.tenant = t.tenant and')} d.token_id = t.id
      left join auth0.user_sync_state s on ${t('s.tenant = t.tenant and')} s.user_id = t.user_id
      where ${live('t')}`,
    active_sessions: `
      select ${t('s.tenant,')} s.id, s.user_id, s.created_at, s.updated_at, s.authenticated_at, s.last_interacted_at,
             s.idle_expires_at, s.expires_at,
             s.initial_ip_inet as initial_ip, s.initial_asn, s.initial_user_agent,
             s.last_ip_inet as last_ip, s.last_asn, s.last_user_agent,
             s.client_ids, s.authentication_methods,
             ${methods('s')} as methods,
             ${secondFactor('s')} as has_second_factor,
             s.first_seen_at, s.last_changed_at
      from auth0.sessions s
      where ${live('s')}`,
    recent_token_changes: `
      select ${t('c.tenant,')} c.observed_at, c.change, c.token_id, c.user_id, u.email, t.client_id, t.session_id,
             c.old_value, c.new_value, c.run_id, c.reason, c.reason_log_id, c.reason_client_id
      from auth0.refresh_token_changes c
      left join auth0.refresh_tokens t on ${t('t.tenant = c.tenant and')} t.id = c.token_id
      left join auth0.users u on ${t('u.tenant = c.tenant and')} u.user_id = c.user_id
      where c.observed_at > now() - interval '24 hours' and c.change <> 'exchanged'`,
    refresh_token_deletions: `
      select ${t('c.tenant,')} c.observed_at, c.token_id, c.user_id, u.email, t.client_id, t.session_id,
             c.reason, c.reason_log_id, c.reason_client_id, c.run_id
      from auth0.refresh_token_changes c
      left join auth0.refresh_tokens t on ${t('t.tenant = c.tenant and')} t.id = c.token_id
      left join auth0.users u on ${t('u.tenant = c.tenant and')} u.user_id = c.user_id
      where c.change = 'deleted' and c.observed_at > now() - interval '7 days'`,
    refresh_token_deletions_by_reason: `
      select ${t('c.tenant,')} date_trunc('day', c.observed_at at time zone 'UTC') at time zone 'UTC' as day,
             c.reason, count(*)::integer as deletions, count(distinct c.user_id)::integer as users
      from auth0.refresh_token_changes c
      where c.change = 'deleted' and c.observed_at > now() - interval '30 days'
      group by ${tenant ? '1, 2, 3' : '1, 2'}`,
    refresh_token_scopes: `
      select ${t('a.tenant,')} a.id as token_id, a.user_id, a.client_id, r.audience, auth0.to_scopes(r.scopes) as scopes
      from auth0.active_refresh_tokens a
      join auth0.refresh_token_resource_servers r on ${t('r.tenant = a.tenant and')} r.token_id = a.id`,
    refresh_tokens_expiring_soon: `
      with soon as (
        select ${t('tenant,')} id, user_id, client_id, expires_at, idle_expires_at, least(expires_at, idle_expires_at) as expires_first_at
        from auth0.active_refresh_tokens
      )
      select ${t('tenant,')} id, user_id, client_id, expires_at, idle_expires_at, expires_first_at,
             case when expires_at = expires_first_at then 'absolute' else 'idle' end as reason
      from soon
      where expires_first_at <= now() + interval '7 days'`,
    refresh_tokens_location_changed: `
      with compared as (
        select ${t('tenant,')} id, user_id, client_id, initial_ip, last_ip, initial_asn, last_asn, initial_user_agent, last_user_agent, last_exchanged_at,
               initial_ip is not null and last_ip is not null and last_ip is distinct from initial_ip as ip_changed,
               initial_asn is not null and last_asn is not null and last_asn is distinct from initial_asn as asn_changed
        from auth0.active_refresh_tokens
      )
      select ${t('tenant,')} id, user_id, client_id, initial_ip, last_ip, initial_asn, last_asn, initial_user_agent, last_user_agent,
             last_exchanged_at, ip_changed, asn_changed
      from compared
      where ip_changed or asn_changed`,
    refresh_tokens_with_session: `
      select ${t('t.tenant,')} t.id as token_id, t.user_id, t.client_id, t.session_id,
             t.created_at as token_created_at, t.expires_at as token_expires_at, t.idle_expires_at as token_idle_expires_at,
             t.last_exchanged_at, t.first_seen_at as token_first_seen_at, t.deleted_at as token_deleted_at,
             (${live('t')}) as token_live,
             s.id is not null as session_found,
             s.created_at as session_created_at, s.authenticated_at, s.last_interacted_at,
             s.expires_at as session_expires_at, s.idle_expires_at as session_idle_expires_at, s.deleted_at as session_deleted_at,
             s.id is not null and (${live('s')}) as session_live,
             s.authentication_methods,
             case when s.id is null then null::text[] else ${methods('s')} end as methods,
             case when s.id is null then null::boolean else ${secondFactor('s')} end as has_second_factor,
             s.initial_ip_inet as session_initial_ip, s.last_ip_inet as session_last_ip,
             s.last_asn as session_last_asn, s.last_user_agent as session_last_user_agent,
             u.sessions_synced_at
      from auth0.refresh_tokens t
      left join auth0.sessions s on ${t('s.tenant = t.tenant and')} s.id = t.session_id
      left join auth0.user_sync_state u on ${t('u.tenant = t.tenant and')} u.user_id = t.user_id`,
    refresh_tokens_outliving_session: `
      select ${t('tenant,')} token_id, user_id, client_id, session_id, token_created_at, token_expires_at, token_idle_expires_at, last_exchanged_at,
             case when not session_found then 'session_gone'
                  when session_deleted_at is not null then 'session_deleted'
                  when session_expires_at <= now() then 'session_expired'
                  else 'session_idle_expired' end as why,
             coalesce(session_deleted_at, least(session_expires_at, session_idle_expires_at)) as session_ended_at,
             authenticated_at, methods, has_second_factor, session_last_ip, session_last_user_agent
      from auth0.refresh_tokens_with_session
      where token_live and session_id is not null and not session_live
        and (session_found or sessions_synced_at >= token_first_seen_at)`,
    refresh_tokens_per_client: `
      select ${t('tenant,')} client_id, count(*) as active_tokens, count(distinct user_id) as users,
             round(avg(coalesce(rotating, false)::integer), 3) as rotating_share,
             min(created_at) as oldest_created_at, max(last_exchanged_at) as last_exchanged_at
      from auth0.active_refresh_tokens
      group by ${t('tenant,')} client_id`,
    refresh_tokens_unused: `
      with usage as (
        select ${t('tenant,')} id, user_id, client_id, created_at, last_exchanged_at, coalesce(last_exchanged_at, created_at) as last_used_at
        from auth0.active_refresh_tokens
      )
      select ${t('tenant,')} id, user_id, client_id, created_at, last_exchanged_at, last_used_at, now() - last_used_at as unused_for
      from usage
      where last_used_at < now() - interval '30 days'`,
    refresh_tokens_without_second_factor: `
      select ${t('tenant,')} token_id, user_id, client_id, session_id, token_created_at, token_expires_at, last_exchanged_at,
             session_live, authenticated_at, methods, session_last_ip, session_last_user_agent
      from auth0.refresh_tokens_with_session
      where token_live and session_found and not has_second_factor`,
    sessions_per_client: `
      select ${t('s.tenant,')} c.client_id, count(*) as active_sessions, count(distinct s.user_id) as users,
             count(*) filter (where not s.has_second_factor) as without_second_factor,
             min(s.authenticated_at) as first_authenticated_at, max(s.last_interacted_at) as last_interacted_at
      from auth0.active_sessions s cross join lateral unnest(s.client_ids) c(client_id)
      group by ${t('s.tenant,')} c.client_id`,
    sessions_per_device: `
      select ${t('tenant,')} last_user_agent, last_ip, last_asn, count(*) as active_sessions, count(distinct user_id) as users,
             count(*) filter (where not has_second_factor) as without_second_factor,
             min(authenticated_at) as first_authenticated_at, max(last_interacted_at) as last_interacted_at
      from auth0.active_sessions
      group by ${t('tenant,')} last_user_agent, last_ip, last_asn`,
  };
}

/** `refresh_tokens_as_of`, with the tenant (a column, and a filter: null = every tenant) or without. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function createAsOf(db: Kysely<any>, tenant: boolean): Promise<void> {
  const t = (text: string): string => (tenant ? text : '');
  await sql`
    create function auth0.refresh_tokens_as_of(at timestamptz${sql.raw(t(', tenant_name text default null'))})
    returns table (${sql.raw(t('tenant text,'))} id text, user_id text, client_id text, session_id text, rotating boolean,
                   created_at timestamptz, expires_at timestamptz, idle_expires_at timestamptz,
                   first_seen_at timestamptz, live_since timestamptz, deleted_at timestamptz)
    language sql stable as $$
      select ${sql.raw(t('t.tenant,'))} t.id, t.user_id, t.client_id, t.session_id, t.rotating,
             t.created_at, t.expires_at, t.idle_expires_at, t.first_seen_at,
             coalesce(s.observed_at, t.first_seen_at) as live_since,
             t.deleted_at
      from auth0.refresh_tokens t
      -- The deletion or restoration in force at $1: the latest one observed by then.
      left join lateral (
        select c.change, c.observed_at
        from auth0.refresh_token_changes c
        where ${sql.raw(t('c.tenant = t.tenant and'))} c.token_id = t.id and c.change in ('deleted', 'restored') and c.observed_at <= $1
        order by c.observed_at desc, c.id desc
        limit 1
      ) s on true
      where t.first_seen_at <= $1
        ${sql.raw(t('and ($2 is null or t.tenant = $2)'))}
        -- No deletion or restoration observed by then: the token row's own deleted_at decides.
        and case when s.change is null then t.deleted_at is null or t.deleted_at > $1
                 else s.change = 'restored' end
        and (t.expires_at is null or t.expires_at > $1)
        and (t.idle_expires_at is null or t.idle_expires_at > $1)
    $$`.execute(db);
  const signature = sql.raw(tenant ? 'timestamptz, text' : 'timestamptz');
  await sql`comment on function auth0.refresh_tokens_as_of(${signature}) is ${sql.lit(tenant ? `${AS_OF_COMMENT} ${AS_OF_TENANT}` : AS_OF_COMMENT)}`.execute(db);
}

const AS_OF_COMMENT =
  "The tokens the warehouse believed live at the moment given: first seen by then, not deleted then (the latest deleted/restored change observed by then decides; without one, deleted_at), not past expires_at or idle_expires_at then. Precision: a change is known when the sync that listed the token's user saw it, so times are as observed by the sync, late by up to that user's sync interval; a token created and revoked between two syncs of its user never appears. Other columns are today's values. With SYNC_HISTORY_DAYS, exact for moments inside the retention window; before it, a token deleted and restored before the window may show as live during its deleted spell. live_since: first_seen_at, or the restoration in force.";
const AS_OF_TENANT = "tenant_name: one tenant's tokens (null, the default: every tenant's); each row names its tenant.";
