import { sql, type Kysely } from 'kysely';
import type { Database } from './schema.js';

/** A user a follow could not sync, with what the logs said about it. */
export interface LogFollowRetry {
  userId: string;
  deleted: boolean;
  /**
   * The log entries that explained a loss of its tokens (issue #22), as the pipeline's
   * LogExplanation list: stored as JSON, read back unchecked (the pipeline checks it).
   */
  explanations: readonly unknown[];
}

/** Most users retried by one follow; the rest wait for the next (oldest failures first). */
const MAX_RETRIES_PER_FOLLOW = 10_000;

/** The tenant's users earlier follows could not sync (`auth0.log_follow_retries`), oldest failure first. */
export async function readLogFollowRetries(db: Kysely<Database>, tenant: string): Promise<LogFollowRetry[]> {
  const rows = await db
    .selectFrom('auth0.log_follow_retries')
    .select(['user_id', 'deleted', 'explanations'])
    .where('tenant', '=', tenant)
    .orderBy('first_failed_at')
    .orderBy('user_id')
    .limit(MAX_RETRIES_PER_FOLLOW)
    .execute();
  return rows.map((row) => ({ userId: row.user_id, deleted: row.deleted, explanations: Array.isArray(row.explanations) ? row.explanations : [] }));
}

/**
 * After the run `runId` synced `users` for a follow: those it recorded as failed (in
 * `user_sync_state`) are kept for the next follow with what the logs said about them, the others
 * leave the list. A user that failed keeps its rows and its `removed_at` as they were (issue #18).
 * Returns how many are kept.
 */
export async function updateLogFollowRetries(db: Kysely<Database>, tenant: string, runId: number, users: readonly LogFollowRetry[]): Promise<number> {
  if (users.length === 0) return 0;
  const ids = users.map((user) => user.userId);
  return db.transaction().execute(async (trx) => {
    const failed = new Set(
      (
        await trx
          .selectFrom('auth0.user_sync_state')
          .select('user_id')
          .where('tenant', '=', tenant)
          .where((eb) => eb('user_id', '=', eb.fn.any(eb.val(ids))))
          .where('last_run_id', '=', runId)
          .where('status', '=', 'failed')
          .execute()
      ).map((row) => row.user_id),
    );
    const done = ids.filter((id) => !failed.has(id));
    if (done.length > 0)
      await trx
        .deleteFrom('auth0.log_follow_retries')
        .where('tenant', '=', tenant)
        .where((eb) => eb('user_id', '=', eb.fn.any(eb.val(done))))
        .execute();
    const kept = users.filter((user) => failed.has(user.userId));
    if (kept.length > 0) {
      await trx
        .insertInto('auth0.log_follow_retries')
        .values(
          kept.map((user) => ({
            tenant,
            user_id: user.userId,
            deleted: user.deleted,
            // `explained` stays for readers of the table: the same word as "has explanations".
            explained: user.explanations.length > 0,
            explanations: JSON.stringify(user.explanations),
            last_run_id: runId,
          })),
        )
        .onConflict((oc) =>
          oc.columns(['tenant', 'user_id']).doUpdateSet((eb) => ({
            deleted: eb.ref('excluded.deleted'),
            explained: eb.ref('excluded.explained'),
            explanations: sql<string>`excluded.explanations`,
            attempts: eb('auth0.log_follow_retries.attempts', '+', 1),
            last_run_id: eb.ref('excluded.last_run_id'),
          })),
        )
        .execute();
    }
    return kept.length;
  });
}
