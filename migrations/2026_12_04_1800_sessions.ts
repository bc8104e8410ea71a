import { sql, type Kysely } from 'kysely';

/**
 * Sessions beside tokens (issue #22).
 *
 * - `auth0.sessions`: every Auth0 session of the synced users (`GET /api/v2/users/{id}/sessions`),
 *   kept like tokens: quiet writes, first seen / last changed / deleted, the raw JSON (scrubbed,
 *   capped). IP addresses twice: as Auth0 sent them (text) and typed (`inet`, null when the text
 *   does not parse), so `where last_ip_inet << '10.0.0.0/8'` works and a bad address never fails a user.
 * - `auth0.session_changes`: the history of each session, as refresh_token_changes is for tokens.
 * - `user_sync_state.sessions_synced_at`: when a complete listing of the user's sessions last
 *   succeeded; a token whose session is missing counts as outliving it only after one did.
 * - Reporting views that join tokens to sessions. They read the base tables only (never the
 *   token views), so a later migration may recreate those without touching these.
 *
 * Run references are `on delete set null`: history retention may prune a run a session names.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .withSchema('auth0')
    .createTable('sessions')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('created_at', 'timestamptz')
    .addColumn('updated_at', 'timestamptz')
    .addColumn('authenticated_at', 'timestamptz')
    .addColumn('last_interacted_at', 'timestamptz')
    .addColumn('idle_expires_at', 'timestamptz')
    .addColumn('expires_at', 'timestamptz')
    .addColumn('initial_ip', 'text')
    .addColumn('initial_ip_inet', sql`inet`)
    .addColumn('initial_asn', 'text')
    .addColumn('initial_user_agent', 'text')
    .addColumn('last_ip', 'text')
    .addColumn('last_ip_inet', sql`inet`)
    .addColumn('last_asn', 'text')
    .addColumn('last_user_agent', 'text')
    .addColumn('client_ids', sql`text[]`, (c) => c.notNull().defaultTo(sql`'{}'::text[]`))
    .addColumn('authentication_methods', 'jsonb', (c) => c.notNull().defaultTo(sql`'[]'::jsonb`))
    .addColumn('raw', 'jsonb', (c) => c.notNull())
    .addColumn('first_seen_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('last_changed_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('deleted_at', 'timestamptz')
    .addColumn('first_seen_run_id', 'integer', (c) => c.references('auth0.sync_runs.id').onDelete('set null'))
    .addColumn('last_changed_run_id', 'integer', (c) => c.references('auth0.sync_runs.id').onDelete('set null'))
    .execute();
  await db.schema.withSchema('auth0').createIndex('sessions_user_idx').on('sessions').columns(['user_id']).execute();
  await sql`create index sessions_last_ip_idx on auth0.sessions using gist (last_ip_inet inet_ops) where last_ip_inet is not null`.execute(db);

  await db.schema
    .withSchema('auth0')
    .createTable('session_changes')
    .addColumn('id', 'bigint', (c) => c.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('session_id', 'text', (c) => c.notNull())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('change', 'text', (c) =>
      c
        .notNull()
        .check(
          sql`change in ('created', 'deleted', 'restored', 'interacted', 'authenticated', 'last_ip_changed', 'last_asn_changed', 'last_user_agent_changed', 'clients_changed', 'methods_changed')`,
        ),
    )
    .addColumn('old_value', 'text')
    .addColumn('new_value', 'text')
    .addColumn('run_id', 'integer', (c) => c.references('auth0.sync_runs.id').onDelete('set null'))
    .addColumn('observed_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema.withSchema('auth0').createIndex('session_changes_session_idx').on('session_changes').columns(['session_id', 'observed_at']).execute();
  await sql`create index session_changes_observed_brin on auth0.session_changes using brin (observed_at)`.execute(db);

  await db.schema.withSchema('auth0').alterTable('user_sync_state').addColumn('sessions_synced_at', 'timestamptz').execute();

  await createViews(db);

  await sql`comment on table auth0.sessions is ${sql.lit(SESSIONS_COMMENT)}`.execute(db);
  await sql`comment on table auth0.session_changes is ${sql.lit(CHANGES_COMMENT)}`.execute(db);
  for (const [relation, doc] of Object.entries(VIEW_DOCS)) {
    await sql`comment on view ${sql.table(`auth0.${relation}`)} is ${sql.lit(doc.comment)}`.execute(db);
  }
  for (const [relation, columns] of Object.entries({ ...COLUMN_DOCS, ...viewColumnDocs() })) {
    for (const [column, text] of Object.entries(columns)) {
      await sql`comment on column ${sql.table(`auth0.${relation}`)}.${sql.ref(column)} is ${sql.lit(text)}`.execute(db);
    }
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  for (const view of [...Object.keys(VIEW_DOCS)].reverse()) await db.schema.withSchema('auth0').dropView(view).ifExists().execute();
  await db.schema.withSchema('auth0').alterTable('user_sync_state').dropColumn('sessions_synced_at').execute();
  await db.schema.withSchema('auth0').dropTable('session_changes').execute();
  await db.schema.withSchema('auth0').dropTable('sessions').execute();
}

/** A session is live while not deleted and before both of its expiries (null: no such bound). */
const SESSION_LIVE = (s: string) =>
  sql.raw(`(${s}.deleted_at is null and (${s}.expires_at is null or ${s}.expires_at > now()) and (${s}.idle_expires_at is null or ${s}.idle_expires_at > now()))`);
