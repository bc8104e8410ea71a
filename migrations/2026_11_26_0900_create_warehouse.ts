import { sql, type Kysely } from 'kysely';

/**
 * The warehouse: source users, tokens with their devices and resource servers, runs and
 * per-user sync state. Reporting SQL depends on these names. Typed on Kysely<any> so this
 * file never depends on today's types.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await sql`create schema if not exists auth0`.execute(db);

  await db.schema
    .withSchema('auth0')
    .createTable('users')
    .addColumn('user_id', 'text', (c) => c.primaryKey())
    .addColumn('loaded_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();

  await db.schema
    .withSchema('auth0')
    .createTable('sync_runs')
    .addColumn('id', 'integer', (c) => c.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('trigger', 'text', (c) => c.notNull().check(sql`"trigger" in ('manual', 'schedule', 'backfill')`))
    .addColumn('status', 'text', (c) =>
      c.notNull().check(sql`status in ('running', 'succeeded', 'partial', 'failed', 'interrupted')`),
    )
    .addColumn('args', 'jsonb')
    .addColumn('host', 'text')
    .addColumn('pid', 'integer')
    .addColumn('started_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .addColumn('finished_at', 'timestamptz')
    .addColumn('users_total', 'integer')
    .addColumn('users_synced', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('users_not_found', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('users_failed', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('tokens_seen', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('tokens_deleted', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('requests', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('error', 'text')
    .execute();

  await db.schema
    .withSchema('auth0')
    .createTable('refresh_tokens')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('client_id', 'text')
    .addColumn('session_id', 'text')
    .addColumn('rotating', 'boolean')
    .addColumn('created_at', 'timestamptz')
    .addColumn('idle_expires_at', 'timestamptz')
    .addColumn('expires_at', 'timestamptz')
    .addColumn('last_exchanged_at', 'timestamptz')
    .addColumn('metadata', 'jsonb')
    .addColumn('raw', 'jsonb', (c) => c.notNull())
    .addColumn('first_seen_at', 'timestamptz', (c) => c.notNull())
    .addColumn('last_seen_at', 'timestamptz', (c) => c.notNull())
    .addColumn('deleted_at', 'timestamptz')
    .addColumn('first_seen_run_id', 'integer', (c) => c.references('auth0.sync_runs.id'))
    .addColumn('last_seen_run_id', 'integer', (c) => c.references('auth0.sync_runs.id'))
    .execute();
  await db.schema.withSchema('auth0').createIndex('refresh_tokens_user_id_idx').on('refresh_tokens').column('user_id').execute();
  await db.schema.withSchema('auth0').createIndex('refresh_tokens_client_id_idx').on('refresh_tokens').column('client_id').execute();

  await db.schema
    .withSchema('auth0')
    .createTable('refresh_token_devices')
    .addColumn('token_id', 'text', (c) => c.primaryKey().references('auth0.refresh_tokens.id').onDelete('cascade'))
    .addColumn('initial_ip', 'text')
    .addColumn('initial_asn', 'text')
    .addColumn('initial_user_agent', 'text')
    .addColumn('last_ip', 'text')
    .addColumn('last_asn', 'text')
    .addColumn('last_user_agent', 'text')
    .execute();

  await db.schema
    .withSchema('auth0')
    .createTable('refresh_token_resource_servers')
    .addColumn('token_id', 'text', (c) => c.notNull().references('auth0.refresh_tokens.id').onDelete('cascade'))
    .addColumn('audience', 'text', (c) => c.notNull())
    .addColumn('scopes', 'text')
    .addPrimaryKeyConstraint('refresh_token_resource_servers_pkey', ['token_id', 'audience'])
    .execute();
  await db.schema
    .withSchema('auth0')
    .createIndex('refresh_token_resource_servers_audience_idx')
    .on('refresh_token_resource_servers')
    .column('audience')
    .execute();

  await db.schema
    .withSchema('auth0')
    .createTable('user_sync_state')
    .addColumn('user_id', 'text', (c) => c.primaryKey())
    .addColumn('status', 'text', (c) => c.notNull().check(sql`status in ('synced', 'not_found', 'failed')`))
    .addColumn('last_attempt_at', 'timestamptz', (c) => c.notNull())
    .addColumn('last_success_at', 'timestamptz')
    .addColumn('last_run_id', 'integer', (c) => c.references('auth0.sync_runs.id'))
    .addColumn('token_count', 'integer')
    .addColumn('error_code', 'text')
    .addColumn('error', 'text')
    .execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  for (const table of [
    'user_sync_state',
    'refresh_token_resource_servers',
    'refresh_token_devices',
    'refresh_tokens',
    'sync_runs',
    'users',
  ]) {
    await db.schema.withSchema('auth0').dropTable(table).execute();
  }
}
