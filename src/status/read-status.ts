import { sql, type Kysely } from 'kysely';
import { formatName, type Config } from '../core/config.js';
import type { Database, DeletionReason, RunStatus, RunTrigger, SyncRunRow } from '../warehouse/schema.js';
import { readDeletionsByReason } from '../warehouse/refresh-tokens.js';
import { FatalError, SyncError } from '../core/errors.js';
import { MISSING_OBJECT, sqlState } from '../warehouse/pg-errors.js';
import { readLogCheckpoint } from '../warehouse/log-checkpoint.js';
import type { RunCounts } from '../warehouse/run-records.js';
import { countFailedUsers, countUserIds, ofTenant, type UserSource } from '../source/user-ids.js';
import { readTenants } from '../warehouse/tenants.js';
import { stripControlCharacters, toPrintable } from '../core/upstream-text.js';

/** One sync_runs row, as the status command shows it. */
export interface RunSummary extends RunCounts {
  id: number;
  trigger: RunTrigger;
  status: RunStatus;
  startedAt: Date;
  /** null while the run is `running` (or if a run ended without recording it). */
  finishedAt: Date | null;
  usersTotal: number | null;
  /** First line of the run's error, control characters stripped, truncated to ~100 characters. */
  error: string | null;
  /** The route the run listed tokens through (`refresh-tokens` or `users`); null if none yet. */
  tokensEndpoint: SyncRunRow['tokens_endpoint'];
}

/** A user whose last sync attempt failed. */
export interface FailingUser {
  userId: string;
  errorCode: string | null;
  /** First line of the error, control characters stripped, truncated to ~100 characters. */
  error: string | null;
  lastAttemptAt: Date;
  lastSuccessAt: Date | null;
  lastRunId: number | null;
}

/** How current the warehouse is for the users of the source table. */
export type Staleness =
  | {
      known: true;
      /** `schema.table.column` of the source. */
      source: string;
      /** Distinct non-empty user IDs in the source table. */
      sourceUsers: number;
      /** Source users with no successful sync yet (no user_sync_state.last_success_at). */
      neverSynced: number;
      /** The oldest last_success_at among source users that have one; null when none has. */
      oldestSuccessAt: Date | null;
      /** The user it belongs to. */
      oldestSuccessUserId: string | null;
    }
  | {
      known: false;
      source: string;
      /** Why it could not be measured (e.g. the source table does not exist). */
      reason: string;
    };

/** Where the log follower (`sync --from-logs`) stands; see src/jobs/follow-logs.ts. */
export interface LogFollowerStatus {
  logId: string;
  lastEntryDate: Date | null;
  /**
   * Seconds by which the checkpoint trails the tenant's newest entry (newest_entry_date -
   * last_entry_date); 0 when caught up, even on a quiet tenant; null before it was measured.
   */
  lagSeconds: number | null;
  /** The tenant's newest entry when the follower last looked, and its date. */
  newestLogId: string | null;
  newestEntryDate: Date | null;
  updatedAt: Date;
  entriesRead: number;
  entriesSkipped: number;
  /**
   * When the latest full pass began: a run with `full_pass` (every source user, no budget)
   * that ended `succeeded` or `partial`. A budgeted run is not one.
   */
  lastFullPassAt: Date | null;
  /** Users last synced by a `logs` run started after the last full pass. */
  usersChangedSinceFullPass: number;
  /** History was lost after the last full pass began: run one (only a full pass clears it). */
  fullPassDue: boolean;
  historyLostAt: Date | null;
  /** How it was found (HistoryLostReason in src/warehouse/log-checkpoint.ts), printable. */
  historyLostReason: string | null;
}

/** What `status` shows: one section per tenant (issue #23). */
export interface StatusReport {
  /** When the report was read; formatStatus measures ages and running durations from it. */
  generatedAt: Date;
  /** By name; empty when the warehouse holds no tenant yet (no run, checkpoint or user). */
  tenants: TenantStatus[];
}

