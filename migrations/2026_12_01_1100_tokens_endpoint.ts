import { sql, type Kysely } from 'kysely';

/**
 * Which route a run listed tokens through (issue #12): `refresh-tokens` (Early Access,
 * `GET /api/v2/refresh-tokens`) or `users` (`GET /api/v2/users/{user_id}/refresh-tokens`).
 * Null for runs before this column and for runs that listed nothing.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .withSchema('auth0')
    .alterTable('sync_runs')
    .addColumn('tokens_endpoint', 'text', (col) => col.check(sql`tokens_endpoint in ('refresh-tokens', 'users')`))
    .execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.withSchema('auth0').alterTable('sync_runs').dropColumn('tokens_endpoint').execute();
}
