import { describe, expect, it } from '@jest/globals';
import { Migrator, sql, type Kysely } from 'kysely';
import { migrations } from '../../migrations/index.js';
import { migrateToLatest } from '../../src/warehouse/migrate.js';
import { captureIo, cliDeps, itServer } from '../helpers/db.js';
import { main } from '../../src/cli/main.js';
import { withTestDatabase } from '../helpers/fixtures.js';

// Issue #23: migration 2026_12_05_1000_tenants gives rows from before tenants the configured
// tenant, in place (no rewrite), refuses a warehouse holding rows without a name, and goes down
// while one tenant holds rows.

const BEFORE = '2026_12_04_2000_session_counts';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const migratorOf = (db: Kysely<any>) => new Migrator({ db, provider: { getMigrations: async () => migrations }, migrationTableSchema: 'auth0' });

// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function seedBeforeTenants(db: Kysely<any>): Promise<void> {
  const { rows } = await sql<{ id: number }>`insert into auth0.sync_runs ("trigger", status) values ('manual', 'succeeded') returning id`.execute(db);
  const run = rows[0]!.id;
  await sql`insert into auth0.users (user_id, email) values ('auth0|1', 'a@example.com')`.execute(db);
  await sql`insert into auth0.refresh_tokens (id, user_id, client_id, raw, first_seen_at, last_changed_at, first_seen_run_id)
            values ('tok1', 'auth0|1', 'app', '{}', now(), now(), ${run})`.execute(db);
  await sql`insert into auth0.refresh_token_devices (token_id, last_ip) values ('tok1', '10.0.0.1')`.execute(db);
  await sql`insert into auth0.refresh_token_resource_servers (token_id, audience, scopes) values ('tok1', 'api', 'read')`.execute(db);
  await sql`insert into auth0.refresh_token_changes (token_id, user_id, change, run_id) values ('tok1', 'auth0|1', 'created', ${run})`.execute(db);
  await sql`insert into auth0.user_sync_state (user_id, status, last_attempt_at, last_success_at) values ('auth0|1', 'synced', now(), now())`.execute(db);
  await sql`insert into auth0.log_checkpoint (log_id) values ('log-1')`.execute(db);
  await sql`update auth0.run_lease set run_id = ${run}`.execute(db);
}

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const filenode = async (db: Kysely<any>) =>
  (await sql<{ node: string }>`select pg_relation_filenode('auth0.refresh_tokens')::text as node`.execute(db)).rows[0]!.node;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
const tenantsOf = async (db: Kysely<any>, table: string) =>
  (await sql<{ tenant: string }>`select distinct tenant from ${sql.table(`auth0.${table}`)} order by 1`.execute(db)).rows.map((r) => r.tenant);

const TABLES = [
  'users',
  'refresh_tokens',
  'refresh_token_devices',
  'refresh_token_resource_servers',
  'refresh_token_changes',
  'user_sync_state',
  'sync_runs',
  'log_checkpoint',
  'run_lease',
];

