import type { Kysely } from 'kysely';
import type { Database } from '../database.js';
import { errorCode, toError } from '../errors.js';
import type { Logger } from '../log.js';
import type { RunCounts } from '../runs.js';
import { databaseUnavailable, isDatabaseUnavailable } from '../warehouse/errors.js';
import { applyWritePlan, readStoredTokens, refreshStatistics } from '../warehouse/refresh-tokens.js';
import type { UserOutcome } from './outcome.js';
import { planWrites, type PlanCounts } from './plan.js';

export interface BatchWriter {
  /** Queue one user's outcome; resolves once the queue has room again (backpressure). */
  push(outcome: UserOutcome): Promise<void>;
  /** Write everything queued. Rejects with a FatalError if the database went away. */
  close(): Promise<void>;
}

export interface BatchWriterOptions {
  db: Kysely<Database>;
  /** The run the rows are written for; undefined for a dry run, which writes nothing at all. */
  runId: number | undefined;
  counts: RunCounts;
  logger: Logger;
  /** Users and rows per write statement. */
  maxBatchUsers?: number;
  maxBatchRows?: number;
  /** Called once when the database is gone: the run must stop. */
  onFatal: (error: Error) => void;
}

/**
 * Group commit: outcomes queue up while a batch is being written and go together in the
 * next one, so the writer keeps pace with many fetchers on one connection. Each user stays
 * all-or-nothing: if a batch fails for a reason other than the database being gone, its
 * users are written again one by one, and a user that still cannot be written is recorded
 * as failed with its old rows untouched.
 */
export function createBatchWriter(options: BatchWriterOptions): BatchWriter {
  const { db, runId, counts, logger } = options;
  const maxBatchUsers = options.maxBatchUsers ?? 500;
  const maxBatchRows = options.maxBatchRows ?? 10_000;
  let queue: UserOutcome[] = [];
  let queuedRows = 0;
  let flushing: Promise<void> | undefined;
  let fatal: Error | undefined;
  let waiters: (() => void)[] = [];
  const isFull = () => queue.length >= 2 * maxBatchUsers || queuedRows >= 2 * maxBatchRows;
  const release = () => {
    if (isFull() && !fatal) return;
    for (const wake of waiters) wake();
    waiters = [];
  };

  // Statistics are refreshed whenever the tokens this run added double (from 10,000 on).
  let analyzeAt = 10_000;

  const rowsOf = (o: UserOutcome) => 1 + (o.status === 'synced' ? o.records.tokens.length : 0);

  function takeBatch(): UserOutcome[] {
    let rows = 0;
    let size = 0;
    while (size < queue.length && size < maxBatchUsers && (size === 0 || rows + rowsOf(queue[size]!) <= maxBatchRows)) {
      rows += rowsOf(queue[size]!);
      size += 1;
    }
    const batch = queue.slice(0, size);
    queue = queue.slice(size);
    queuedRows -= rows;
    return batch;
  }

  async function write(batch: UserOutcome[]): Promise<void> {
    try {
      // No explicit transaction: the write is one statement, atomic by itself, and the run
      // lock means no one else changes these users between the read and the write.
      const users = batch.filter((o) => o.status !== 'failed').map((o) => o.userId);
      // A dry run reads in a read-only transaction: PostgreSQL itself refuses any write.
      const stored =
        runId === undefined
          ? await db.transaction().setAccessMode('read only').execute((trx) => readStoredTokens(trx, users))
          : await readStoredTokens(db, users);
      const plan = planWrites(batch, stored);
      if (runId !== undefined) await applyWritePlan(db, runId, plan, batch);
      tally(batch, plan.counts);
      if (runId !== undefined && counts.tokensAdded >= analyzeAt) {
        analyzeAt = counts.tokensAdded * 2;
        await refreshStatistics(db);
      }
    } catch (error) {
      if (isDatabaseUnavailable(error)) throw databaseUnavailable(error);
      if (batch.length > 1) {
        for (const outcome of batch) await write([outcome]);
        return;
      }
      const outcome = batch[0]!;
      if (outcome.status === 'failed') {
        // Even the state row cannot be written: say so and go on; the user stays as it was.
        logger.error('user state not written', { userId: outcome.userId, code: errorCode(error), error: toError(error).message });
        counts.usersFailed += 1;
        return;
      }
      const message = `Writing to the warehouse failed: ${toError(error).message}`;
      logger.warn('user write failed', { userId: outcome.userId, code: errorCode(error), error: message });
      await write([{ status: 'failed', userId: outcome.userId, code: 'write_failed', message }]);
    }
  }

  function tally(batch: UserOutcome[], planned: PlanCounts): void {
    counts.tokensAdded += planned.added;
    counts.tokensChanged += planned.changed + planned.restored;
    counts.tokensDeleted += planned.deleted;
    for (const outcome of batch) {
      if (outcome.status === 'synced') {
        counts.usersSynced += 1;
        counts.tokensSeen += outcome.records.tokens.length;
      } else if (outcome.status === 'not_found') {
        counts.usersNotFound += 1;
      } else {
        counts.usersFailed += 1;
        logger.warn('user failed', { userId: outcome.userId, code: outcome.code, error: outcome.message });
      }
    }
  }

  function drain(): Promise<void> {
    flushing ??= (async () => {
      try {
        while (queue.length > 0 && !fatal) {
          await write(takeBatch());
          release();
        }
      } catch (error) {
        fatal = toError(error);
        options.onFatal(fatal);
      } finally {
        flushing = undefined;
        release();
      }
    })();
    return flushing;
  }

  return {
    async push(outcome) {
      if (fatal) return;
      queue.push(outcome);
      queuedRows += rowsOf(outcome);
      void drain();
      // Bounded queue: a fetcher waits while two full batches are already waiting.
      if (isFull()) await new Promise<void>((wake) => waiters.push(wake));
    },
    async close() {
      while (flushing || (queue.length > 0 && !fatal)) await drain();
      if (fatal) throw fatal;
    },
  };
}
