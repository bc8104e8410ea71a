import { sql, type Kysely } from 'kysely';

/**
 * Change history: one append-only row per change a sync observes on a token (first seen,
 * deleted, restored, last exchange moved, last IP / ASN / user agent changed), turning
 * snapshots into a timeline. Also: per-run counts of added and changed tokens, and an index
 * that lets a budgeted run pick the stalest users first.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function up(db: Kysely<any>): Promise<void> {
  await db.schema
    .withSchema('auth0')
    .createTable('refresh_token_changes')
    .addColumn('id', 'bigint', (c) => c.primaryKey().generatedAlwaysAsIdentity())
    .addColumn('token_id', 'text', (c) => c.notNull())
    .addColumn('user_id', 'text', (c) => c.notNull())
    .addColumn('change', 'text', (c) =>
      c
        .notNull()
        .check(
          sql`change in ('created', 'deleted', 'restored', 'exchanged', 'last_ip_changed', 'last_asn_changed', 'last_user_agent_changed')`,
        ),
    )
    .addColumn('old_value', 'text')
    .addColumn('new_value', 'text')
    .addColumn('run_id', 'integer', (c) => c.references('auth0.sync_runs.id'))
    .addColumn('observed_at', 'timestamptz', (c) => c.notNull().defaultTo(sql`now()`))
    .execute();
  await db.schema
    .withSchema('auth0')
    .createIndex('refresh_token_changes_token_idx')
    .on('refresh_token_changes')
    .columns(['token_id', 'observed_at'])
    .execute();
  await db.schema
    .withSchema('auth0')
    .createIndex('refresh_token_changes_observed_idx')
    .on('refresh_token_changes')
    .columns(['observed_at', 'change'])
    .execute();

  await db.schema
    .withSchema('auth0')
    .alterTable('sync_runs')
    .addColumn('tokens_added', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('tokens_changed', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();

  await db.schema
    .withSchema('auth0')
    .createIndex('user_sync_state_last_success_idx')
    .on('user_sync_state')
    .columns(['last_success_at', 'user_id'])
    .execute();
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function down(db: Kysely<any>): Promise<void> {
  await db.schema.withSchema('auth0').dropIndex('user_sync_state_last_success_idx').execute();
  await db.schema.withSchema('auth0').alterTable('sync_runs').dropColumn('tokens_added').dropColumn('tokens_changed').execute();
  await db.schema.withSchema('auth0').dropTable('refresh_token_changes').execute();
}
