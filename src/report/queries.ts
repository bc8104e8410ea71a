import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { Database } from '../warehouse/schema.js';

/**
 * What the report shows, read from the reporting views (docs/reporting.md) and the run records.
 * Every number is an aggregate computed by PostgreSQL: a query returns at most a few hundred
 * rows whatever the warehouse holds (top lists are cut in SQL), so the report's memory and
 * time do not grow with the tokens held beyond what the database spends counting them.
 */
export interface ReportData {
  /** When the data was read (the database's now()). */
  readAt: Date;
  /** The tenants asked for (ReportOptions.tenants); undefined: every tenant. */
  tenants: readonly string[] | undefined;
  /** Every number of `headline`, summed over the tenants read. */
  headline: Headline;
  /** The headline per tenant (issue #23), by name: every tenant with a run or a live token. */
  perTenant: TenantHeadline[];
  /** Live tokens per application, largest first; the ones past the top are summed into `rest`. */
  perClient: Ranked;
  /** Live tokens per resource server (audience), largest first. */
  perAudience: Ranked;
  /** Per UTC day of the last 90, oldest first: tokens the change history saw created and deleted. */
  changesPerDay: { day: string; created: number; deleted: number }[];
  /** Histograms of live tokens: bucket index (see BUCKETS in charts.ts) → tokens. */
  ageBuckets: number[];
  expiryBuckets: number[];
  idleExpiryBuckets: number[];
  /** Live tokens by rotating (true/false/unknown) and by whether they carry a session. */
  rotating: { rotating: number; nonRotating: number; unknown: number };
  sessions: { withSession: number; withoutSession: number };
  /** Top networks (ASN) of first and of last use among live tokens. */
  firstAsns: Ranked;
  lastAsns: Ranked;
  /** The most frequent first → last network moves among live tokens whose network changed. */
  asnMoves: { from: string; to: string; tokens: number }[];
  /** Per UTC day of the last 30 with a run, oldest first. */
  runsPerDay: RunDay[];
  /** Per UTC day of the last 30, oldest first: deletions per reason (`unrecorded`: before reasons were). */
  deletionsPerDay: { day: string; reasons: Record<string, number> }[];
  /** Sessions beside tokens; `held` false when the warehouse holds no session (SYNC_SESSIONS off). */
  sessionsHeld: boolean;
  /** Live sessions per application, largest first (at most TOP), with those that saw no second factor. */
  sessionsPerClient: { clientId: string | null; sessions: number; withoutSecondFactor: number }[];
  /** Where the log follower of each tenant stands, by tenant; empty when it never ran. */
  logFollow: { tenant: string; lagSeconds: number | null; updatedAt: Date; lastEntryAt: Date | null }[];
  expiringSoon: { tenant: string; id: string; userId: string; clientId: string | null; expiresFirstAt: Date; reason: string }[];
  unused: { tenant: string; id: string; userId: string; clientId: string | null; lastUsedAt: Date; unusedDays: number }[];
  locationChanged: {
    tenant: string;
    id: string;
    userId: string;
    clientId: string | null;
    initialAsn: string | null;
    lastAsn: string | null;
    initialIp: string | null;
    lastIp: string | null;
    lastUserAgent: string | null;
    lastExchangedAt: Date | null;
  }[];
}

export interface Headline {
  liveTokens: number;
  users: number;
  applications: number;
  expiringSoon: number;
  unused: number;
  locationChanged: number;
  /** Live tokens whose last network (ASN) differs from their first. */
  asnChanged: number;
  /** The latest run that ended `succeeded`; null when none has. */
  lastSuccessAt: Date | null;
  /** Runs recorded at all (an empty warehouse has none). */
  runs: number;
  /** Deletions of the last 24 hours with reason `unexplained` (what the deletion guard watches). */
  unexplained24h: number;
  /** Live sessions (auth0.active_sessions). */
  liveSessions: number;
  /** Live tokens whose session has ended (auth0.refresh_tokens_outliving_session). */
  outlivingSession: number;
  /** Live tokens whose session saw no second factor (auth0.refresh_tokens_without_second_factor). */
  withoutSecondFactor: number;
  /**
   * Seconds since the least recently synced user of auth0.users (not removed) last synced: the
   * staleness `status` reports, the Grafana dashboard's "Freshness lag"; null when none synced.
   */
  freshnessSeconds: number | null;
}

