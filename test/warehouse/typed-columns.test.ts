import { describe, expect, it } from '@jest/globals';
import { Migrator, sql } from 'kysely';
import { main } from '../../src/cli/main.js';
import { migrations } from '../../migrations/index.js';
import { captureIo, cliDeps, loadUsers, type TestDatabase } from '../helpers/db.js';
import { sharedDatabase } from '../helpers/fixtures.js';
import { envFor, makeToken, type Auth0TokenJson, type FakeAuth0 } from '../helpers/fake-auth0.js';

/**
 * Typed columns for reporting (issue #22): the reporting views give IP addresses as `inet` and
 * scopes as `text[]`; what does not parse is null there, kept as text in the tables, and never
 * fails the user or the view. Runs on the server and on the embedded PGlite alike.
 */
const inAYear = () => new Date(Date.now() + 365 * 86_400_000).toISOString();
const device = (ip: string) => ({ initial_ip: ip, initial_asn: '64500', initial_user_agent: 'ua', last_ip: ip, last_asn: '64500', last_user_agent: 'ua' });
const token = (userId: string, n: number, overrides: Auth0TokenJson): Auth0TokenJson => ({
  ...makeToken(userId, n),
  expires_at: inAYear(),
  idle_expires_at: inAYear(),
  ...overrides,
});

/** What a test works with: its emptied database, its fake tenant, and a sync bound to both. */
function world(t: TestDatabase, fake: FakeAuth0) {
  async function sync(): Promise<number> {
    const out = captureIo();
    return main(['sync'], envFor(fake, t.url), out.io, cliDeps(t));
  }
  return { t, fake, sync };
}

// Each test gets an emptied database (one clone of the migrated template for the file) and a fresh tenant.
const { withEmptyDatabase, withEmptyDatabaseAndTenant } = sharedDatabase();
const withTenant = (use: (w: ReturnType<typeof world>) => Promise<void>) => withEmptyDatabaseAndTenant((t, fake) => use(world(t, fake)));

describe('IP addresses as inet in the views', () => {
  it('answers a CIDR query; an address that does not parse is null there, kept as text, and its user synced', () =>
    withTenant(async ({ t, fake, sync }) => {
      const addresses: Record<string, string> = {
        'auth0|ten': '10.1.2.3',
        'auth0|home': '192.168.0.5',
        'auth0|six': '2001:DB8::1',
        'auth0|words': 'not an address',
        'auth0|octets': '999.1.1.1',
        'auth0|hexish': 'abc:def:ghi',
      };
      for (const [userId, ip] of Object.entries(addresses)) fake.setUser(userId, [token(userId, 1, { device: device(ip) })]);
      await loadUsers(t.db, Object.keys(addresses));
      expect(await sync()).toBe(0);

      const inTen = await sql<{ user_id: string }>`select user_id from auth0.active_refresh_tokens where last_ip << '10.0.0.0/8'`.execute(t.db);
      expect(inTen.rows).toEqual([{ user_id: 'auth0|ten' }]);
      const inDocNet = await sql<{ user_id: string }>`select user_id from auth0.active_refresh_tokens where initial_ip << '2001:db8::/32'`.execute(t.db);
      expect(inDocNet.rows).toEqual([{ user_id: 'auth0|six' }]);

      const rows = await t.db.selectFrom('auth0.active_refresh_tokens').select(['user_id', 'initial_ip', 'last_ip']).orderBy('user_id').execute();
      expect(Object.fromEntries(rows.map((r) => [r.user_id, [r.initial_ip, r.last_ip]]))).toEqual({
        'auth0|ten': ['10.1.2.3', '10.1.2.3'],
        'auth0|home': ['192.168.0.5', '192.168.0.5'],
        'auth0|six': ['2001:db8::1', '2001:db8::1'], // canonical form
        'auth0|words': [null, null],
        'auth0|octets': [null, null],
        'auth0|hexish': [null, null],
      });
      // The tables keep what Auth0 sent; every user synced.
      const stored = await t.db.selectFrom('auth0.refresh_token_devices').select('last_ip').orderBy('last_ip').execute();
      expect(stored.map((r) => r.last_ip).sort()).toEqual(Object.values(addresses).sort());
      const states = await t.db.selectFrom('auth0.user_sync_state').select('status').distinct().execute();
      expect(states).toEqual([{ status: 'synced' }]);
      // The view that compares addresses reads them typed too.
      const changed = await sql<{ n: number }>`select count(*)::int as n from auth0.refresh_tokens_location_changed where last_ip << '0.0.0.0/0'`.execute(t.db);
      expect(changed.rows).toEqual([{ n: 0 }]);
    }));

  it('auth0.to_inet: addresses and networks typed, anything else null, never an error', () =>
    withEmptyDatabase(async (t) => {
      const { rows } = await sql<{ input: string | null; typed: string | null }>`
      select input, auth0.to_inet(input)::text as typed
      from unnest(array['10.0.0.1', '10.0.0.0/8', '::ffff:1.2.3.4', 'fe80::1', '', ' 10.0.0.1', '10.0.0.1/40', '1.2.3', 'localhost', null]) with ordinality as x(input, n)
      order by n`.execute(t.db);
      expect(rows.map((r) => r.typed)).toEqual(['10.0.0.1/32', '10.0.0.0/8', '::ffff:1.2.3.4/128', 'fe80::1/128', null, null, null, null, null, null]);
    }));
});