/** One tenant's runs, failing users, staleness, log follower and deletions. */
export interface TenantStatus {
  /** The tenant's short name (core/tenant-name.ts). */
  tenant: string;
  /** Most recent runs first. */
  runs: RunSummary[];
  /** Users whose last attempt failed, most recent attempt first (up to `failing`). */
  failingUsers: FailingUser[];
  /** All users whose last attempt failed. */
  failingTotal: number;
  staleness: Staleness;
  /** The most recent run whose status is not `running`; absent when no run has finished. */
  lastFinished?: RunSummary;
  /** Absent until `sync --from-logs` stored a checkpoint. */
  logs?: LogFollowerStatus;
  /** Tokens marked deleted in the last DELETIONS_WINDOW_HOURS, by reason (issue #22). */
  deletions: RecentDeletions;
}

/** Deletions of a recent window by reason; `unexplained` (what the deletion guard watches) apart. */
export interface RecentDeletions {
  hours: number;
  total: number;
  /** Only the reasons that occurred; `unrecorded`: deletions recorded before reasons were. */
  byReason: Partial<Record<DeletionReason | 'unrecorded', number>>;
  unexplained: number;
}

/** The window `status` and the worker's metrics count deletions over. */
export const DELETIONS_WINDOW_HOURS = 24;

/** The tenant's deletions of the DELETIONS_WINDOW_HOURS before `now`, by reason: what `status` and the worker's gauge show. */
export function readRecentDeletions(db: Kysely<Database>, tenant: string, now = new Date()) {
  return readDeletionsByReason(db, new Date(now.getTime() - DELETIONS_WINDOW_HOURS * 3_600_000), tenant);
}

export interface ReadStatusOptions {
  /**
   * Only these tenants, in this order; undefined or empty: every tenant the warehouse holds. A
   * name the warehouse does not hold is an UnknownTenantError, not an empty section.
   */
  tenants?: readonly string[];
  /**
   * The tenants the settings name: shown (with no run yet) even before the warehouse holds a row
   * of theirs, as one tenant was before its first sync.
   */
  configured?: readonly string[];
  /** A tenant's own source table (TENANTS_FILE `usersTable`/`userIdColumn`); others read `source`. */
  sources?: Readonly<Record<string, Config['source']>>;
  /** How many recent runs to list; default 10. */
  runs?: number;
  /** How many failing users to list; default 20. */
  failing?: number;
  /** The report's clock; default: now. */
  now?: Date;
}

const ERROR_WIDTH = 100;

/** A tenant asked for that the warehouse does not hold; the message names those it does. */
export class UnknownTenantError extends SyncError {
  constructor(
    readonly unknown: readonly string[],
    readonly known: readonly string[],
  ) {
    const names = (list: readonly string[]) => list.map((name) => JSON.stringify(toPrintable(name, 40))).join(', ');
    super(
      'unknown_tenant',
      `No tenant ${names(unknown)} in the warehouse; ` +
        (known.length === 0 ? 'it holds none yet (run `npm run sync` first).' : `it holds ${known.length === 1 ? 'tenant' : 'tenants'} ${names(known)}.`),
    );
  }
}

/** Read what `status` shows for each tenant: recent runs, failing users, staleness. Only reads. */
export async function readStatus(db: Kysely<Database>, source: Config['source'], options: ReadStatusOptions = {}): Promise<StatusReport> {
  const generatedAt = options.now ?? new Date();
  const known = [...new Set([...(await readTenants(db)), ...(options.configured ?? [])])].sort();
  const asked = options.tenants && options.tenants.length > 0 ? [...new Set(options.tenants)] : undefined;
  const unknown = asked?.filter((name) => !known.includes(name)) ?? [];
  if (unknown.length > 0) throw new UnknownTenantError(unknown, known);
  const tenants: TenantStatus[] = [];
  // One tenant after the other: a tenant's reads already go side by side on the pool.
  for (const tenant of asked ?? known) {
    tenants.push(await readTenantStatus(db, { tenant, source: options.sources?.[tenant] ?? source }, { ...options, now: generatedAt }));
  }
  return { generatedAt, tenants };
}

