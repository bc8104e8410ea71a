import { sql, type Kysely } from 'kysely';

/**
 * Typed columns for reporting (issue #22). The tables keep what Auth0 sent (text); the reporting
 * views type it:
 * - `auth0.to_inet(text)`: the address as `inet`, null when it does not parse (never an error, so
 *   one odd address never fails a view or a user). plpgsql with an exception block, since
 *   `pg_input_is_valid` needs PostgreSQL 16 and the server may be 15; works on PGlite too.
 *   `parallel restricted`, not safe: a parallel worker cannot start the block's subtransaction
 *   ("cannot start subtransactions during a parallel operation"). About 3 µs per address on
 *   PostgreSQL 15 here (200,000 addresses: 0.57 s, against 0.05 s for a bare cast that fails on
 *   the first bad one); 10 µs for text that looks like an address but is not.
 * - `auth0.to_scopes(text)`: a space-separated scope string as `text[]`, null when empty.
 * - `auth0.active_refresh_tokens.initial_ip` / `last_ip` become `inet` (so
 *   `where last_ip << '10.0.0.0/8'` works), and it gains `audiences` and `scopes` (`text[]`, every
 *   scope over every audience). A view's column cannot change type in place: the view and the
 *   four that read from it are dropped and made again, those four from their own stored
 *   definitions, with every comment put back.
 * - `auth0.refresh_token_scopes`: each live token's audiences, one row each, scopes as `text[]`.
 */

/** The views that read from active_refresh_tokens, in an order that can be created. */
const DEPENDENTS = ['refresh_tokens_per_client', 'refresh_tokens_expiring_soon', 'refresh_tokens_location_changed', 'refresh_tokens_unused'];

const TOKEN_COLUMNS = sql.raw(`t.id, t.user_id, t.client_id, t.session_id, t.rotating,
       t.created_at, t.idle_expires_at, t.expires_at, t.last_exchanged_at,
       t.metadata, t.raw, t.first_seen_at, t.last_changed_at, t.deleted_at, t.first_seen_run_id, t.last_changed_run_id,
       greatest(s.last_success_at, t.last_changed_at) as last_seen_at`);