describe('auth0.to_inet in a parallel plan', () => {
  it('answers where PostgreSQL would plan parallel workers, alone or beside a parallel part of the same query (parallel unsafe)', () =>
    withEmptyDatabase(async (t) => {
      // A plain table (a temporary one is never scanned in parallel), this test file's own.
      await sql`create table public.ips as select (i % 250)::text || '.' || (i % 7)::text || '.0.1' as ip from generate_series(1, 5000) i`.execute(t.db);
      await sql`analyze public.ips`.execute(t.db);
      const count = await t.db
        .transaction()
        .execute(async (trx) => {
          for (const setting of [
            'parallel_setup_cost = 0',
            'parallel_tuple_cost = 0',
            'min_parallel_table_scan_size = 0',
            'max_parallel_workers_per_gather = 2',
          ]) {
            await sql`set local ${sql.raw(setting)}`.execute(trx);
          }
          const alone = (await sql<{ n: number }>`select count(*)::int as n from public.ips where auth0.to_inet(ip) << '10.0.0.0/8'`.execute(trx)).rows[0]?.n;
          // Beside a part of the same query that PostgreSQL would scan in parallel (the report's
          // per-tenant query has this shape): a parallel plan anywhere puts the whole query in
          // parallel mode, where the function's subtransaction is refused, so it is parallel unsafe.
          const beside = await sql<{ n: number; m: number }>`
            with a as (select count(*)::int as n from public.ips where ip like '1%'),
                 b as (select count(*)::int as m from public.ips where auth0.to_inet(ip || '/x') is null)
            select n, m from a, b`.execute(trx);
          return { alone, beside: beside.rows[0] };
        })
        .finally(() => sql`drop table public.ips`.execute(t.db));
      expect(count).toEqual({ alone: 20, beside: { n: expect.any(Number), m: 5000 } });
    }));
});

describe('scopes as text[] in the views', () => {
  it('answers scope-array queries per token and per audience', () =>
    withTenant(async ({ t, fake, sync }) => {
      fake.setUser('auth0|admin', [
        token('auth0|admin', 1, {
          resource_servers: [
            { audience: 'https://api.example.com/', scopes: 'openid  read:admin offline_access' },
            { audience: 'https://billing.example.com/', scopes: 'read:invoices' },
          ],
        }),
      ]);
      fake.setUser('auth0|plain', [token('auth0|plain', 1, { resource_servers: [{ audience: 'https://api.example.com/', scopes: 'openid' }] })]);
      fake.setUser('auth0|none', [token('auth0|none', 1, { resource_servers: [] })]);
      await loadUsers(t.db, ['auth0|admin', 'auth0|plain', 'auth0|none']);
      expect(await sync()).toBe(0);

      const active = await t.db.selectFrom('auth0.active_refresh_tokens').select(['user_id', 'audiences', 'scopes']).orderBy('user_id').execute();
      expect(active).toEqual([
        {
          user_id: 'auth0|admin',
          audiences: ['https://api.example.com/', 'https://billing.example.com/'],
          scopes: ['offline_access', 'openid', 'read:admin', 'read:invoices'],
        },
        { user_id: 'auth0|none', audiences: null, scopes: null },
        { user_id: 'auth0|plain', audiences: ['https://api.example.com/'], scopes: ['openid'] },
      ]);
      const admins = await sql<{ user_id: string }>`select user_id from auth0.active_refresh_tokens where 'read:admin' = any(scopes)`.execute(t.db);
      expect(admins.rows).toEqual([{ user_id: 'auth0|admin' }]);
      const perAudience = await sql<{ user_id: string; audience: string; scopes: string[] }>`
      select user_id, audience, scopes from auth0.refresh_token_scopes where scopes @> array['openid'] order by user_id, audience`.execute(t.db);
      expect(perAudience.rows).toEqual([
        { user_id: 'auth0|admin', audience: 'https://api.example.com/', scopes: ['openid', 'read:admin', 'offline_access'] },
        { user_id: 'auth0|plain', audience: 'https://api.example.com/', scopes: ['openid'] },
      ]);
    }));
});

describe('the migration', () => {
  it('down gives the views their text columns back with their comments, and up types them again', () =>
    withEmptyDatabase(async (t) => {
      const columnType = async (column: string) =>
        (
          await sql<{ data_type: string; comment: string | null }>`
          select data_type, col_description('auth0.active_refresh_tokens'::regclass, ordinal_position::int) as comment
          from information_schema.columns where table_schema = 'auth0' and table_name = 'active_refresh_tokens' and column_name = ${column}`.execute(t.db)
        ).rows[0];
      const provider = { getMigrations: async () => migrations };
      const migrator = new Migrator({ db: t.db, provider, migrationTableSchema: 'auth0' });
      const down = await migrator.migrateTo('2026_12_04_1900_change_reasons');
      expect(down.error).toBeUndefined();
      // Later migrations go down first; this one last.
      expect(down.results?.every((r) => r.direction === 'Down' && r.status === 'Success')).toBe(true);
      expect(down.results?.at(-1)?.migrationName).toBe('2026_12_04_1910_typed_columns');
      expect(await columnType('last_ip')).toEqual({ data_type: 'text', comment: 'IP address the token was last used from, as of the latest listing.' });
      expect(await columnType('scopes')).toBeUndefined();
      const functions = await sql<{ n: number }>`select count(*)::int as n from pg_proc where proname in ('to_inet', 'to_scopes')`.execute(t.db);
      expect(functions.rows).toEqual([{ n: 0 }]);
      const location = await sql<{
        comment: string | null;
      }>`select obj_description('auth0.refresh_tokens_location_changed'::regclass, 'pg_class') as comment`.execute(t.db);
      expect(location.rows[0]?.comment).toMatch(/^Active tokens/);

      const up = await migrator.migrateToLatest();
      expect(up.error).toBeUndefined();
      expect(await columnType('last_ip')).toMatchObject({ data_type: 'inet', comment: expect.stringContaining("last_ip << '10.0.0.0/8'") });
    }));
});