/** The numbers of one tenant that tell it apart from the others (the page's "Tenants" table). */
export type TenantHeadline = { tenant: string } & Pick<
  Headline,
  | 'liveTokens'
  | 'users'
  | 'applications'
  | 'expiringSoon'
  | 'unused'
  | 'locationChanged'
  | 'unexplained24h'
  | 'liveSessions'
  | 'runs'
  | 'lastSuccessAt'
  | 'freshnessSeconds'
>;

/** What to read. */
export interface ReportOptions {
  /** Only these tenants (by name); undefined or empty: every tenant. */
  tenants?: readonly string[];
}

/** A top list: `top` largest first; `rest` sums the others (`restCount` of them). */
export interface Ranked {
  top: { name: string | null; tokens: number }[];
  rest: number;
  restCount: number;
}

export interface RunDay {
  day: string;
  succeeded: number;
  partial: number;
  failed: number;
  interrupted: number;
  running: number;
  /** Median and longest duration of the day's finished runs, in seconds. */
  medianSeconds: number | null;
  maxSeconds: number | null;
  requests: number;
  usersFailed: number;
}

/** How many entries a top list and a risk table keep. */
const TOP = 12;
const RISK_ROWS = 10;

/**
 * Read everything the report shows: some twenty-five aggregate queries, sent together (on a server
 * they run side by side on the pool's connections; the embedded database's one connection takes
 * them in turn). Read-only; a few seconds at 250k live tokens on a busy 2-core machine (bench/report.ts).
 */
