import { sql, type Kysely } from 'kysely';

/**
 * Following the tenant logs (issue #10): runs triggered by the log follower (`logs`), and
 * `auth0.log_checkpoint`, one row: the `log_id` to read on from, the date of the last entry
 * read and the lag behind it, entry counts, and when history was lost (a checkpoint older than
 * the plan's retention), which makes a full pass due.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await sql`alter table auth0.sync_runs drop constraint sync_runs_trigger_check`.execute(db);
  await sql`alter table auth0.sync_runs add constraint sync_runs_trigger_check
    check ("trigger" in ('manual', 'schedule', 'backfill', 'logs'))`.execute(db);

  await db.schema
    .withSchema('auth0')
    .createTable('log_checkpoint')
    // A single row: the primary key can only be true.
    .addColumn('id', 'boolean', (c) => c.primaryKey().defaultTo(true).check(sql`id`))
    .addColumn('log_id', 'text', (c) => c.notNull())
    .addColumn('last_entry_date', 'timestamptz')
    .addColumn('lag_seconds', 'double precision')
    .addColumn('entries_read', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('entries_skipped', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('users_changed', 'bigint', (c) => c.notNull().defaultTo(0))
    .addColumn('last_run_id', 'integer', (c) => c.references('auth0.sync_runs.id').onDelete('set null'))
    .addColumn('started_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('updated_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('history_lost_at', 'timestamptz')
    .execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.withSchema('auth0').dropTable('log_checkpoint').execute();
  await sql`delete from auth0.sync_runs where "trigger" = 'logs'`.execute(db);
  await sql`alter table auth0.sync_runs drop constraint sync_runs_trigger_check`.execute(db);
  await sql`alter table auth0.sync_runs add constraint sync_runs_trigger_check
    check ("trigger" in ('manual', 'schedule', 'backfill'))`.execute(db);
}
