import { sql, type Kysely } from 'kysely';
import type { Database } from './schema.js';

/**
 * The tenants the warehouse holds rows of (issue #23), sorted: any run, user, user state or log
 * checkpoint names one. What a command that reads the warehouse falls back on when the settings
 * name no tenant (one tenant held: that one).
 */
export async function readTenants(db: Kysely<Database>): Promise<string[]> {
  const { rows } = await sql<{ tenant: string }>`
    select tenant from auth0.sync_runs
    union select tenant from auth0.users
    union select tenant from auth0.user_sync_state
    union select tenant from auth0.log_checkpoint
    order by tenant`.execute(db);
  return rows.map((row) => row.tenant);
}
