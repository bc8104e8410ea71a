import { sql, type Kysely } from 'kysely';
import type { Database } from './schema.js';

/** Tables whose rows name a tenant, each with an index that starts with `tenant`. */
const TENANT_TABLES = ['sync_runs', 'users', 'user_sync_state', 'log_checkpoint'] as const;

/**
 * The tenants the warehouse holds rows of (issue #23), sorted: any run, user, user state or log
 * checkpoint names one. What a command that reads the warehouse falls back on when the settings
 * name no tenant (one tenant held: that one). Each table is read by a loose index scan (one
 * probe of its tenant-first index per tenant), not a scan of its millions of users.
 */
export async function readTenants(db: Kysely<Database>): Promise<string[]> {
  const skipScans = TENANT_TABLES.map(
    (table, i) => sql`${sql.raw(`t${i}`)}(tenant) as (
      select min(tenant) from ${sql.table(`auth0.${table}`)}
      union all
      select (select min(tenant) from ${sql.table(`auth0.${table}`)} where tenant > previous.tenant)
      from ${sql.raw(`t${i}`)} as previous where previous.tenant is not null
    )`,
  );
  const found = sql.raw(TENANT_TABLES.map((_, i) => `select tenant from t${i}`).join(' union '));
  const { rows } = await sql<{ tenant: string }>`
    with recursive ${sql.join(skipScans)}
    select tenant from (${found}) as held where tenant is not null order by tenant`.execute(db);
  return rows.map((row) => row.tenant);
}
