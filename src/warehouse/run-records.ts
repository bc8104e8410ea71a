import os from 'node:os';
import { sql, type Kysely } from 'kysely';
import { toSafeText } from '../core/upstream-text.js';
import type { PlanCounts, SessionWritePlan, UserOutcome } from './model.js';
import type { Database, RunStatus, RunTrigger, SyncRunRow } from './schema.js';

/** Counts a run accumulates; written to sync_runs as progress and at the end. */
export interface RunCounts {
  usersSynced: number;
  usersNotFound: number;
  usersFailed: number;
  tokensSeen: number;
  /** Live tokens the warehouse held for the users listed: the deletion guard's denominator. */
  tokensHeld: number;
  tokensAdded: number;
  /** Changed or restored. */
  tokensChanged: number;
  tokensDeleted: number;
  /** Users recorded gone (404) with no log entry of their deletion, and tokens deleted with no log entry or expiry to explain it (the deletion guard's measures). */
  usersGoneUnexplained: number;
  tokensUnexplained: number;
  /**
   * Sessions (issue #22): listed, live ones held for the users whose sessions were listed (the
   * guard's denominator), first seen, marked deleted, and of those the ones no log
   * entry or expiry explains (measured by the deletion guard as tokens are).
   */
  sessionsSeen: number;
  sessionsHeld: number;
  sessionsAdded: number;
  sessionsDeleted: number;
  sessionsUnexplained: number;
  requests: number;
}

export const emptyCounts = (): RunCounts => ({
  usersSynced: 0,
  usersNotFound: 0,
  usersFailed: 0,
  tokensSeen: 0,
  tokensHeld: 0,
  tokensAdded: 0,
  tokensChanged: 0,
  tokensDeleted: 0,
  usersGoneUnexplained: 0,
  tokensUnexplained: 0,
  sessionsSeen: 0,
  sessionsHeld: 0,
  sessionsAdded: 0,
  sessionsDeleted: 0,
  sessionsUnexplained: 0,
  requests: 0,
});

/** `counts` with one written batch added (its outcomes, its plan's token counts and its session plan's, if any). Pure. */
export function withBatch(
  counts: Readonly<RunCounts>,
  outcomes: readonly UserOutcome[],
  planned: PlanCounts,
  sessions?: Readonly<SessionWritePlan['counts']>,
): RunCounts {
  const next = { ...counts };
  if (sessions) {
    next.sessionsHeld += sessions.held;
    next.sessionsAdded += sessions.added;
    next.sessionsDeleted += sessions.deleted;
    next.sessionsUnexplained += sessions.unexplained;
    for (const outcome of outcomes) if (outcome.status === 'synced') next.sessionsSeen += outcome.sessions?.length ?? 0;
  }
  next.tokensHeld += planned.held;
  next.tokensAdded += planned.added;
  next.tokensChanged += planned.changed + planned.restored;
  next.tokensDeleted += planned.deleted;
  next.usersGoneUnexplained += planned.goneUnexplained;
  next.tokensUnexplained += planned.unexplained;
  for (const outcome of outcomes) {
    if (outcome.status === 'synced') {
      next.usersSynced += 1;
      next.tokensSeen += outcome.records.tokens.length;
    } else if (outcome.status === 'not_found') next.usersNotFound += 1;
    else next.usersFailed += 1;
  }
  return next;
}

/** Insert a `running` sync_runs row of the tenant and return its id. */
export async function startRun(
  db: Kysely<Database>,
  run: { tenant: string; trigger: RunTrigger; args?: Record<string, unknown>; usersTotal?: number; maxDeleteRatio?: number; fullPass?: boolean },
): Promise<number> {
  const { id } = await db
    .insertInto('auth0.sync_runs')
    .values({
      tenant: run.tenant,
      trigger: run.trigger,
      status: 'running',
      args: run.args ? JSON.stringify(run.args) : null,
      host: os.hostname(),
      pid: process.pid,
      users_total: run.usersTotal ?? null,
      max_delete_ratio: run.maxDeleteRatio ?? null,
      full_pass: run.fullPass ?? false,
    })
    .returning('id')
    .executeTakeFirstOrThrow();
  return id;
}

function toColumns(counts: RunCounts) {
  return {
    users_synced: counts.usersSynced,
    users_not_found: counts.usersNotFound,
    users_failed: counts.usersFailed,
    tokens_seen: counts.tokensSeen,
    tokens_held: counts.tokensHeld,
    tokens_added: counts.tokensAdded,
    tokens_changed: counts.tokensChanged,
    tokens_deleted: counts.tokensDeleted,
    users_gone_unexplained: counts.usersGoneUnexplained,
    tokens_unexplained: counts.tokensUnexplained,
    sessions_seen: counts.sessionsSeen,
    sessions_held: counts.sessionsHeld,
    sessions_added: counts.sessionsAdded,
    sessions_deleted: counts.sessionsDeleted,
    sessions_unexplained: counts.sessionsUnexplained,
    requests: counts.requests,
  };
}

/** Progress counts, written only while the run is still `running`. */
export async function recordRunProgress(db: Kysely<Database>, runId: number, counts: RunCounts): Promise<void> {
  await db.updateTable('auth0.sync_runs').set(toColumns(counts)).where('id', '=', runId).where('status', '=', 'running').execute();
}

/**
 * Record the run's outcome, but only over a row still `running`: a final status someone else
 * wrote (the next run marking this one `interrupted` after it lost the run lock) is never
 * undone (issue #13). Returns the status and error the row holds afterwards.
 */