describe('migration 2026_12_05_1000_tenants', () => {
  itServer('gives rows from before tenants the configured tenant without rewriting the table, and refuses without a name', () =>
    withTestDatabase(
      async (t) => {
        const migrator = migratorOf(t.db);
        expect((await migrator.migrateTo(BEFORE)).error).toBeUndefined();
        await seedBeforeTenants(t.db);
        const before = await filenode(t.db);

        const refused = await migrateToLatest(t.db);
        expect(String(refused.error)).toContain(
          'the warehouse holds rows from before tenants: run migrate with the settings of the tenant they came from (AUTH0_DOMAIN / AUTH0_TENANT_NAME, or TENANTS_FILE and --tenant NAME)',
        );
        const badName = await migrateToLatest(t.db, { tenant: 'Prod EU' });
        expect(String(badName.error)).toMatch(/'Prod EU' is not a short name/);

        const { error } = await migrateToLatest(t.db, { tenant: 'prod-eu' });
        expect(error).toBeUndefined();
        expect(await filenode(t.db)).toBe(before);
        for (const table of TABLES) expect([table, await tenantsOf(t.db, table)]).toEqual([table, ['prod-eu']]);
        // The name lives on no pooled connection after the migration.
        const { rows: setting } = await sql<{ value: string | null }>`select current_setting('auth0_sync.tenant', true) as value`.execute(t.db);
        expect(setting[0]!.value ?? '').toBe('');

        // Views lead with the tenant; the same token id in another tenant is another row.
        await sql`insert into auth0.refresh_tokens (tenant, id, user_id, client_id, raw, first_seen_at, last_changed_at)
                  values ('prod-us', 'tok1', 'auth0|1', 'other', '{}', now(), now())`.execute(t.db);
        const { rows: active } = await sql<{ tenant: string; id: string; last_ip: string | null; audiences: string[] | null }>`
          select tenant, id, host(last_ip) as last_ip, audiences from auth0.active_refresh_tokens order by tenant`.execute(t.db);
        expect(active).toEqual([
          { tenant: 'prod-eu', id: 'tok1', last_ip: '10.0.0.1', audiences: ['api'] },
          { tenant: 'prod-us', id: 'tok1', last_ip: null, audiences: null },
        ]);
        const { rows: asOf } = await sql<{ tenant: string }>`select tenant from auth0.refresh_tokens_as_of(now(), 'prod-us')`.execute(t.db);
        expect(asOf).toEqual([{ tenant: 'prod-us' }]);
        const { rows: all } = await sql<{ tenant: string }>`select tenant from auth0.refresh_tokens_as_of(now()) order by 1`.execute(t.db);
        expect(all).toEqual([{ tenant: 'prod-eu' }, { tenant: 'prod-us' }]);
        await expect(sql`insert into auth0.users (tenant, user_id) values ('Not A Name', 'x')`.execute(t.db)).rejects.toThrow(/users_tenant_check/);

        // Down refuses while two tenants hold rows, then goes down with one.
        const twoTenants = await migrator.migrateTo(BEFORE);
        expect(String(twoTenants.error)).toMatch(/holds rows of 2 tenants \(prod-eu, prod-us\)/);
        await sql`delete from auth0.refresh_tokens where tenant = 'prod-us'`.execute(t.db);
        const down = await migrator.migrateTo(BEFORE);
        expect(down.error).toBeUndefined();
        const { rows: columns } = await sql`select table_name from information_schema.columns where table_schema = 'auth0' and column_name = 'tenant'`.execute(
          t.db,
        );
        expect(columns).toEqual([]);
        const { rows: lease } = await sql`select id, run_id is not null as held from auth0.run_lease`.execute(t.db);
        expect(lease).toEqual([{ id: 1, held: true }]);
        const { rows: tokens } = await sql`select id, audiences from auth0.active_refresh_tokens`.execute(t.db);
        expect(tokens).toEqual([{ id: 'tok1', audiences: ['api'] }]);

        // And up again.
        expect((await migrateToLatest(t.db, { tenant: 'prod-eu' })).error).toBeUndefined();
        expect(await tenantsOf(t.db, 'refresh_token_devices')).toEqual(['prod-eu']);
      },
      { migrate: false },
    ),
  );

  itServer('needs no name on an empty warehouse, and keeps the grants of the views it makes again', () =>
    withTestDatabase(
      async (t) => {
        expect((await migratorOf(t.db).migrateTo(BEFORE)).error).toBeUndefined();
        const role = `rt_reader_${t.name.slice(-8)}`;
        await sql`create role ${sql.ref(role)}`.execute(t.db);
        try {
          await sql`grant select on auth0.refresh_tokens_per_client to ${sql.ref(role)}`.execute(t.db);
          expect((await migrateToLatest(t.db)).error).toBeUndefined();
          const { rows } = await sql<{ granted: boolean }>`select has_table_privilege(${role}, 'auth0.refresh_tokens_per_client', 'select') as granted`.execute(
            t.db,
          );
          expect(rows).toEqual([{ granted: true }]);
          const { rows: lease } = await sql`select * from auth0.run_lease`.execute(t.db);
          expect(lease).toEqual([]);
        } finally {
          await sql`drop owned by ${sql.ref(role)}`.execute(t.db);
          await sql`drop role ${sql.ref(role)}`.execute(t.db);
        }
      },
      { migrate: false },
    ),
  );

  itServer('npm run migrate gives them the tenant its settings name (AUTH0_TENANT_NAME, else the domain), and says what to set without one', () =>
    withTestDatabase(
      async (t) => {
        expect((await migratorOf(t.db).migrateTo(BEFORE)).error).toBeUndefined();
        await seedBeforeTenants(t.db);
        const refused = captureIo();
        expect(await main(['migrate'], { DATABASE_URL: t.url, LOG_LEVEL: 'warn' }, refused.io, cliDeps(t))).not.toBe(0);
        expect(refused.stderr.join('\n')).toContain('the warehouse holds rows from before tenants');
        const out = captureIo();
        const code = await main(['migrate'], { DATABASE_URL: t.url, AUTH0_DOMAIN: 'prod-eu.eu.auth0.com', LOG_LEVEL: 'warn' }, out.io, cliDeps(t));
        expect([code, out.stderr]).toEqual([0, []]);
        expect(await tenantsOf(t.db, 'refresh_tokens')).toEqual(['prod-eu']);
      },
      { migrate: false },
    ),
  );

  it('runs on the embedded database too: down, rows, up with the name on its one connection', () =>
    withTestDatabase(
      async (t) => {
        const migrator = migratorOf(t.db);
        expect((await migrator.migrateTo(BEFORE)).error).toBeUndefined();
        await seedBeforeTenants(t.db);
        expect(String((await migrateToLatest(t.db)).error)).toContain('the warehouse holds rows from before tenants');
        expect((await migrateToLatest(t.db, { tenant: 'staging' })).error).toBeUndefined();
        for (const table of TABLES) expect([table, await tenantsOf(t.db, table)]).toEqual([table, ['staging']]);
      },
      { embedded: true },
    ));
});