export async function readReportData(db: Kysely<Database>, options: ReportOptions = {}): Promise<ReportData> {
  const tenants = options.tenants && options.tenants.length > 0 ? [...new Set(options.tenants)] : undefined;
  /**
   * The tenant filter of every query: `<alias>.tenant` is one of the tenants asked for, or
   * `true` for all. Every view carries `tenant` (docs/reporting.md), so each query filters
   * where it reads and joins on `tenant` beside the ID.
   */
  const scope = (alias?: string) => (tenants ? sql`${sql.ref(alias ? `${alias}.tenant` : 'tenant')} = any(${tenants}::text[])` : sql`true`);
  const nowRows$ = sql<{ now: Date }>`select now() as now`.execute(db).then(rows);

  // Histogram buckets (upper bounds in days; charts.ts names them), counted in the same scan.
  const bucket = (expression: RawBuilder<unknown>) => {
    const days = sql`(extract(epoch from ${expression}) / 86400)`;
    return sql`case when ${days} is null then 7 when ${days} < 1 then 0 when ${days} < 7 then 1 when ${days} < 30 then 2
                    when ${days} < 90 then 3 when ${days} < 180 then 4 when ${days} < 365 then 5 else 6 end`;
  };
  const buckets = (column: string) => sql.join([0, 1, 2, 3, 4, 5, 6, 7].map((i) => sql`count(*) filter (where ${sql.ref(column)} = ${sql.lit(i)})::int`));
  const h$ = sql<{
    age: number[];
    expiry: number[];
    idle: number[];
    live: number;
    rotating: number;
    non_rotating: number;
    rotating_unknown: number;
    without_session: number;
    asn_changed: number;
  }>`
    select count(*)::int as live,
           count(*) filter (where rotating)::int as rotating,
           count(*) filter (where rotating = false)::int as non_rotating,
           count(*) filter (where rotating is null)::int as rotating_unknown,
           count(*) filter (where session_id is null)::int as without_session,
           count(*) filter (where initial_asn is not null and last_asn is not null and last_asn <> initial_asn)::int as asn_changed,
           array[${buckets('age')}] as age, array[${buckets('expiry')}] as expiry, array[${buckets('idle')}] as idle
    from (select rotating, session_id, initial_asn, last_asn, ${bucket(sql`now() - created_at`)} as age, ${bucket(sql`expires_at - now()`)} as expiry,
                 ${bucket(sql`idle_expires_at - now()`)} as idle
          -- offset 0 keeps the subquery whole: flattened, each bucket's case would run once per filter.
          from auth0.active_refresh_tokens where ${scope()} offset 0) t
  `
    .execute(db)
    .then(rows);
  // Per tenant, the headline numbers a tenant can differ in; the totals are their sums. Distinct by
  // hashing (group by), not count(distinct), which sorts: ~40% faster at 250k tokens.
  const perTenant$ = sql<{
    tenant: string;
    live: number;
    users: number;
    applications: number;
    expiring_soon: number;
    unused: number;
    unexplained: number;
    live_sessions: number;
    runs: number;
    last_success_at: Date | null;
    freshness_seconds: number | null;
  }>`
    with runs as (
      select tenant, count(*)::int as runs, max(finished_at) filter (where status = 'succeeded') as last_success_at
      from auth0.sync_runs where ${scope()} group by 1
    ), live as (
      -- Live tokens and the users holding them, in one scan.
      select tenant, sum(n)::int as live, count(*)::int as users
      from (select tenant, user_id, count(*) as n from auth0.active_refresh_tokens where ${scope()} group by 1, 2) u group by 1
    ), applications as (
      select tenant, count(*)::int as applications
      from (select tenant, client_id from auth0.active_refresh_tokens where client_id is not null and ${scope()} group by 1, 2) c group by 1
    ), expiring_soon as (
      select tenant, count(*)::int as n from auth0.refresh_tokens_expiring_soon where ${scope()} group by 1
    ), unused as (
      select tenant, count(*)::int as n from auth0.refresh_tokens_unused where ${scope()} group by 1
    ), unexplained as (
      select tenant, count(*)::int as n from auth0.refresh_token_deletions
      where reason = 'unexplained' and observed_at > now() - interval '24 hours' and ${scope()} group by 1
    ), live_sessions as (
      select tenant, count(*)::int as n from auth0.active_sessions where ${scope()} group by 1
    ), freshness as (
      select u.tenant, extract(epoch from now() - min(s.last_success_at))::float8 as seconds
      from auth0.users u join auth0.user_sync_state s on s.tenant = u.tenant and s.user_id = u.user_id
      where u.removed_at is null and ${scope('u')} group by 1
    )
    select tenant,
           coalesce(live.live, 0) as live, coalesce(live.users, 0) as users, coalesce(applications.applications, 0) as applications,
           coalesce(expiring_soon.n, 0) as expiring_soon, coalesce(unused.n, 0) as unused,
           coalesce(unexplained.n, 0) as unexplained, coalesce(live_sessions.n, 0) as live_sessions,
           coalesce(runs.runs, 0) as runs, runs.last_success_at, freshness.seconds as freshness_seconds
    from runs full join live using (tenant) left join applications using (tenant)
      left join expiring_soon using (tenant) left join unused using (tenant)
      left join unexplained using (tenant) left join live_sessions using (tenant) left join freshness using (tenant)
    order by tenant
  `
    .execute(db)
    .then(rows);
  // Apart from the query above: the view calls auth0.to_inet, which is parallel unsafe (it catches
  // bad addresses in a subtransaction), so inside that query it would keep every part serial.
  const locationChanged$ = sql<{ tenant: string; n: number }>`
    select tenant, count(*)::int as n from auth0.refresh_tokens_location_changed where ${scope()} group by 1
  `
    .execute(db)
    .then(rows);
  // Days with no deletion included; the view holds the last 30 days per UTC day and reason.
  const deletionsPerDay$ = sql<{ day: string; reasons: Record<string, number> }>`
    with days as (
      select generate_series(date_trunc('day', now() at time zone 'utc') - interval '29 days', date_trunc('day', now() at time zone 'utc'), interval '1 day') as day
    )
    select to_char(days.day, 'YYYY-MM-DD') as day,
           coalesce(jsonb_object_agg(coalesce(d.reason, 'unrecorded'), d.deletions) filter (where d.deletions is not null), '{}') as reasons
    from days left join (
      select day, reason, sum(deletions)::int as deletions from auth0.refresh_token_deletions_by_reason where ${scope()} group by 1, 2
    ) d on d.day = days.day at time zone 'utc'
    group by days.day order by days.day
  `
    .execute(db)
    .then(rows);
  const sessions$ = sql<{ held: boolean; live: number; outliving: number; without_second_factor: number }>`
    select (exists (select 1 from auth0.sessions where ${scope()})
            or exists (select 1 from auth0.user_sync_state where sessions_synced_at is not null and ${scope()})) as held,
           (select count(*) from auth0.active_sessions where ${scope()})::int as live,
           (select count(*) from auth0.refresh_tokens_outliving_session where ${scope()})::int as outliving,
           (select count(*) from auth0.refresh_tokens_without_second_factor where ${scope()})::int as without_second_factor
  `
    .execute(db)
    .then(rows);
  const sessionsPerClient$ = sql<{ client_id: string | null; sessions: number; without_second_factor: number }>`
    select client_id, sum(active_sessions)::int as sessions, sum(without_second_factor)::int as without_second_factor
    from auth0.sessions_per_client where ${scope()} group by client_id order by 2 desc, client_id limit ${TOP}
  `
    .execute(db)
    .then(rows);

  const perClient$ = ranked(db, sql`select client_id as name from auth0.active_refresh_tokens where ${scope()}`);
  const perAudience$ = ranked(
    db,
    sql`select r.audience as name from auth0.refresh_token_resource_servers r
        join auth0.active_refresh_tokens t on t.tenant = r.tenant and t.id = r.token_id where ${scope('t')}`,
  );
  const firstAsns$ = ranked(db, sql`select initial_asn as name from auth0.active_refresh_tokens where initial_asn is not null and ${scope()}`);
  const lastAsns$ = ranked(db, sql`select last_asn as name from auth0.active_refresh_tokens where last_asn is not null and ${scope()}`);
  const moves$ = sql<{ from: string; to: string; tokens: number }>`
    select initial_asn as "from", last_asn as "to", count(*)::int as tokens
    from auth0.active_refresh_tokens
    where initial_asn is not null and last_asn is not null and last_asn <> initial_asn and ${scope()}
    group by 1, 2 order by tokens desc, 1, 2 limit ${TOP}
  `
    .execute(db)
    .then(rows);

  // The change history's days, in UTC, including the days nothing changed.
  const changesPerDay$ = sql<{ day: string; created: number; deleted: number }>`
    with days as (
      select generate_series(date_trunc('day', now() at time zone 'utc') - interval '89 days', date_trunc('day', now() at time zone 'utc'), interval '1 day') as day
    ), changes as (
      select date_trunc('day', observed_at at time zone 'utc') as day,
             count(*) filter (where change = 'created')::int as created,
             count(*) filter (where change = 'deleted')::int as deleted
      from auth0.refresh_token_changes
      where change in ('created', 'deleted') and ${scope()} and observed_at >= date_trunc('day', now() at time zone 'utc') at time zone 'utc' - interval '89 days'
      group by 1
    )
    select to_char(days.day, 'YYYY-MM-DD') as day, coalesce(changes.created, 0) as created, coalesce(changes.deleted, 0) as deleted
    from days left join changes using (day) order by days.day
  `
    .execute(db)
    .then(rows);

  const runsPerDay$ = sql<{
    day: string;
    succeeded: number;
    partial: number;
    failed: number;
    interrupted: number;
    running: number;
    median_seconds: number | null;
    max_seconds: number | null;
    requests: number;
    users_failed: number;
  }>`
    -- Every day of the last 30 (UTC), runs or not: a day without a run is what this chart must show.
    with days as (
      select generate_series(date_trunc('day', now() at time zone 'utc') - interval '29 days', date_trunc('day', now() at time zone 'utc'), interval '1 day') as day
    )
    select to_char(days.day, 'YYYY-MM-DD') as day,
           count(r.id) filter (where r.status = 'succeeded')::int as succeeded,
           count(r.id) filter (where r.status = 'partial')::int as partial,
           count(r.id) filter (where r.status = 'failed')::int as failed,
           count(r.id) filter (where r.status = 'interrupted')::int as interrupted,
           count(r.id) filter (where r.status = 'running')::int as running,
           (percentile_cont(0.5) within group (order by extract(epoch from r.finished_at - r.started_at)))::float8 as median_seconds,
           max(extract(epoch from r.finished_at - r.started_at))::float8 as max_seconds,
           coalesce(sum(r.requests), 0)::int as requests,
           coalesce(sum(r.users_failed), 0)::int as users_failed
    from days left join auth0.sync_runs r
      on r.started_at >= days.day at time zone 'utc' and r.started_at < (days.day + interval '1 day') at time zone 'utc' and ${scope('r')}
    group by days.day order by days.day
  `
    .execute(db)
    .then(rows);

  const follow$ = sql<{ tenant: string; lag_seconds: number | null; updated_at: Date; last_entry_date: Date | null }>`
    select tenant, lag_seconds, updated_at, last_entry_date from auth0.log_checkpoint where ${scope()} order by tenant
  `
    .execute(db)
    .then(rows);

  const soon$ = sql<{ tenant: string; id: string; user_id: string; client_id: string | null; expires_first_at: Date; reason: string }>`
    select tenant, id, user_id, client_id, expires_first_at, reason from auth0.refresh_tokens_expiring_soon
    where ${scope()} order by expires_first_at, tenant, id limit ${RISK_ROWS}
  `
    .execute(db)
    .then(rows);
  const idle$ = sql<{ tenant: string; id: string; user_id: string; client_id: string | null; last_used_at: Date; unused_days: number }>`
    select tenant, id, user_id, client_id, last_used_at, floor(extract(epoch from unused_for) / 86400)::int as unused_days
    from auth0.refresh_tokens_unused where ${scope()} order by last_used_at, tenant, id limit ${RISK_ROWS}
  `
    .execute(db)
    .then(rows);
  const moved$ = sql<{
    tenant: string;
    id: string;
    user_id: string;
    client_id: string | null;
    initial_asn: string | null;
    last_asn: string | null;
    initial_ip: string | null;
    last_ip: string | null;
    last_user_agent: string | null;
    last_exchanged_at: Date | null;
  }>`
    select tenant, id, user_id, client_id, initial_asn, last_asn, initial_ip, last_ip, last_user_agent, last_exchanged_at
    from auth0.refresh_tokens_location_changed where ${scope()}
    order by asn_changed desc, last_exchanged_at desc nulls last, tenant, id limit ${RISK_ROWS}
  `
    .execute(db)
    .then(rows);

  // One Promise.all for every query: a rejection is handled wherever it happens (none left unawaited).
  const [
    nowRows,
    h,
    perTenantRows,
    locationChangedRows,
    perClient,
    perAudience,
    firstAsns,
    lastAsns,
    moves,
    changesPerDay,
    runsPerDay,
    follow,
    soon,
    idle,
    moved,
    deletionsPerDay,
    sessions,
    sessionsPerClient,
  ] = await Promise.all([
    nowRows$,
    h$,
    perTenant$,
    locationChanged$,
    perClient$,
    perAudience$,
    firstAsns$,
    lastAsns$,
    moves$,
    changesPerDay$,
    runsPerDay$,
    follow$,
    soon$,
    idle$,
    moved$,
    deletionsPerDay$,
    sessions$,
    sessionsPerClient$,
  ]);
  const session = sessions[0]!;
  const readAt = nowRows[0]!.now;
  const head = h[0]!;
  const perTenant: TenantHeadline[] = perTenantRows.map((r) => ({
    tenant: r.tenant,
    liveTokens: r.live,
    users: r.users,
    applications: r.applications,
    expiringSoon: r.expiring_soon,
    unused: r.unused,
    locationChanged: locationChangedRows.find((l) => l.tenant === r.tenant)?.n ?? 0,
    unexplained24h: r.unexplained,
    liveSessions: r.live_sessions,
    runs: r.runs,
    lastSuccessAt: r.last_success_at,
    freshnessSeconds: r.freshness_seconds,
  }));
  const sum = (pick: (t: TenantHeadline) => number) => perTenant.reduce((total, t) => total + pick(t), 0);
  const latest = perTenant.map((t) => t.lastSuccessAt).reduce<Date | null>((a, b) => (b !== null && (a === null || b > a) ? b : a), null);
  const stalest = perTenant.map((t) => t.freshnessSeconds).reduce<number | null>((a, b) => (b !== null && (a === null || b > a) ? b : a), null);
  return {
    readAt,
    tenants,
    headline: {
      liveTokens: head.live,
      // A user ID or a client ID belongs to one tenant: the per-tenant counts add up.
      users: sum((t) => t.users),
      applications: sum((t) => t.applications),
      expiringSoon: sum((t) => t.expiringSoon),
      unused: sum((t) => t.unused),
      locationChanged: sum((t) => t.locationChanged),
      asnChanged: head.asn_changed,
      lastSuccessAt: latest,
      runs: sum((t) => t.runs),
      unexplained24h: sum((t) => t.unexplained24h),
      liveSessions: session.live,
      outlivingSession: session.outliving,
      withoutSecondFactor: session.without_second_factor,
      // The least recently synced user of any tenant.
      freshnessSeconds: stalest,
    },
    perTenant,
    deletionsPerDay,
    sessionsHeld: session.held,
    sessionsPerClient: sessionsPerClient.map((r) => ({ clientId: r.client_id, sessions: r.sessions, withoutSecondFactor: r.without_second_factor })),
    perClient,
    perAudience,
    changesPerDay,
    ageBuckets: head.age,
    expiryBuckets: head.expiry,
    idleExpiryBuckets: head.idle,
    rotating: { rotating: head.rotating, nonRotating: head.non_rotating, unknown: head.rotating_unknown },
    sessions: { withSession: head.live - head.without_session, withoutSession: head.without_session },
    firstAsns,
    lastAsns,
    asnMoves: moves,
    runsPerDay: runsPerDay.map((r) => ({
      day: r.day,
      succeeded: r.succeeded,
      partial: r.partial,
      failed: r.failed,
      interrupted: r.interrupted,
      running: r.running,
      medianSeconds: r.median_seconds,
      maxSeconds: r.max_seconds,
      requests: r.requests,
      usersFailed: r.users_failed,
    })),
    logFollow: follow.map((r) => ({ tenant: r.tenant, lagSeconds: r.lag_seconds, updatedAt: r.updated_at, lastEntryAt: r.last_entry_date })),
    expiringSoon: soon.map((r) => ({
      tenant: r.tenant,
      id: r.id,
      userId: r.user_id,
      clientId: r.client_id,
      expiresFirstAt: r.expires_first_at,
      reason: r.reason,
    })),
    unused: idle.map((r) => ({ tenant: r.tenant, id: r.id, userId: r.user_id, clientId: r.client_id, lastUsedAt: r.last_used_at, unusedDays: r.unused_days })),
    locationChanged: moved.map((r) => ({
      tenant: r.tenant,
      id: r.id,
      userId: r.user_id,
      clientId: r.client_id,
      initialAsn: r.initial_asn,
      lastAsn: r.last_asn,
      initialIp: r.initial_ip,
      lastIp: r.last_ip,
      lastUserAgent: r.last_user_agent,
      lastExchangedAt: r.last_exchanged_at,
    })),
  };
}

const rows = <R>(result: { rows: R[] }): R[] => result.rows;

/** Count the rows of `source` (one `name` column) per name: the TOP largest, and the rest summed, in one query. */
async function ranked(db: Kysely<Database>, source: RawBuilder<unknown>): Promise<Ranked> {
  const { rows } = await sql<{ name: string | null; tokens: number; rank: number }>`
    with counted as (select name, count(*)::int as tokens from (${source}) s group by name),
         ordered as (select name, tokens, row_number() over (order by tokens desc, name nulls last) as rank from counted)
    select name, tokens, rank::int from ordered where rank <= ${TOP}
    union all
    select null, coalesce(sum(tokens), 0)::int, count(*)::int + ${TOP + 1} from ordered where rank > ${TOP}
    order by rank
  `.execute(db);
  const top = rows.filter((r) => r.rank <= TOP).map((r) => ({ name: r.name, tokens: r.tokens }));
  const rest = rows.find((r) => r.rank > TOP);
  return { top, rest: rest?.tokens ?? 0, restCount: rest ? rest.rank - (TOP + 1) : 0 };
}
