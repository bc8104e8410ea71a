import { sql, type Kysely } from 'kysely';

/**
 * `npm run import-users` (issue #10): `auth0.users` holds the users of the tenant's users export,
 * with a few profile fields, when each was first and last imported, and `removed_at`, set when
 * a complete export no longer holds the user (cleared if it returns). Full sync passes over the
 * default source skip removed users. Rows loaded by hand keep working: every new column is
 * nullable.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .withSchema('auth0')
    .alterTable('users')
    .addColumn('email', 'text')
    .addColumn('connection', 'text')
    .addColumn('created_at', 'timestamptz')
    .addColumn('last_login', 'timestamptz')
    .addColumn('blocked', 'boolean')
    .addColumn('first_imported_at', 'timestamptz')
    .addColumn('last_imported_at', 'timestamptz')
    .addColumn('removed_at', 'timestamptz')
    .execute();
  await sql`comment on column auth0.users.removed_at is 'Set by import-users when a complete export no longer holds the user; cleared if it returns. Full syncs skip removed users.'`.execute(db);
  await db.schema.withSchema('auth0').createIndex('users_connection_idx').on('users').columns(['connection', 'user_id']).execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.withSchema('auth0').dropIndex('users_connection_idx').execute();
  await db.schema
    .withSchema('auth0')
    .alterTable('users')
    .dropColumn('email')
    .dropColumn('connection')
    .dropColumn('created_at')
    .dropColumn('last_login')
    .dropColumn('blocked')
    .dropColumn('first_imported_at')
    .dropColumn('last_imported_at')
    .dropColumn('removed_at')
    .execute();
}
