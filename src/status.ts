import { sql, type Kysely } from 'kysely';
import { formatName, type Config } from './config.js';
import type { Database, RunStatus, RunTrigger, SyncRunRow } from './database.js';
import { formatDuration } from './duration.js';
import { FatalError } from './errors.js';
import { MISSING_OBJECT, sqlState } from './pg-errors.js';
import type { RunCounts } from './run-records.js';
import { countUserIds, notRemoved } from './source/user-ids.js';
import { capText, stripControlCharacters } from './upstream-text.js';

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

/** Where the log follower (`sync --from-logs`) stands; see src/sync/follow-logs.ts. */
export interface LogFollowerStatus {
  logId: string;
  lastEntryDate: Date | null;
  /** Seconds between the last entry's date and when it was read. */
  lagSeconds: number | null;
  updatedAt: Date;
  entriesRead: number;
  entriesSkipped: number;
  /**
   * A full pass: the latest `manual` or `schedule` run over the source table that ended
   * `succeeded` or `partial` (a budgeted one counts too).
   */
  lastFullPassAt: Date | null;
  /** Users last synced by a `logs` run started after the last full pass. */
  usersChangedSinceFullPass: number;
  /** The checkpoint expired (history lost) after the last full pass began: run one. */
  fullPassDue: boolean;
  historyLostAt: Date | null;
}

export interface StatusReport {
  /** When the report was read; formatStatus measures ages and running durations from it. */
  generatedAt: Date;
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
}

export interface ReadStatusOptions {
  /** How many recent runs to list; default 10. */
  runs?: number;
  /** How many failing users to list; default 20. */
  failing?: number;
  /** The report's clock; default: now. */
  now?: Date;
}

const ERROR_WIDTH = 100;

/** Read what `status` shows: recent runs, failing users and staleness. Only reads. */
export async function readStatus(
  db: Kysely<Database>,
  source: Config['source'],
  options: ReadStatusOptions = {},
): Promise<StatusReport> {
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
      'requests',
      'error',
      'tokens_endpoint',
    ])
    .orderBy('started_at', 'desc')
    .orderBy('id', 'desc');

  const [runRows, lastFinishedRow, failingRows, failingCount, staleness, logs] = await Promise.all([
    runLimit > 0 ? runsQuery.limit(runLimit).execute() : Promise.resolve([]),
    runsQuery.where('status', '<>', 'running').limit(1).executeTakeFirst(),
    failingLimit > 0
      ? db
          .selectFrom('auth0.user_sync_state')
          .select(['user_id', 'error_code', 'error', 'last_attempt_at', 'last_success_at', 'last_run_id'])
          .where('status', '=', 'failed')
          .orderBy('last_attempt_at', 'desc')
          .orderBy('user_id')
          .limit(failingLimit)
          .execute()
      : Promise.resolve([]),
    db
      .selectFrom('auth0.user_sync_state')
      .select(sql<number>`count(*)::int`.as('n'))
      .where('status', '=', 'failed')
      .executeTakeFirstOrThrow(),
    readStaleness(db, source),
    readLogFollower(db),
  ]);

  const report: StatusReport = {
    generatedAt,
    runs: runRows.map(toRunSummary),
    failingUsers: failingRows.map((row) => ({
      userId: row.user_id,
      errorCode: row.error_code,
      error: summarizeError(row.error),
      lastAttemptAt: row.last_attempt_at,
      lastSuccessAt: row.last_success_at,
      lastRunId: row.last_run_id,
    })),
    failingTotal: failingCount.n,
    staleness,
  };
  if (lastFinishedRow) report.lastFinished = toRunSummary(lastFinishedRow);
  if (logs) report.logs = logs;
  return report;
}