export async function finishRun(
  db: Kysely<Database>,
  runId: number,
  result: {
    status: Exclude<RunStatus, 'running'>;
    counts: RunCounts;
    error?: string;
    /** The route the run listed tokens through, if it listed any. */
    tokensEndpoint?: SyncRunRow['tokens_endpoint'];
    deleteGuardTripped?: boolean;
  },
): Promise<{ status: RunStatus; error: string | null }> {
  const written = await db
    .updateTable('auth0.sync_runs')
    .set({
      ...toColumns(result.counts),
      status: result.status,
      error: result.error === undefined ? null : toSafeText(result.error),
      tokens_endpoint: result.tokensEndpoint ?? null,
      finished_at: new Date(),
      delete_guard_tripped: result.deleteGuardTripped ?? false,
    })
    .where('id', '=', runId)
    .where('status', '=', 'running')
    .returning(['status', 'error'])
    .executeTakeFirst();
  return written ?? (await db.selectFrom('auth0.sync_runs').select(['status', 'error']).where('id', '=', runId).executeTakeFirstOrThrow());
}

/** When a run last succeeded, and the last run that is no longer `running`: of one tenant, or of any when `tenant` is undefined. */
export async function readLastRuns(
  db: Kysely<Database>,
  tenant?: string,
): Promise<{
  lastSuccessAt: Date | undefined;
  lastFinished: (Pick<SyncRunRow, 'id' | 'started_at' | 'finished_at'> & { status: Exclude<RunStatus, 'running'> }) | undefined;
}> {
  const [success, finished] = await Promise.all([
    db
      .selectFrom('auth0.sync_runs')
      .select('finished_at')
      .$if(tenant !== undefined, (qb) => qb.where('tenant', '=', tenant!))
      .where('status', '=', 'succeeded')
      .where('finished_at', 'is not', null)
      .orderBy('finished_at', 'desc')
      .limit(1)
      .executeTakeFirst(),
    db
      .selectFrom('auth0.sync_runs')
      .select(['id', 'status', 'started_at', 'finished_at'])
      .$if(tenant !== undefined, (qb) => qb.where('tenant', '=', tenant!))
      .where('status', '<>', 'running')
      .orderBy('started_at', 'desc')
      .orderBy('id', 'desc')
      .limit(1)
      .executeTakeFirst(),
  ]);
  return {
    lastSuccessAt: success?.finished_at ?? undefined,
    lastFinished: finished && finished.status !== 'running' ? { ...finished, status: finished.status } : undefined,
  };
}

/** How long each finished run of `runIds` took, in seconds (wall clock, start to finish), by id. */
export async function readRunSeconds(db: Kysely<Database>, runIds: readonly number[]): Promise<Map<number, number>> {
  if (runIds.length === 0) return new Map();
  const rows = await db
    .selectFrom('auth0.sync_runs')
    .select(['id', 'started_at', 'finished_at'])
    .where('id', 'in', runIds)
    .where('finished_at', 'is not', null)
    .execute();
  return new Map(rows.map((row) => [row.id, Math.max(0, (row.finished_at!.getTime() - row.started_at.getTime()) / 1000)]));
}

/** The error of the first user that failed in a run (what a partial run's notice quotes). */
export async function readFirstUserError(db: Kysely<Database>, runId: number): Promise<{ error: string; errorCode?: string } | undefined> {
  const row = await db
    .selectFrom('auth0.user_sync_state')
    .select(['error', 'error_code'])
    .where('last_run_id', '=', runId)
    .where('status', '=', 'failed')
    .orderBy('last_attempt_at')
    .limit(1)
    .executeTakeFirst();
  return row?.error ? { error: row.error, errorCode: row.error_code ?? undefined } : undefined;
}

/** How far back the deletion guard adds up the tokens and sessions that runs other than full passes deleted unexplained. */
const TOKEN_WINDOW_MS = 24 * 3600 * 1000;

/**
 * What the tenant's runs since its last full pass that ended (succeeded or partial) deleted with
 * no log entry or expiry to explain it: the users they recorded gone, and the tokens and sessions
 * marked deleted in the last day. The deletion guard's running totals for the runs in between
 * (delete-guard.ts); another tenant's runs never count.
 */
export async function readUnexplainedSinceFullPass(
  db: Kysely<Database>,
  tenant: string,
  now = new Date(),
): Promise<{ gone: number; tokens: number; sessions: number }> {
  const dayAgo = new Date(now.getTime() - TOKEN_WINDOW_MS);
  const lastDay = (column: 'tokens_unexplained' | 'sessions_unexplained') =>
    sql<number>`coalesce(sum(case when started_at > ${dayAgo} then ${sql.ref(column)} else 0 end), 0)`;
  const row = await db
    .selectFrom('auth0.sync_runs')
    .select((eb) => [
      eb.fn.coalesce(eb.fn.sum<number>('users_gone_unexplained'), eb.lit(0)).as('gone'),
      lastDay('tokens_unexplained').as('tokens'),
      lastDay('sessions_unexplained').as('sessions'),
    ])
    .where('tenant', '=', tenant)
    .where((eb) =>
      eb(
        'started_at',
        '>',
        eb.fn.coalesce(
          eb
            .selectFrom('auth0.sync_runs')
            .select((inner) => inner.fn.max('started_at').as('at'))
            .where('tenant', '=', tenant)
            .where('full_pass', '=', true)
            .where('status', 'in', ['succeeded', 'partial']),
          sql<Date>`'-infinity'::timestamptz`,
        ),
      ),
    )
    .executeTakeFirstOrThrow();
  return { gone: Number(row.gone), tokens: Number(row.tokens), sessions: Number(row.sessions) };
}
