import { sql, type Kysely } from 'kysely';

/**
 * The run lease (issue #13): one row naming the holding of the run lock whose writes are
 * allowed. A run sets it right after taking the advisory lock, and every batch write checks it
 * (`for share`) in its own transaction, so a run whose lock connection was dropped cannot write
 * alongside the run that took over: the takeover waits for a write in flight, and every later
 * write of the old run sees the new holder. `holder` is a random id per lock taking; `run_id`
 * names the run for people (no foreign key: pruning old runs must not touch the lease).
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .withSchema('auth0')
    .createTable('run_lease')
    .addColumn('id', 'integer', (c) => c.primaryKey().check(sql`id = 1`))
    .addColumn('holder', 'uuid')
    .addColumn('run_id', 'integer')
    .addColumn('acquired_at', 'timestamptz')
    .execute();
  await sql`insert into auth0.run_lease (id) values (1)`.execute(db);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.withSchema('auth0').dropTable('run_lease').execute();
}