/** The same rule for a token (as auth0.active_refresh_tokens has it). */
const TOKEN_LIVE = (t: string) =>
  sql.raw(`(${t}.deleted_at is null and (${t}.expires_at is null or ${t}.expires_at > now()) and (${t}.idle_expires_at is null or ${t}.idle_expires_at > now()))`);
/** A method named `mfa` (Auth0: "federated", "passkey", "pwd", "sms", "email", "mfa", "mock" or a URL; `type` is the factor). */
const SECOND_FACTOR = (s: string) =>
  sql.raw(`exists (select 1 from jsonb_array_elements(${s}.authentication_methods) m where m->>'name' = 'mfa')`);
const METHOD_NAMES = (s: string) =>
  sql.raw(`array(select coalesce(m->>'name', '') || coalesce(':' || (m->>'type'), '') from jsonb_array_elements(${s}.authentication_methods) m)`);

// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function createViews(db: Kysely<any>): Promise<void> {
  await sql`
    create view auth0.active_sessions as
    select s.id, s.user_id, s.created_at, s.updated_at, s.authenticated_at, s.last_interacted_at,
           s.idle_expires_at, s.expires_at,
           s.initial_ip_inet as initial_ip, s.initial_asn, s.initial_user_agent,
           s.last_ip_inet as last_ip, s.last_asn, s.last_user_agent,
           s.client_ids, s.authentication_methods,
           ${METHOD_NAMES('s')} as methods,
           ${SECOND_FACTOR('s')} as has_second_factor,
           s.first_seen_at, s.last_changed_at
    from auth0.sessions s
    where ${SESSION_LIVE('s')}
  `.execute(db);

  await sql`
    create view auth0.refresh_tokens_with_session as
    select t.id as token_id, t.user_id, t.client_id, t.session_id,
           t.created_at as token_created_at, t.expires_at as token_expires_at,
           t.idle_expires_at as token_idle_expires_at, t.last_exchanged_at, t.first_seen_at as token_first_seen_at,
           t.deleted_at as token_deleted_at,
           ${TOKEN_LIVE('t')} as token_live,
           s.id is not null as session_found,
           s.created_at as session_created_at, s.authenticated_at, s.last_interacted_at,
           s.expires_at as session_expires_at, s.idle_expires_at as session_idle_expires_at,
           s.deleted_at as session_deleted_at,
           (s.id is not null and ${SESSION_LIVE('s')}) as session_live,
           s.authentication_methods,
           case when s.id is null then null else ${METHOD_NAMES('s')} end as methods,
           case when s.id is null then null else ${SECOND_FACTOR('s')} end as has_second_factor,
           s.initial_ip_inet as session_initial_ip, s.last_ip_inet as session_last_ip,
           s.last_asn as session_last_asn, s.last_user_agent as session_last_user_agent,
           u.sessions_synced_at
    from auth0.refresh_tokens t
    left join auth0.sessions s on s.id = t.session_id
    left join auth0.user_sync_state u on u.user_id = t.user_id
  `.execute(db);

  await sql`
    create view auth0.refresh_tokens_outliving_session as
    select token_id, user_id, client_id, session_id, token_created_at, token_expires_at,
           token_idle_expires_at, last_exchanged_at,
           case when not session_found then 'session_gone'
                when session_deleted_at is not null then 'session_deleted'
                when session_expires_at <= now() then 'session_expired'
                else 'session_idle_expired' end as why,
           coalesce(session_deleted_at,
                    least(session_expires_at, session_idle_expires_at)) as session_ended_at,
           authenticated_at, methods, has_second_factor, session_last_ip, session_last_user_agent
    from auth0.refresh_tokens_with_session
    where token_live and session_id is not null and not session_live
      -- A session never seen is gone only if the user's sessions were listed since the token was.
      and (session_found or sessions_synced_at >= token_first_seen_at)
  `.execute(db);

  await sql`
    create view auth0.refresh_tokens_without_second_factor as
    select token_id, user_id, client_id, session_id, token_created_at, token_expires_at,
           last_exchanged_at, session_live, authenticated_at, methods,
           session_last_ip, session_last_user_agent
    from auth0.refresh_tokens_with_session
    where token_live and session_found and not has_second_factor
  `.execute(db);

  await sql`
    create view auth0.sessions_per_device as
    select last_user_agent, last_ip, last_asn,
           count(*) as active_sessions,
           count(distinct user_id) as users,
           count(*) filter (where not has_second_factor) as without_second_factor,
           min(authenticated_at) as first_authenticated_at,
           max(last_interacted_at) as last_interacted_at
    from auth0.active_sessions
    group by last_user_agent, last_ip, last_asn
  `.execute(db);

  await sql`
    create view auth0.sessions_per_client as
    select c.client_id,
           count(*) as active_sessions,
           count(distinct s.user_id) as users,
           count(*) filter (where not s.has_second_factor) as without_second_factor,
           min(s.authenticated_at) as first_authenticated_at,
           max(s.last_interacted_at) as last_interacted_at
    from auth0.active_sessions s
    cross join lateral unnest(s.client_ids) as c(client_id)
    group by c.client_id
  `.execute(db);
}

