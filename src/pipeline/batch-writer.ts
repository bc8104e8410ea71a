import { toError } from '../core/errors.js';
import type { UserOutcome } from '../warehouse/model.js';
import { createBatchWrite, type BatchWriteOptions } from './write-batch.js';

export interface BatchWriter {
  /** Queue one user's outcome; resolves once the queue has room again (backpressure). */
  push(outcome: UserOutcome): Promise<void>;
  /** Write everything queued. Rejects with a FatalError if the database went away. */
  close(): Promise<void>;
}

export interface BatchWriterOptions extends BatchWriteOptions {
  /** Users and rows per write statement. */
  maxBatchUsers?: number;
  maxBatchRows?: number;
  /** Called once when the run must stop: the database is gone or refuses, the guard tripped, the lease was lost. */
  onFatal: (error: Error) => void;
}

/**
 * Group commit: outcomes queue up while a batch is being written and go together in the
 * next one, so the writer keeps pace with many fetchers on one connection. The queue is
 * bounded (fetchers wait while two full batches wait), and with a deletion guard the first
 * batch holds at least `minUsers` users. Writing one batch is write-batch.ts's job.
 */
export function createBatchWriter(options: BatchWriterOptions): BatchWriter {
  const { counts, deleteGuard } = options;
  const write = createBatchWrite(options);
  const maxBatchUsers = Math.max(options.maxBatchUsers ?? 500, deleteGuard?.minUsers ?? 0);
  const maxBatchRows = options.maxBatchRows ?? 10_000;
  let queue: UserOutcome[] = [];
  let queuedRows = 0;
  let flushing: Promise<void> | undefined;
  let fatal: Error | undefined;
  let waiters: (() => void)[] = [];
  let closing = false;
  const usersDone = () => counts.usersSynced + counts.usersNotFound + counts.usersFailed;
  /** Users the next batch must hold before the guard can measure it (0 once it can). */
  const guardShortfall = () => (deleteGuard ? Math.max(0, deleteGuard.minUsers - usersDone()) : 0);
  // Rows count only once the guard can measure: the first batch must reach `minUsers` users.
  const isFull = () => queue.length >= 2 * maxBatchUsers || (guardShortfall() === 0 && queuedRows >= 2 * maxBatchRows);
  const release = () => {
    if (isFull() && !fatal) return;
    for (const wake of waiters) wake();
    waiters = [];
  };

  const rowsOf = (o: UserOutcome) => 1 + (o.status === 'synced' ? o.records.tokens.length : 0);

  function takeBatch(): UserOutcome[] {
    let rows = 0;
    let size = 0;
    const atLeast = guardShortfall();
    while (size < queue.length && size < maxBatchUsers && (size < atLeast || size === 0 || rows + rowsOf(queue[size]!) <= maxBatchRows)) {
      rows += rowsOf(queue[size]!);
      size += 1;
    }
    const batch = queue.slice(0, size);
    queue = queue.slice(size);
    queuedRows -= rows;
    return batch;
  }

  /** With a guard, the first write waits for enough users to be measured (or for the end). */
  const canWrite = () => queue.length > 0 && !fatal && (closing || guardShortfall() <= queue.length);

  function drain(): Promise<void> {
    // Started only when there is a batch to write: the loop must reach an await before its
    // `finally` clears `flushing`, or a settled promise would stay behind as "still flushing".
    if (!flushing && canWrite()) {
      flushing = (async () => {
        try {
          while (canWrite()) {
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
    }
    return flushing ?? Promise.resolve();
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
      closing = true;
      while (flushing || (queue.length > 0 && !fatal)) await drain();
      if (fatal) throw fatal;
    },
  };
}