const FROM = sql.raw(`from auth0.refresh_tokens t
    left join auth0.refresh_token_devices d on d.token_id = t.id
    left join auth0.user_sync_state s on s.user_id = t.user_id
    where t.deleted_at is null
      and (t.expires_at is null or t.expires_at > now())
      and (t.idle_expires_at is null or t.idle_expires_at > now())`);

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    create function auth0.to_inet(address text) returns inet language plpgsql immutable strict parallel restricted as $$
    begin
      -- Only hex digits, dots, colons and a prefix length can be an address: the rest is null
      -- without the cost of the exception block below.
      if address !~ '^[0-9A-Fa-f:.]+(/[0-9]{1,3})?$' then
        return null;
      end if;
      return address::inet;
    exception when invalid_text_representation or invalid_parameter_value then
      return null;
    end
    $$`.execute(db);
  await sql`
    create function auth0.to_scopes(scopes text) returns text[] language sql immutable strict parallel safe as $$
      select case when btrim(scopes) = '' then null else regexp_split_to_array(btrim(scopes), '\\s+') end
    $$`.execute(db);
  await sql`comment on function auth0.to_inet(text) is ${sql.lit(TO_INET_COMMENT)}`.execute(db);
  await sql`comment on function auth0.to_scopes(text) is ${sql.lit(TO_SCOPES_COMMENT)}`.execute(db);

  await rebuildActive(
    db,
    sql`create view auth0.active_refresh_tokens as
    select ${TOKEN_COLUMNS},
           auth0.to_inet(d.initial_ip) as initial_ip, d.initial_asn, d.initial_user_agent,
           auth0.to_inet(d.last_ip) as last_ip, d.last_asn, d.last_user_agent,
           (select array_agg(r.audience order by r.audience) from auth0.refresh_token_resource_servers r where r.token_id = t.id) as audiences,
           (select array_agg(distinct scope order by scope)
              from auth0.refresh_token_resource_servers r cross join lateral unnest(auth0.to_scopes(r.scopes)) as scope
             where r.token_id = t.id) as scopes
    ${FROM}`,
    { ...IP_COMMENTS, audiences: AUDIENCES_COMMENT, scopes: SCOPES_COMMENT },
  );

  await sql`
    create view auth0.refresh_token_scopes as
    select a.id as token_id, a.user_id, a.client_id, r.audience, auth0.to_scopes(r.scopes) as scopes
    from auth0.active_refresh_tokens a
    join auth0.refresh_token_resource_servers r on r.token_id = a.id`.execute(db);
  await sql`comment on view auth0.refresh_token_scopes is ${sql.lit(SCOPES_VIEW_COMMENT)}`.execute(db);
  for (const [column, text] of Object.entries(SCOPES_VIEW_COLUMNS)) {
    await sql`comment on column auth0.refresh_token_scopes.${sql.ref(column)} is ${sql.lit(text)}`.execute(db);
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await sql`drop view auth0.refresh_token_scopes`.execute(db);
  await rebuildActive(
    db,
    sql`create view auth0.active_refresh_tokens as
    select ${TOKEN_COLUMNS},
           d.initial_ip, d.initial_asn, d.initial_user_agent,
           d.last_ip, d.last_asn, d.last_user_agent
    ${FROM}`,
    OLD_IP_COMMENTS,
  );
  await sql`drop function auth0.to_scopes(text)`.execute(db);
  await sql`drop function auth0.to_inet(text)`.execute(db);
}

/**
 * Make active_refresh_tokens again from `create`, and the views that read from it from their
 * stored definitions, keeping every view's and column's comment (`comments` replace or add some
 * of active_refresh_tokens' columns).
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function rebuildActive(db: Kysely<any>, create: ReturnType<typeof sql>, comments: Record<string, string>): Promise<void> {
  const saved = [];
  for (const view of ['active_refresh_tokens', ...DEPENDENTS]) {
    const { rows } = await sql<{ definition: string; comment: string | null }>`
      select pg_get_viewdef(${`auth0.${view}`}::regclass, true) as definition, obj_description(${`auth0.${view}`}::regclass, 'pg_class') as comment`.execute(db);
    const { rows: columns } = await sql<{ name: string; comment: string | null }>`
      select a.attname as name, col_description(a.attrelid, a.attnum) as comment
      from pg_attribute a where a.attrelid = ${`auth0.${view}`}::regclass and a.attnum > 0 and not a.attisdropped`.execute(db);
    saved.push({ view, definition: rows[0]!.definition, comment: rows[0]!.comment, columns });
  }
  for (const view of [...DEPENDENTS].reverse()) await sql`drop view ${sql.table(`auth0.${view}`)}`.execute(db);
  await sql`drop view auth0.active_refresh_tokens`.execute(db);
  await create.execute(db);
  for (const { view, definition } of saved.slice(1)) {
    await sql`create view ${sql.table(`auth0.${view}`)} as ${sql.raw(definition.replace(/;\s*$/, ''))}`.execute(db);
  }
  for (const { view, comment, columns } of saved) {
    if (comment !== null) await sql`comment on view ${sql.table(`auth0.${view}`)} is ${sql.lit(comment)}`.execute(db);
    const texts: Record<string, string | null> = Object.fromEntries(columns.map((c) => [c.name, c.comment]));
    if (view === 'active_refresh_tokens') Object.assign(texts, comments);
    else for (const column of ['initial_ip', 'last_ip']) if (column in texts && column in comments) texts[column] = comments[column]!;
    const { rows: present } = await sql<{ name: string }>`
      select attname as name from pg_attribute where attrelid = ${`auth0.${view}`}::regclass and attnum > 0 and not attisdropped`.execute(db);
    for (const { name } of present) {
      const text = texts[name];
      if (text) await sql`comment on column ${sql.table(`auth0.${view}`)}.${sql.ref(name)} is ${sql.lit(text)}`.execute(db);
    }
  }
}

const TO_INET_COMMENT =
  'The text as inet, or null when it is not an IP address (never an error): how the reporting views type the addresses Auth0 sent, which the tables keep as text.';
const TO_SCOPES_COMMENT = 'A space-separated scope string as text[] (null when empty): how the reporting views type the scopes the tables keep as text.';
const IP_COMMENTS = {
  initial_ip: "IP address the token was issued to, as inet (null when Auth0's text does not parse; the text stays in refresh_token_devices and raw).",
  last_ip:
    "IP address the token was last used from, as of the latest listing, as inet (so last_ip << '10.0.0.0/8' works; null when Auth0's text does not parse).",
};
const OLD_IP_COMMENTS = {
  initial_ip: 'IP address the token was issued to.',
  last_ip: 'IP address the token was last used from, as of the latest listing.',
};
const AUDIENCES_COMMENT = 'APIs (audiences) the token grants access to, sorted (text[]); null when none.';
const SCOPES_COMMENT = "Every scope the token grants over all its audiences, distinct and sorted (text[], so 'offline_access' = any(scopes) works); null when none.";
const SCOPES_VIEW_COMMENT =
  "Each live token's audiences, one row each, with the scopes granted for it as text[] (where scopes @> array['read:admin']). Read from active_refresh_tokens and refresh_token_resource_servers.";
const SCOPES_VIEW_COLUMNS: Record<string, string> = {
  token_id: 'auth0.refresh_tokens.id.',
  user_id: 'Auth0 user id holding the token.',
  client_id: 'Application (client_id) the token was issued to.',
  audience: 'API identifier (audience).',
  scopes: 'Scopes granted for that audience (text[]); null when none.',
};