const SESSIONS_COMMENT =
  'Auth0 sessions of the synced users (GET /api/v2/users/{user_id}/sessions; SYNC_SESSIONS), one row per session ever seen. ' +
  'Written only when something changed (quiet writes); deleted_at is set when a complete listing of the user no longer holds the session.';
const CHANGES_COMMENT = 'Append-only history of each session: first sighting, deletion, restoration, a new interaction or authentication, a new last IP / ASN / user agent, new clients or methods.';

const RUN = 'auth0.sync_runs.id of the run that';
const COLUMN_DOCS: Record<string, Record<string, string>> = {
  sessions: {
    id: 'Auth0 session id (refresh_tokens.session_id names it).',
    user_id: 'Auth0 user id the session belongs to.',
    created_at: 'When Auth0 created the session.',
    updated_at: 'When Auth0 last updated the session.',
    authenticated_at: 'When the user last authenticated in this session (a step-up moves it).',
    last_interacted_at: 'When the session was last used.',
    idle_expires_at: 'When the session ends if left idle; null when Auth0 gave none.',
    expires_at: 'When the session ends whatever happens; null when Auth0 gave none.',
    initial_ip: 'IP address the session started from, as Auth0 sent it.',
    initial_ip_inet: 'initial_ip as inet; null when it does not parse as an address.',
    initial_asn: 'Autonomous system number the session started from.',
    initial_user_agent: 'User agent the session started with.',
    last_ip: 'IP address the session was last used from, as Auth0 sent it.',
    last_ip_inet: 'last_ip as inet (so `last_ip_inet << \'10.0.0.0/8\'` works); null when it does not parse.',
    last_asn: 'Autonomous system number the session was last used from.',
    last_user_agent: 'User agent the session was last used with.',
    client_ids: 'Applications (client ids) that used the session.',
    authentication_methods: 'How the user authenticated: a JSON array of {name, type, timestamp}. name is pwd, federated, passkey, sms, email, mfa (type: the factor, e.g. otp, webauthn-roaming, push-notification) or mock.',
    raw: 'The session object as Auth0 returned it, strings stripped of control characters and secrets; an object over 16 KiB keeps its dates, device, clients and methods and says truncated.',
    first_seen_at: 'When the sync first saw the session.',
    last_changed_at: 'When the row was last written because something changed.',
    deleted_at: 'When a complete listing of the user no longer held the session; null while Auth0 lists it.',
    first_seen_run_id: `${RUN} first saw the session.`,
    last_changed_run_id: `${RUN} last changed the row.`,
  },
  session_changes: {
    id: 'Row id, in order of insertion.',
    session_id: 'Auth0 session id.',
    user_id: 'Auth0 user id the session belongs to.',
    change: 'created, deleted, restored, interacted (last_interacted_at moved), authenticated (authenticated_at moved), last_ip_changed, last_asn_changed, last_user_agent_changed, clients_changed or methods_changed.',
    old_value: 'Value before the change (a date, an address, a list), when the change has one.',
    new_value: 'Value after the change, when the change has one.',
    run_id: `${RUN} observed the change.`,
    observed_at: 'When the change was observed.',
  },
  user_sync_state: {
    sessions_synced_at: 'When a complete listing of the user\'s sessions last succeeded; null when sessions were never synced for the user (SYNC_SESSIONS).',
  },
};

