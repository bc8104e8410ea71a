import { sql, type Kysely } from 'kysely';
import type { Database } from './database.js';
import { SyncError } from './errors.js';

/** Advisory lock key (two int4s): one active run per database, whichever machine runs it. */
const LOCK_CLASS = 0x41_30_52_54; // "A0RT"
const LOCK_ID = 1;

/** Another run holds the lock; the CLI exits 3 with this message. */
export class RunLockedError extends SyncError {
  override name = 'RunLockedError';
  constructor(message: string) {
    super('run_locked', message);
  }
}

/**
 * Run `fn` while holding the run lock, a session-level advisory lock on a connection reserved
 * for the whole run (released when `fn` settles, or by PostgreSQL when the process dies, so a
 * kill -9 never leaves it stuck). Throws RunLockedError naming the active run when another
 * process holds it. Once the lock is ours, any run still marked `running` belongs to a process
 * that died: it is marked `interrupted` before `fn` starts.
 */
export async function withRunLock<T>(db: Kysely<Database>, fn: () => Promise<T>, options = { advisory: true }): Promise<T> {
  // The embedded database has one connection and one process (its directory lock): holding
  // a connection for the lock would starve the run, and there is no one to exclude.
  if (!options.advisory) return markAbandonedRuns(db).then(fn);
  return db.connection().execute(async (conn) => {
    const { rows } = await sql<{ locked: boolean }>`select pg_try_advisory_lock(${LOCK_CLASS}, ${LOCK_ID}) as locked`.execute(conn);
    if (!rows[0]?.locked) throw new RunLockedError(await describeActiveRun(db));
    try {
      await markAbandonedRuns(db);
      return await fn();
    } finally {
      await sql`select pg_advisory_unlock(${LOCK_CLASS}, ${LOCK_ID})`.execute(conn).catch(() => {
        // The connection is gone, and with it the lock.
      });
    }
  });
}

/** Called with the lock held: a run still `running` belongs to a process that died. */
async function markAbandonedRuns(db: Kysely<Database>): Promise<void> {
  await db
    .updateTable('auth0.sync_runs')
    .set({ status: 'interrupted', finished_at: new Date(), error: 'The process running it stopped before it finished.' })
    .where('status', '=', 'running')
    .execute();
}

async function describeActiveRun(db: Kysely<Database>): Promise<string> {
  const active = await db
    .selectFrom('auth0.sync_runs')
    .select(['id', 'host', 'pid', 'started_at', 'trigger'])
    .where('status', '=', 'running')
    .orderBy('id', 'desc')
    .executeTakeFirst();
  if (!active) return 'Another sync holds the run lock on this database; not starting.';
  return `Run ${active.id} (${active.trigger}, pid ${active.pid} on ${active.host}, started ${active.started_at.toISOString()}) is still running; not starting.`;
}
