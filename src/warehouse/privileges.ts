import { sql, type Kysely } from 'kysely';
import type { Database } from './schema.js';
import { FatalError } from '../core/errors.js';

/** What a sync writes, table by table. */
const WRITES: readonly (readonly [table: string, privileges: string])[] = [
  ['auth0.run_lease', 'SELECT, INSERT, UPDATE'],
  ['auth0.sync_runs', 'SELECT, INSERT, UPDATE'],
  ['auth0.refresh_tokens', 'SELECT, INSERT, UPDATE'],
  ['auth0.refresh_token_devices', 'SELECT, INSERT, UPDATE, DELETE'],
  ['auth0.refresh_token_resource_servers', 'SELECT, INSERT, UPDATE, DELETE'],
  ['auth0.refresh_token_changes', 'INSERT'],
  ['auth0.user_sync_state', 'SELECT, INSERT, UPDATE'],
  ['auth0.sessions', 'SELECT, INSERT, UPDATE'],
  ['auth0.session_changes', 'INSERT'],
];

/**
 * Refuse to start a run (before it takes the run lock) whose database role cannot write the warehouse: it would spend the
 * tenant's rate budget fetching every user only to fail each write. Throws a FatalError
 * (`database_refused`) naming every table and privilege missing.
 */
export async function assertCanWriteWarehouse(db: Kysely<Database>): Promise<void> {
  const checks = WRITES.flatMap(([table, privileges]) => privileges.split(', ').map((privilege) => ({ table, privilege })));
  const { rows } = await sql<{ table: string; privilege: string }>`
    select c.table, c.privilege
    from jsonb_to_recordset(${JSON.stringify(checks)}::jsonb) as c("table" text, privilege text)
    where not has_table_privilege(c.table, c.privilege)
  `.execute(db);
  if (rows.length === 0) return;
  const missing = rows.map((row) => `${row.privilege} on ${row.table}`).join(', ');
  throw new FatalError(
    'database_refused',
    `The database role may not write the warehouse (missing ${missing}); grant the job's role SELECT, INSERT, UPDATE and DELETE on the auth0 schema's tables.`,
  );
}