const TOKEN_SESSION_COLUMNS: Record<string, string> = {
  token_id: 'Refresh token id.',
  user_id: 'Auth0 user id.',
  client_id: 'Application (client id) the token was issued to.',
  session_id: 'Session the token was issued in; null for tokens from before sessions were recorded.',
  token_created_at: 'When the token was issued.',
  token_expires_at: 'When the token expires absolutely.',
  token_idle_expires_at: 'When the token expires if not exchanged.',
  last_exchanged_at: 'When the token was last exchanged.',
  token_first_seen_at: 'When the sync first saw the token.',
  token_deleted_at: 'When the sync found the token gone; null while live in Auth0.',
  token_live: 'The token is live: not deleted, not past either expiry.',
  session_found: 'The warehouse holds the session (live or not).',
  session_created_at: 'When the session was created.',
  authenticated_at: 'When the user last authenticated in the session.',
  last_interacted_at: 'When the session was last used.',
  session_expires_at: 'When the session expires absolutely.',
  session_idle_expires_at: 'When the session expires if left idle.',
  session_deleted_at: 'When the sync found the session gone.',
  session_live: 'The session is live: held, not deleted, not past either expiry.',
  authentication_methods: 'The session\'s authentication methods (JSON array of {name, type, timestamp}).',
  methods: 'The method names, with the factor after a colon for mfa (pwd, mfa:otp, passkey, ...).',
  has_second_factor: 'A method named mfa is among them; null when the session is not held.',
  session_initial_ip: 'IP address the session started from (inet; null when unparseable).',
  session_last_ip: 'IP address the session was last used from (inet; null when unparseable).',
  session_last_asn: 'Network the session was last used from.',
  session_last_user_agent: 'User agent the session was last used with.',
  sessions_synced_at: 'When a complete listing of the user\'s sessions last succeeded; null: never.',
  why: 'session_gone (never seen, though a complete listing of the user\'s sessions came after the token was first seen), session_deleted, session_expired or session_idle_expired.',
  session_ended_at: 'When the session ended: its deletion as observed, else the earlier of its expiries; null when never seen.',
};

