import { sql, type Kysely } from 'kysely';

/**
 * The log follower on a bad day (issue #18):
 * - `sync_runs.full_pass`: the run listed every source user with no budget. Only a full pass
 *   clears "full pass due" and starts a new window for the deletion guard's running total.
 * - `sync_runs.users_gone_unexplained` / `tokens_unexplained`: users recorded gone with no log
 *   entry of their deletion, and deletions that no log entry and no expiry explain. The deletion
 *   guard adds them up over the runs since the last full pass and bounds the totals.
 * - `log_checkpoint.newest_log_id` / `newest_entry_date`: the tenant's newest entry when the
 *   follower last looked. The lag is measured against it.
 *   `history_lost_reason` says how lost history was detected.
 * - `log_follow_retries`: users a follow could not list (5xx, 429, a failed write), with what
 *   the logs said about them. The next follow retries them, even in a new process.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .withSchema('auth0')
    .alterTable('sync_runs')
    .addColumn('full_pass', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('users_gone_unexplained', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('tokens_unexplained', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  // Before this migration every manual or scheduled run counted as a full pass.
  await sql`update auth0.sync_runs set full_pass = true where "trigger" in ('manual', 'schedule')`.execute(db);

  await db.schema
    .withSchema('auth0')
    .alterTable('log_checkpoint')
    .addColumn('newest_log_id', 'text')
    .addColumn('newest_entry_date', 'timestamptz')
    .addColumn('history_lost_reason', 'text')
    .execute();

  await db.schema
    .withSchema('auth0')
    .createTable('log_follow_retries')
    .addColumn('user_id', 'text', (c) => c.primaryKey())
    .addColumn('deleted', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('explained', 'boolean', (c) => c.notNull().defaultTo(false))
    .addColumn('first_failed_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('attempts', 'integer', (c) => c.notNull().defaultTo(1))
    .addColumn('last_run_id', 'integer', (c) => c.references('auth0.sync_runs.id').onDelete('set null'))
    .execute();

  for (const [relation, columns] of Object.entries(COMMENTS)) {
    for (const [column, text] of Object.entries(columns)) {
      await sql`comment on column ${sql.table(`auth0.${relation}`)}.${sql.ref(column)} is ${sql.lit(text)}`.execute(db);
    }
  }
  await sql`comment on table auth0.log_follow_retries is ${sql.lit(RETRIES_COMMENT)}`.execute(db);
  await sql`comment on column auth0.log_checkpoint.lag_seconds is ${sql.lit(LAG_COMMENT)}`.execute(db);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.withSchema('auth0').dropTable('log_follow_retries').execute();
  await db.schema
    .withSchema('auth0')
    .alterTable('log_checkpoint')
    .dropColumn('newest_log_id')
    .dropColumn('newest_entry_date')
    .dropColumn('history_lost_reason')
    .execute();
  await db.schema.withSchema('auth0').alterTable('sync_runs').dropColumn('full_pass').dropColumn('users_gone_unexplained').dropColumn('tokens_unexplained').execute();
  await sql`comment on column auth0.log_checkpoint.lag_seconds is 'Seconds between the last entry''s date and when it was read.'`.execute(db);
}

const LAG_COMMENT =
  'Seconds by which the checkpoint trails the tenant\'s newest log entry (newest_entry_date - last_entry_date); 0 when caught up, even on a quiet tenant.';

const RETRIES_COMMENT =
  'Users a follow of the tenant logs could not list or write (their old rows kept). Each later follow retries them until one succeeds; the flags keep what the logs said.';

const COMMENTS: Record<string, Record<string, string>> = {
  sync_runs: {
    full_pass: 'The run listed every source user, with no user or time budget. Only a full pass clears "full pass due" and starts a new window for the deletion guard\'s running total.',
    users_gone_unexplained:
      'Users this run recorded as gone from Auth0 (404) with no log entry of their deletion. The deletion guard bounds their sum over the runs since the last full pass by SYNC_DELETE_GUARD_MIN.',
    tokens_unexplained:
      'Tokens this run marked deleted with no log entry and no expiry to explain it. The deletion guard bounds their sum over the last day by SYNC_MAX_DELETE_RATIO of the live tokens.',
  },
  log_checkpoint: {
    newest_log_id: 'The tenant\'s newest log entry when the follower last looked.',
    newest_entry_date: 'The date of that newest entry.',
    history_lost_reason: 'How lost history was detected (the stored checkpoint refused, an empty answer past it, or a jump past the retention window). Set together with history_lost_at.',
  },
  log_follow_retries: {
    user_id: 'Auth0 user id named by the logs whose sync failed.',
    deleted: 'The logs said the tenant deleted the user: removed_at is set once its tokens are marked deleted.',
    explained: 'The logs explained a loss of tokens for the user (a revocation, a logout, a deletion): not counted by the deletion guard.',
    first_failed_at: 'When a follow first failed to sync the user.',
    attempts: 'Follows that have tried the user so far.',
    last_run_id: 'auth0.sync_runs.id of the last run that tried the user.',
  },
};