async function readLogFollower(db: Kysely<Database>): Promise<LogFollowerStatus | undefined> {
  // Before migration 1500 there is no table: no follower to show.
  const checkpoint = await db
    .selectFrom('auth0.log_checkpoint')
    .selectAll()
    .executeTakeFirst()
    .catch((error: unknown) => {
      if (sqlState(error) === '42P01') return undefined;
      throw error;
    });
  if (!checkpoint) return undefined;
  const { rows } = await sql<{ last_full_pass_at: Date | null; changed: number }>`
    with full_pass as (
      select max(started_at) as at from auth0.sync_runs
      where "trigger" in ('manual', 'schedule') and status in ('succeeded', 'partial')
    )
    select (select at from full_pass) as last_full_pass_at,
      (select count(*)::int from auth0.user_sync_state s join auth0.sync_runs r on r.id = s.last_run_id
       where r."trigger" = 'logs' and r.started_at > coalesce((select at from full_pass), '-infinity')) as changed
  `.execute(db);
  const lastFullPassAt = rows[0]?.last_full_pass_at ?? null;
  const lost = checkpoint.history_lost_at;
  return {
    logId: checkpoint.log_id,
    lastEntryDate: checkpoint.last_entry_date,
    lagSeconds: checkpoint.lag_seconds,
    updatedAt: checkpoint.updated_at,
    entriesRead: Number(checkpoint.entries_read),
    entriesSkipped: Number(checkpoint.entries_skipped),
    lastFullPassAt,
    usersChangedSinceFullPass: rows[0]?.changed ?? 0,
    fullPassDue: lost !== null && (lastFullPassAt === null || lastFullPassAt < lost),
    historyLostAt: lost,
  };
}

type RunRow = {
  id: number;
  trigger: RunTrigger;
  status: RunStatus;
  started_at: Date;
  finished_at: Date | null;
  users_total: number | null;
  users_synced: number;
  users_not_found: number;
  users_failed: number;
  tokens_seen: number;
  tokens_held: number;
  tokens_added: number;
  tokens_changed: number;
  tokens_deleted: number;
  requests: number;
  error: string | null;
  tokens_endpoint: SyncRunRow['tokens_endpoint'];
};

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
    requests: row.requests,
    error: summarizeError(row.error),
    tokensEndpoint: row.tokens_endpoint,
  };
}