const SESSION_VIEW_COLUMNS: Record<string, string> = {
  id: 'Auth0 session id.',
  user_id: 'Auth0 user id.',
  created_at: 'When the session was created.',
  updated_at: 'When Auth0 last updated the session.',
  authenticated_at: 'When the user last authenticated in the session.',
  last_interacted_at: 'When the session was last used.',
  idle_expires_at: 'When the session ends if left idle.',
  expires_at: 'When the session ends whatever happens.',
  initial_ip: 'IP address the session started from (inet; null when unparseable).',
  initial_asn: 'Network the session started from.',
  initial_user_agent: 'User agent the session started with.',
  last_ip: 'IP address the session was last used from (inet; null when unparseable).',
  last_asn: 'Network the session was last used from.',
  last_user_agent: 'User agent the session was last used with.',
  client_ids: 'Applications (client ids) that used the session.',
  authentication_methods: 'JSON array of {name, type, timestamp}.',
  methods: 'The method names, with the factor after a colon for mfa (pwd, mfa:otp, passkey, ...).',
  has_second_factor: 'A method named mfa is among them.',
  first_seen_at: 'When the sync first saw the session.',
  last_changed_at: 'When the row was last written because something changed.',
  active_sessions: 'Live sessions in the group.',
  users: 'Distinct users holding them.',
  without_second_factor: 'Of those sessions, the ones with no mfa method.',
  first_authenticated_at: 'Earliest authentication among them.',
};

const VIEW_DOCS: Record<string, { comment: string; columns: string[] }> = {
  active_sessions: {
    comment: 'Sessions that are live now: not deleted, not past expires_at or idle_expires_at. IPs typed as inet; has_second_factor when a method is named mfa.',
    columns: [
      'id', 'user_id', 'created_at', 'updated_at', 'authenticated_at', 'last_interacted_at', 'idle_expires_at', 'expires_at', 'initial_ip', 'initial_asn',
      'initial_user_agent', 'last_ip', 'last_asn', 'last_user_agent', 'client_ids', 'authentication_methods', 'methods', 'has_second_factor', 'first_seen_at', 'last_changed_at',
    ],
  },
  refresh_tokens_with_session: {
    comment: 'Every stored token (live or not) with its session, where the warehouse holds it (session_found), and the user\'s sessions_synced_at.',
    columns: Object.keys(TOKEN_SESSION_COLUMNS).filter((c) => c !== 'why' && c !== 'session_ended_at'),
  },
  refresh_tokens_outliving_session: {
    comment:
      'Live tokens whose session has ended: deleted, expired, or gone (never held though the user\'s sessions were listed completely). ' +
      'Tokens outliving their session are what an incident review looks for: revoke them.',
    columns: [
      'token_id', 'user_id', 'client_id', 'session_id', 'token_created_at', 'token_expires_at', 'token_idle_expires_at', 'last_exchanged_at', 'why', 'session_ended_at',
      'authenticated_at', 'methods', 'has_second_factor', 'session_last_ip', 'session_last_user_agent',
    ],
  },
  refresh_tokens_without_second_factor: {
    comment: 'Live tokens whose session (held by the warehouse, live or not) saw no second factor: no authentication method named mfa. A passkey alone is not counted as one.',
    columns: [
      'token_id', 'user_id', 'client_id', 'session_id', 'token_created_at', 'token_expires_at', 'last_exchanged_at', 'session_live', 'authenticated_at', 'methods',
      'session_last_ip', 'session_last_user_agent',
    ],
  },
  sessions_per_device: {
    comment: 'Live sessions per device: last user agent, last IP (inet) and last ASN, with distinct users and how many saw no second factor.',
    columns: ['last_user_agent', 'last_ip', 'last_asn', 'active_sessions', 'users', 'without_second_factor', 'first_authenticated_at', 'last_interacted_at'],
  },
  sessions_per_client: {
    comment: 'Live sessions per application (each client id a session names), with distinct users and how many saw no second factor.',
    columns: ['client_id', 'active_sessions', 'users', 'without_second_factor', 'first_authenticated_at', 'last_interacted_at'],
  },
};

function viewColumnDocs(): Record<string, Record<string, string>> {
  const docs: Record<string, Record<string, string>> = {};
  for (const [view, { columns }] of Object.entries(VIEW_DOCS)) {
    const source = view.startsWith('refresh_tokens') ? TOKEN_SESSION_COLUMNS : SESSION_VIEW_COLUMNS;
    docs[view] = Object.fromEntries(
      columns.map((column) => [column, (view === 'sessions_per_client' && column === 'client_id' ? 'Application (client id).' : source[column]) ?? `${column}.`]),
    );
  }
  return docs;
}