async function readTenantStatus(db: Kysely<Database>, users: UserSource, options: ReadStatusOptions): Promise<TenantStatus> {
  const { tenant } = users;
  const generatedAt = options.now ?? new Date();
  const runLimit = Math.max(0, Math.floor(options.runs ?? 10));
  const failingLimit = Math.max(0, Math.floor(options.failing ?? 20));

  const runsQuery = db
    .selectFrom('auth0.sync_runs')
    .select([
      'id',
      'trigger',
      'status',
      'started_at',
      'finished_at',
      'users_total',
      'users_synced',
      'users_not_found',
      'users_failed',
      'tokens_seen',
      'tokens_held',
      'tokens_added',
      'tokens_changed',
      'tokens_deleted',
      'users_gone_unexplained',
      'tokens_unexplained',
      'sessions_seen',
      'sessions_held',
      'sessions_added',
      'sessions_deleted',
      'sessions_unexplained',
      'requests',
      'error',
      'tokens_endpoint',
    ])
    .where('tenant', '=', tenant)
    .orderBy('started_at', 'desc')
    .orderBy('id', 'desc');

  const [runRows, lastFinishedRow, failingRows, failingTotal, staleness, logs, byReason] = await Promise.all([
    runLimit > 0 ? runsQuery.limit(runLimit).execute() : Promise.resolve([]),
    runsQuery.where('status', '<>', 'running').limit(1).executeTakeFirst(),
    failingLimit > 0
      ? db
          .selectFrom('auth0.user_sync_state')
          .select(['user_id', 'error_code', 'error', 'last_attempt_at', 'last_success_at', 'last_run_id'])
          .where('tenant', '=', tenant)
          .where('status', '=', 'failed')
          .orderBy('last_attempt_at', 'desc')
          .orderBy('user_id')
          .limit(failingLimit)
          .execute()
      : Promise.resolve([]),
    countFailedUsers(db, tenant),
    readStaleness(db, users),
    readLogFollower(db, tenant),
    readRecentDeletions(db, tenant, generatedAt),
  ]);

  if (logs?.fullPassDue && logs.historyLostAt) logs.fullPassDue = !(await everyUserSyncedSince(db, users, logs.historyLostAt));

  const report: TenantStatus = {
    tenant,
    runs: runRows.map(toRunSummary),
    failingUsers: failingRows.map((row) => ({
      userId: row.user_id,
      errorCode: row.error_code,
      error: summarizeError(row.error),
      lastAttemptAt: row.last_attempt_at,
      lastSuccessAt: row.last_success_at,
      lastRunId: row.last_run_id,
    })),
    failingTotal,
    staleness,
    deletions: {
      hours: DELETIONS_WINDOW_HOURS,
      total: Object.values(byReason).reduce((a, b) => a + b, 0),
      byReason,
      unexplained: byReason.unexplained ?? 0,
    },
  };
  if (lastFinishedRow) report.lastFinished = toRunSummary(lastFinishedRow);
  if (logs) report.logs = logs;
  return report;
}

/**
 * Tenant log history was lost (`log_checkpoint.history_lost_at`) and nothing has repaired it
 * since: no full pass (`sync_runs.full_pass`, ended succeeded or partial) started after it, and
 * some source user has not been synced since (budgeted passes, stalest first, that reached every
 * user repair it too). The rule `status` reports and the worker acts on (issue #18); cheap enough
 * to read after every follow: a checkpoint row, one aggregate, and an `exists` that stops at the
 * first stale user. Returns when history was lost and how, or undefined when nothing is due.
 */
export async function readFullPassDue(db: Kysely<Database>, users: UserSource): Promise<{ historyLostAt: Date; reason: string | null } | undefined> {
  const checkpoint = await readLogCheckpoint(db, users.tenant);
  const lost = checkpoint?.history_lost_at;
  if (!checkpoint || !lost) return undefined;
  const lastFullPassAt = await readLastFullPassAt(db, users.tenant);
  if (lastFullPassAt !== null && lastFullPassAt >= lost) return undefined;
  if (await everyUserSyncedSince(db, users, lost)) return undefined;
  return { historyLostAt: lost, reason: checkpoint.history_lost_reason };
}

