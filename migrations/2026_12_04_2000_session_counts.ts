import { sql, type Kysely } from 'kysely';

/**
 * Each run's session counts (issue #22), beside its token counts: what the deletion guard
 * measures of sessions (`sessions_unexplained`) is added up between full passes as
 * `tokens_unexplained` is.
 */
const COMMENTS = {
  sessions_seen: 'Sessions the run listed for its users (SYNC_SESSIONS on; 0 otherwise)',
  sessions_held: "Live sessions the warehouse held for the users whose sessions this run listed: the deletion guard's denominator for sessions",
  sessions_added: 'Sessions the run saw for the first time',
  sessions_deleted: "Sessions the run marked deleted: their user's complete listing no longer held them",
  sessions_unexplained:
    'Of sessions_deleted, those no log entry of the user (logout, session revoked, user deleted) and no expiry explain: measured by the deletion guard with SYNC_MAX_DELETE_RATIO',
} as const;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .withSchema('auth0')
    .alterTable('sync_runs')
    .addColumn('sessions_seen', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('sessions_held', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('sessions_added', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('sessions_deleted', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('sessions_unexplained', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  for (const [column, comment] of Object.entries(COMMENTS)) {
    await sql`comment on column auth0.sync_runs.${sql.raw(column)} is ${sql.lit(comment)}`.execute(db);
  }
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema
    .withSchema('auth0')
    .alterTable('sync_runs')
    .dropColumn('sessions_seen')
    .dropColumn('sessions_held')
    .dropColumn('sessions_added')
    .dropColumn('sessions_deleted')
    .dropColumn('sessions_unexplained')
    .execute();
}
