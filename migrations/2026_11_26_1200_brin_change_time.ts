import { sql, type Kysely } from 'kysely';

/**
 * The change history is append-only and written in time order, so a BRIN index on
 * observed_at answers "per day" queries at a sliver of a B-tree's cost; the B-tree on
 * (observed_at, change) cost the first sync of a large tenant a B-tree insert per token.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema.withSchema('auth0').dropIndex('refresh_token_changes_observed_idx').execute();
  await sql`create index refresh_token_changes_observed_brin on auth0.refresh_token_changes using brin (observed_at)`.execute(db);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.withSchema('auth0').dropIndex('refresh_token_changes_observed_brin').execute();
  await db.schema.withSchema('auth0').createIndex('refresh_token_changes_observed_idx').on('refresh_token_changes').columns(['observed_at', 'change']).execute();
}