/** When the tenant's latest full pass that ended succeeded or partial started; null before the first. */
function lastFullPass(db: Kysely<Database>, tenant: string) {
  return (
    db
      .selectFrom('auth0.sync_runs')
      .select((eb) => eb.fn.max<Date | null>('started_at').as('at'))
      .where('tenant', '=', tenant)
      // Issue #18: a budgeted run covers a slice of the users, so it cannot make up for lost history.
      .where('full_pass', '=', true)
      .where('status', 'in', ['succeeded', 'partial'])
  );
}

async function readLastFullPassAt(db: Kysely<Database>, tenant: string): Promise<Date | null> {
  return (await lastFullPass(db, tenant).executeTakeFirst())?.at ?? null;
}

/**
 * Budgeted passes reached every source user (not removed) since `at`: there is one, and none
 * lacks a successful sync since. False for an empty or unreadable source: nothing was repaired.
 */
async function everyUserSyncedSince(db: Kysely<Database>, scope: UserSource, at: Date): Promise<boolean> {
  const { tenant, source } = scope;
  const column = sql.id('src', source.column);
  const users = sql`from ${sql.id(...source.table)} as src where ${column} is not null and ${column}::text <> '' and ${ofTenant(scope, 'src')}`;
  try {
    const { rows } = await sql<{ any: boolean; stale: boolean }>`
      select exists (select 1 ${users}) as any,
        exists (
          select 1 ${users}
          and not exists (
            select 1 from auth0.user_sync_state s where s.tenant = ${tenant} and s.user_id = ${column}::text and s.last_success_at >= ${at}
          )
        ) as stale`.execute(db);
    return rows[0]?.any === true && rows[0].stale === false;
  } catch {
    return false;
  }
}

async function readLogFollower(db: Kysely<Database>, tenant: string): Promise<LogFollowerStatus | undefined> {
  const checkpoint = await readLogCheckpoint(db, tenant);
  if (!checkpoint) return undefined;
  const row = await db
    .with('full_pass', () => lastFullPass(db, tenant))
    .selectFrom('full_pass')
    .select((eb) => [
      'full_pass.at',
      eb
        .selectFrom('auth0.user_sync_state as s')
        .innerJoin('auth0.sync_runs as r', (join) => join.onRef('r.tenant', '=', 's.tenant').onRef('r.id', '=', 's.last_run_id'))
        .select(eb.fn.countAll<number>().as('n'))
        .where('s.tenant', '=', tenant)
        .where('r.trigger', '=', 'logs')
        .where('r.started_at', '>', eb.fn.coalesce('full_pass.at', sql<Date>`'-infinity'`))
        .as('changed'),
    ])
    .executeTakeFirstOrThrow();
  const lastFullPassAt = row.at;
  const lost = checkpoint.history_lost_at;
  return {
    logId: toPrintable(checkpoint.log_id, 80),
    lastEntryDate: checkpoint.last_entry_date,
    lagSeconds: checkpoint.lag_seconds,
    newestLogId: checkpoint.newest_log_id === null ? null : toPrintable(checkpoint.newest_log_id, 80),
    newestEntryDate: checkpoint.newest_entry_date,
    updatedAt: checkpoint.updated_at,
    entriesRead: checkpoint.entries_read,
    entriesSkipped: checkpoint.entries_skipped,
    lastFullPassAt,
    usersChangedSinceFullPass: row.changed ?? 0,
    fullPassDue: lost !== null && (lastFullPassAt === null || lastFullPassAt < lost),
    historyLostAt: lost,
    historyLostReason: checkpoint.history_lost_reason === null ? null : toPrintable(checkpoint.history_lost_reason, 80),
  };
}

type RunRow = Pick<
  SyncRunRow,
  | 'id'
  | 'trigger'
  | 'status'
  | 'started_at'
  | 'finished_at'
  | 'users_total'
  | 'users_synced'
  | 'users_not_found'
  | 'users_failed'
  | 'tokens_seen'
  | 'tokens_held'
  | 'tokens_added'
  | 'tokens_changed'
  | 'tokens_deleted'
  | 'users_gone_unexplained'
  | 'tokens_unexplained'
  | 'sessions_seen'
  | 'sessions_held'
  | 'sessions_added'
  | 'sessions_deleted'
  | 'sessions_unexplained'
  | 'requests'
  | 'error'
  | 'tokens_endpoint'
