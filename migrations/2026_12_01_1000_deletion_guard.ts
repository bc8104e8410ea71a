import { sql, type Kysely } from 'kysely';

/**
 * The deletion guard's numbers on each run: how many live tokens the warehouse held for the
 * users the run covered (the share of them a run may mark deleted is bounded), the bound in
 * force (null when an operator confirmed a mass deletion), and whether the guard stopped it.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .withSchema('auth0')
    .alterTable('sync_runs')
    .addColumn('tokens_held', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('max_delete_ratio', 'real')
    .addColumn('delete_guard_tripped', 'boolean', (c) => c.notNull().defaultTo(false))
    .execute();
  await sql`comment on column auth0.sync_runs.tokens_held is 'Live tokens the warehouse held for the users this run listed: the deletion guard''s denominator'`.execute(db);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema
    .withSchema('auth0')
    .alterTable('sync_runs')
    .dropColumn('tokens_held')
    .dropColumn('max_delete_ratio')
    .dropColumn('delete_guard_tripped')
    .execute();
}