async function readStaleness(db: Kysely<Database>, source: Config['source']): Promise<Staleness> {
  const name = formatName([...source.table, source.column]);
  try {
    const sourceUsers = await countUserIds(db, source);
    const column = sql.id('src', source.column);
    const { rows } = await sql<{ never_synced: number; oldest_success_at: Date | null; oldest_user_id: string | null }>`
      with source_users as (
        select distinct ${column}::text as user_id
        from ${sql.id(...source.table)} as src
        where ${column} is not null and ${column}::text <> '' and ${notRemoved(source, 'src')}
      )
      select
        (count(*) filter (where s.last_success_at is null))::int as never_synced,
        min(s.last_success_at) as oldest_success_at,
        (array_agg(u.user_id order by s.last_success_at, u.user_id) filter (where s.last_success_at is not null))[1] as oldest_user_id
      from source_users u
      left join auth0.user_sync_state s on s.user_id = u.user_id
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

// ---------------------------------------------------------------------------------------------
// Formatting

/**
 * Stored text shown on a terminal: user IDs and errors can come from a source table or an
 * upstream answer, so control characters (terminal escapes, line breaks, bidi overrides) are
 * stripped and long values cut.
 */
function printable(text: string, max = 100): string {
  return capText(stripControlCharacters(text), max);
}

/** Elapsed time for people; clock skew (a negative span) reads as 0. */
function formatSpan(ms: number): string {
  return formatDuration(Number.isFinite(ms) ? Math.max(0, ms) : 0);
}

/** `2026-11-26 09:05:03`, always UTC so the output does not depend on the machine's zone. */
function formatTime(date: Date): string {
  return date.toISOString().slice(0, 19).replace('T', ' ');
}

/** Columns padded to their widest cell, two spaces apart; trailing spaces trimmed. */
function table(header: string[], rows: string[][], rightAligned: ReadonlySet<number> = new Set()): string[] {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((row) => Array.from(row[i] ?? '').length)));
  const pad = (cell: string, i: number) => {
    const fill = ' '.repeat(Math.max(0, (widths[i] ?? 0) - Array.from(cell).length));
    return rightAligned.has(i) ? fill + cell : cell + fill;
  };
  return all.map((row) => '  ' + row.map((cell, i) => pad(cell, i)).join('  ').trimEnd());
}

function runDuration(run: RunSummary, now: Date): string {
  if (run.finishedAt) return formatSpan(run.finishedAt.getTime() - run.startedAt.getTime());
  if (run.status === 'running') return `running for ${formatSpan(now.getTime() - run.startedAt.getTime())}`;
  return '-';
}

/** The lines `status` prints: plain aligned text, no colors. Pure. */
export function formatStatus(report: StatusReport, now: Date = report.generatedAt): string[] {
  const lines: string[] = [`Sync status at ${formatTime(now)} UTC`];

  const last = report.lastFinished;
  lines.push(
    last
      ? `Last finished run: #${last.id} ${last.status}` +
          (last.finishedAt ? `, ${formatSpan(now.getTime() - last.finishedAt.getTime())} ago` : '') +
          ` (status exit code ${statusExitCode(report)})`
      : 'Last finished run: none yet',
  );

  lines.push('');
  if (report.runs.length === 0) {
    lines.push('Recent runs: none yet');
  } else {
    lines.push(`Recent runs (newest first, times UTC): ${report.runs.length}`);
    const rows = report.runs.map((run) => [
      String(run.id),
      run.trigger,
      run.status,
      formatTime(run.startedAt),
      runDuration(run, now),
      `${run.usersSynced}/${run.usersNotFound}/${run.usersFailed} of ${run.usersTotal ?? '?'}`,
      `${run.tokensSeen}/${run.tokensAdded}/${run.tokensChanged}/${run.tokensDeleted}`,
      String(run.requests),
      run.tokensEndpoint ?? '-',
      printable(run.error ?? ''),
    ]);
    lines.push(
      ...table(
        [
          'id',
          'trigger',
          'status',
          'started',
          'duration',
          'users synced/not found/failed of total',
          'tokens seen/added/changed/deleted',
          'requests',
          'endpoint',
          'error',
        ],
        rows,
        new Set([0, 7]),
      ),
    );
  }

  lines.push('');
  if (report.failingTotal === 0) {
    lines.push('Failing users: none');
  } else {
    const shown = report.failingUsers.length;
    lines.push(
      `Failing users: ${report.failingTotal}` +
        (shown < report.failingTotal ? ` (showing the ${shown} most recent)` : '') +
        ', most recent attempt first',
    );
    if (shown > 0) {
      const rows = report.failingUsers.map((user) => [
        printable(user.userId, 80),
        printable(user.errorCode ?? '-', 40),
        formatTime(user.lastAttemptAt),
        user.lastSuccessAt ? formatTime(user.lastSuccessAt) : 'never',
        printable(user.error ?? ''),
      ]);
      lines.push(...table(['user', 'error code', 'last attempt', 'last success', 'error'], rows));
    }
  }

  lines.push('');
  const staleness = report.staleness;
  if (!staleness.known) {
    lines.push(`Staleness (source ${printable(staleness.source, 200)}): unknown`);
    lines.push(`  ${printable(staleness.reason, 300)}`);
  } else {
    lines.push(`Staleness (source ${printable(staleness.source, 200)})`);
    const oldest = staleness.oldestSuccessAt
      ? `${formatTime(staleness.oldestSuccessAt)} UTC, ${formatSpan(now.getTime() - staleness.oldestSuccessAt.getTime())} ago` +
        (staleness.oldestSuccessUserId ? ` (${printable(staleness.oldestSuccessUserId, 80)})` : '')
      : 'none yet';
    const rows = [
      ['source users:', String(staleness.sourceUsers)],
      ['never synced:', String(staleness.neverSynced)],
      ['oldest last success:', oldest],
    ];
    lines.push(...rows.map(([label, value]) => `  ${(label ?? '').padEnd(21)}${value}`));
  }
  if (report.logs) lines.push('', ...formatLogFollower(report.logs, now));
  return lines;
}

function formatLogFollower(logs: LogFollowerStatus, now: Date): string[] {
  const lines = [
    `Log follower: checkpoint ${logs.logId}, read ${formatSpan(now.getTime() - logs.updatedAt.getTime())} ago` +
      (logs.lastEntryDate
        ? `; last entry ${formatTime(logs.lastEntryDate)} UTC, lag ${logs.lagSeconds === null ? '-' : formatSpan(logs.lagSeconds * 1000)}`
        : '; no entry read yet'),
    `  entries read/skipped: ${logs.entriesRead}/${logs.entriesSkipped}`,
    `  users changed since the last full pass: ${logs.usersChangedSinceFullPass}` +
      (logs.lastFullPassAt ? ` (full pass started ${formatTime(logs.lastFullPassAt)} UTC)` : ' (no full pass yet)'),
  ];
  if (logs.fullPassDue && logs.historyLostAt) {
    lines.push(`  full pass due: log history was lost at ${formatTime(logs.historyLostAt)} UTC (checkpoint past retention); run npm run sync`);
  }
  return lines;
}

/**
 * Exit code for `status`, for alerting: 1 when the most recent finished run (status not
 * `running`) failed, 2 when it was partial, 0 otherwise (including when no run has finished).
 */
export function statusExitCode(report: StatusReport): number {
  switch (report.lastFinished?.status) {
    case 'failed':
      return 1;
    case 'partial':
      return 2;
    default:
      return 0;
  }
}