>;

function toRunSummary(row: RunRow): RunSummary {
  return {
    id: row.id,
    trigger: row.trigger,
    status: row.status,
    startedAt: row.started_at,
    finishedAt: row.finished_at,
    usersTotal: row.users_total,
    usersSynced: row.users_synced,
    usersNotFound: row.users_not_found,
    usersFailed: row.users_failed,
    tokensSeen: row.tokens_seen,
    tokensHeld: row.tokens_held,
    tokensAdded: row.tokens_added,
    tokensChanged: row.tokens_changed,
    tokensDeleted: row.tokens_deleted,
    usersGoneUnexplained: row.users_gone_unexplained,
    tokensUnexplained: row.tokens_unexplained,
    sessionsSeen: row.sessions_seen,
    sessionsHeld: row.sessions_held,
    sessionsAdded: row.sessions_added,
    sessionsDeleted: row.sessions_deleted,
    sessionsUnexplained: row.sessions_unexplained,
    requests: row.requests,
    error: summarizeError(row.error),
    tokensEndpoint: row.tokens_endpoint,
  };
}

async function readStaleness(db: Kysely<Database>, users: UserSource): Promise<Staleness> {
  const { tenant, source } = users;
  const name = formatName([...source.table, source.column]);
  try {
    const sourceUsers = await countUserIds(db, users);
    const column = sql.id('src', source.column);
    const { rows } = await sql<{ never_synced: number; oldest_success_at: Date | null; oldest_user_id: string | null }>`
      with source_users as (
        select distinct ${column}::text as user_id
        from ${sql.id(...source.table)} as src
        where ${column} is not null and ${column}::text <> '' and ${ofTenant(users, 'src')}
      )
      select
        (count(*) filter (where s.last_success_at is null))::int as never_synced,
        min(s.last_success_at) as oldest_success_at,
        (array_agg(u.user_id order by s.last_success_at, u.user_id) filter (where s.last_success_at is not null))[1] as oldest_user_id
      from source_users u
      left join auth0.user_sync_state s on s.tenant = ${tenant} and s.user_id = u.user_id
    `.execute(db);
    const row = rows[0];
    return {
      known: true,
      source: name,
      sourceUsers,
      neverSynced: row?.never_synced ?? 0,
      oldestSuccessAt: row?.oldest_success_at ?? null,
      oldestSuccessUserId: row?.oldest_user_id ?? null,
    };
  } catch (error) {
    if (error instanceof FatalError && error.code === 'source_missing') {
      return { known: false, source: name, reason: error.message };
    }
    const code = sqlState(error);
    if (code !== undefined && MISSING_OBJECT.has(code)) {
      return { known: false, source: name, reason: `The source table ${formatName(source.table)} cannot be read (${code}).` };
    }
    throw error;
  }
}

/** First line, terminal escapes and control characters stripped, at most ~100 characters. */
function summarizeError(error: string | null): string | null {
  if (error === null) return null;
  const firstLine = stripControlCharacters(error.trim().split(/\r?\n|\r/, 1)[0] ?? '').trimEnd();
  const chars = Array.from(firstLine);
  const moreLines = /[\r\n]/.test(error.trim());
  if (chars.length > ERROR_WIDTH) return chars.slice(0, ERROR_WIDTH - 1).join('') + '…';
  return moreLines ? `${firstLine} …` : firstLine;
}

/**
 * Exit code for `status`, for alerting: 1 when the most recent finished run (status not
 * `running`) of some tenant failed, else 2 when one was partial, 0 otherwise (including when no
 * run has finished). Over a report, the worst of its tenants: one alert covers them all.
 */
export function statusExitCode(report: StatusReport | TenantStatus): number {
  if ('tenants' in report) {
    const codes = report.tenants.map(statusExitCode);
    return codes.includes(1) ? 1 : codes.includes(2) ? 2 : 0;
  }
  switch (report.lastFinished?.status) {
    case 'failed':
      return 1;
    case 'partial':
      return 2;
    default:
      return 0;
  }
}
