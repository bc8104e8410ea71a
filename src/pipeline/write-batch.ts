import type { Kysely } from 'kysely';
import type { Database } from '../warehouse/schema.js';
import { errorCode, isFatal, toError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { isConnectionLost, isDatabaseUnavailable } from '../warehouse/pg-errors.js';
import type { RunLease } from '../warehouse/run-lock.js';
import { withBatch, type RunCounts } from '../warehouse/run-records.js';
import { databaseRefused, databaseUnavailable } from '../warehouse/errors.js';
import { hasCommitted } from '../warehouse/commit-status.js';
import type { PlanCounts, SessionWritePlan, UserOutcome, WritePlan } from '../warehouse/model.js';
import { applyWritePlan, readStoredTokens, refreshStatistics } from '../warehouse/refresh-tokens.js';
import { countLive } from '../warehouse/upsert-sql.js';
import { checkDeleteGuard, type DeleteGuard } from './delete-guard.js';
import type { LogEvidence } from './log-evidence.js';
import { planWrites } from './plan.js';
import { hasSessionListings, listedSessionIds, planSessionWrites, withoutStolenSessions } from './plan-sessions.js';
import { applySessionPlan, readStoredSessions } from '../warehouse/sessions.js';

export interface BatchWriteOptions {
  db: Kysely<Database>;
  /** The tenant the outcomes came from: every row read and written is that tenant's (issue #23). */
  tenant: string;
  /** The run the rows are written for; undefined for a dry run, which writes nothing at all. */
  runId: number | undefined;
  /** Checked in every write transaction of a run holding the lock on a server (issue #13). */
  lease?: RunLease;
  /** Updated as batches are written. */
  counts: RunCounts;
  logger: Logger;
  /**
   * Bounds on what a run may mark deleted (see delete-guard.ts); undefined: no bound (a dry run,
   * or an operator who confirmed a mass deletion).
   */
  deleteGuard?: DeleteGuard;
  /** What the tenant's logs said about the users: explained deletions, removals (planWrites). */
  evidence?: LogEvidence;
  /** Called with the users of each batch once their outcomes are in the warehouse (or their failure is recorded). */
  onWritten?: (userIds: readonly string[]) => void;
}

/** What one batch's transaction planned (and, for a real run, wrote). */
interface Planned {
  plan: WritePlan;
  sessionPlan: SessionWritePlan | undefined;
}

/**
 * Write one batch of outcomes: read what is stored, plan, check the deletion guard, apply, all in
 * one transaction fenced by the lease, and tally the counts. Each user stays all-or-nothing: if a
 * batch fails for a reason other than one that dooms every user (thrown: the database gone or
 * refusing, the guard, a lost lease), its users are written again one by one, and a user that
 * still cannot be written is recorded as failed with its old rows untouched.
 */
export function createBatchWrite(options: BatchWriteOptions): (batch: UserOutcome[]) => Promise<void> {
  const { db, tenant, runId, lease, counts, logger, deleteGuard } = options;
  // Statistics are refreshed whenever the tokens this run added double (from 10,000 on).
  let analyzeAt = 10_000;

  async function write(batch: UserOutcome[]): Promise<void> {
    try {
      const users = batch.filter((o) => o.status !== 'failed').map((o) => o.userId);
      const listedIds = batch.flatMap((o) => (o.status === 'synced' ? o.records.tokens.map((t) => t.id) : []));
      // A dry run reads in a read-only transaction: PostgreSQL itself refuses any write. A real
      // run reads and writes in one transaction that first checks this run still holds the run
      // lease (issue #13): once another run has taken over, not one more row is written. The
      // deletion guard looks at the plan before anything of it is written.
      // The last attempt's transaction and plan: if its COMMIT's acknowledgement is lost, the
      // server says whether it landed, and the counts are those of what was written.
      let attempt: { xid: string; written: Planned } | undefined;
      const { plan, sessionPlan } = await retryLostConnection(
        () =>
          (runId === undefined ? db.transaction().setAccessMode('read only') : db.transaction()).execute(async (trx) => {
            attempt = undefined;
            if (runId !== undefined) await lease?.assertHeld(trx);
            // Sessions (issue #22) only where the batch listed some: with SYNC_SESSIONS off, not one more query.
            const storedSessions = hasSessionListings(batch) ? await readStoredSessions(trx, tenant, users, listedSessionIds(batch)) : undefined;
            // Before planWrites: a user failed for a session it does not own writes no token either.
            const outcomes = storedSessions ? withoutStolenSessions(batch, storedSessions) : batch;
            const now = new Date();
            const plan = planWrites(outcomes, await readStoredTokens(trx, tenant, users, listedIds), { evidence: options.evidence, now });
            // Sessions are planned before the guard looks, and measured by it as tokens are.
            const sessionPlan = storedSessions ? planSessionWrites(plan.outcomes, storedSessions, { evidence: options.evidence, now }) : undefined;
            if (deleteGuard) {
              await measureLive(trx, tenant, deleteGuard, {
                tokens: counts.tokensUnexplained + plan.counts.unexplained,
                sessions: counts.sessionsUnexplained + (sessionPlan?.counts.unexplained ?? 0),
              });
              checkDeleteGuard(deleteGuard, counts, plan, sessionPlan);
            }
            if (runId !== undefined) {
              const xid = await applyWritePlan(trx, tenant, runId, plan, plan.outcomes);
              if (sessionPlan) await applySessionPlan(trx, tenant, runId, sessionPlan);
              attempt = { xid, written: { plan, sessionPlan } };
            }
            return { plan, sessionPlan };
          }),
        async () => (attempt && (await hasCommitted(db, attempt.xid)) ? attempt.written : undefined),
      );
      tally(plan.outcomes, plan.counts, sessionPlan?.counts);
      options.onWritten?.(batch.map((o) => o.userId));
      if (runId !== undefined && counts.tokensAdded >= analyzeAt) {
        analyzeAt = counts.tokensAdded * 2;
        await refreshStatistics(db);
      }
    } catch (error) {
      if (isFatal(error)) throw error;
      if (isDatabaseUnavailable(error)) throw databaseUnavailable(error);
      const refused = databaseRefused(error);
      if (refused) throw refused;
      if (batch.length > 1) {
        for (const outcome of batch) await write([outcome]);
        return;
      }
      const outcome = batch[0]!;
      if (outcome.status === 'failed') {
        // Even the state row cannot be written: say so and go on; the user stays as it was.
        logger.error('user state not written', { userId: outcome.userId, code: errorCode(error), error: toError(error).message });
        counts.usersFailed += 1;
        options.onWritten?.([outcome.userId]);
        return;
      }
      const message = `Writing to the warehouse failed: ${toError(error).message}`;
      logger.warn('user write failed', { userId: outcome.userId, code: errorCode(error), error: message });
      await write([{ status: 'failed', userId: outcome.userId, code: 'write_failed', message }]);
    }
  }

  /**
   * A batch whose connection was cut under it (a proxy recycling connections, an administrator's
   * pg_terminate_backend) is tried again on a fresh one, twice, before the database counts as
   * gone. Safe: the transaction re-reads what is stored, so a commit that did land plans nothing
   * twice. A commit that landed though its acknowledgement was lost (`landed` says so) is not
   * tried again: its own plan is what was written, and what the run counts (issue #18).
   */
  async function retryLostConnection<T>(write: () => Promise<T>, landed: () => Promise<T | undefined>): Promise<T> {
    for (let attempt = 1; ; attempt += 1) {
      try {
        return await write();
      } catch (error) {
        if (!isConnectionLost(error)) throw error;
        const written = await landed().catch(() => undefined);
        if (written !== undefined) {
          logger.warn('database connection lost after a commit that landed; not written again', { error: toError(error).message });
          return written;
        }
        if (attempt >= 3) throw error;
        logger.warn('database connection lost during a write; retrying on a fresh one', { attempt, error: toError(error).message });
        await new Promise((wake) => setTimeout(wake, 50 * attempt));
      }
    }
  }

  /** Add a written batch to the run's counts (in place: the progress reporter reads them). */
  function tally(batch: UserOutcome[], planned: PlanCounts, sessions: SessionWritePlan['counts'] | undefined): void {
    Object.assign(counts, withBatch(counts, batch, planned, sessions));
    for (const outcome of batch) {
      if (outcome.status === 'failed') logger.warn('user failed', { userId: outcome.userId, code: outcome.code, error: outcome.message });
    }
  }

  return write;
}

/**
 * The tenant's live tokens and sessions in the warehouse, each counted into the guard's window the
 * first time there are unexplained deletions of it to measure against them (this run's, given in
 * `unexplained`, or earlier runs'): a follow that deletes nothing unexplained never pays for a
 * count of a large table. Another tenant's rows never dilute the measure.
 */
export async function measureLive(db: Kysely<Database>, tenant: string, guard: DeleteGuard, unexplained: { tokens: number; sessions: number }): Promise<void> {
  const { window } = guard;
  if (!window) return;
  if (window.liveTokens === undefined && window.tokens + unexplained.tokens > 0) window.liveTokens = await countLive(db, tenant, 'auth0.refresh_tokens');
  if (window.liveSessions === undefined && window.sessions + unexplained.sessions > 0) window.liveSessions = await countLive(db, tenant, 'auth0.sessions');
}
