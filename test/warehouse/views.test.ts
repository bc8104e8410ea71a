import { describe, expect, it } from '@jest/globals';
import { Migrator, sql, type Insertable, type Kysely } from 'kysely';
import { migrations } from '../../migrations/index.js';
import type { Database, RefreshTokenDevicesTable, RefreshTokensTable, ReportingViews } from '../../src/warehouse/schema.js';
import { TEST_TENANT, type TestDatabase } from '../helpers/db.js';
import { migrateToLatest } from '../../src/warehouse/migrate.js';
import { sharedDatabase } from '../helpers/fixtures.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;

const now = Date.now();
const at = (offset: number) => new Date(now + offset);

type Device = Omit<Insertable<RefreshTokenDevicesTable>, 'token_id' | 'tenant'>;
type Fixture = Partial<Insertable<RefreshTokensTable>> & { id: string; device?: Device };

/** Defaults: a live token, recently used, far from expiry, with no device row. */
const base = (f: Fixture): Insertable<RefreshTokensTable> => {
  const { device: _device, ...token } = f;
  return {
    tenant: TEST_TENANT,
    user_id: 'u-default',
    client_id: 'default',
    rotating: true,
    created_at: at(-DAY),
    last_exchanged_at: at(-HOUR),
    expires_at: at(90 * DAY),
    idle_expires_at: at(20 * DAY),
    raw: JSON.stringify({ id: f.id }),
    first_seen_at: at(-DAY),
    last_changed_at: at(-MINUTE),
    ...token,
  };
};
const moved = { initial_ip: '10.0.0.1', last_ip: '192.0.2.9', initial_asn: 'AS1', last_asn: 'AS666' };
const stayed = { initial_ip: '10.0.0.1', last_ip: '10.0.0.1', initial_asn: 'AS1', last_asn: 'AS1' };

const fixtures: Fixture[] = [
  // Not active: each would otherwise show in every view that its columns qualify it for.
  ...[
    { id: 'x-deleted', deleted_at: at(-DAY), expires_at: at(2 * DAY), last_exchanged_at: at(-MINUTE) },
    { id: 'x-expired', expires_at: at(-MINUTE), created_at: at(-400 * DAY), last_exchanged_at: at(-40 * DAY) },
    { id: 'x-idle', idle_expires_at: at(-MINUTE), expires_at: at(3 * DAY), last_exchanged_at: at(-40 * DAY) },
  ].map((f) => ({ ...f, user_id: 'u-gone', client_id: 'stats', rotating: false, device: moved })),

  // Per client: 'stats' has 1 of 3 rotating (null counts as not rotating), 'rotating' all.
  { id: 's1', user_id: 'u1', client_id: 'stats', rotating: true, created_at: at(-20 * DAY), last_exchanged_at: at(-3 * DAY) },
  { id: 's2', user_id: 'u1', client_id: 'stats', rotating: false, created_at: at(-10 * DAY), last_exchanged_at: at(-DAY) },
  { id: 's3', user_id: 'u2', client_id: 'stats', rotating: null, created_at: at(-5 * DAY), last_exchanged_at: null },
  { id: 'r1', user_id: 'u3', client_id: 'rotating', rotating: true },
  { id: 'r2', user_id: 'u4', client_id: 'rotating', rotating: true },
  { id: 'r3', user_id: 'u4', client_id: 'two-thirds', rotating: true },
  { id: 'r4', user_id: 'u4', client_id: 'two-thirds', rotating: true },
  { id: 'r5', user_id: 'u4', client_id: 'two-thirds', rotating: null },
  { id: 'n-no-client', user_id: 'u5', client_id: null, rotating: false },

  // Expiring within 7 days, or not.
  { id: 'e-absolute', client_id: 'expiry', expires_at: at(3 * DAY), idle_expires_at: at(6 * DAY) },
  { id: 'e-idle', client_id: 'expiry', expires_at: at(30 * DAY), idle_expires_at: at(2 * DAY) },
  { id: 'e-tie', client_id: 'expiry', expires_at: at(DAY), idle_expires_at: at(DAY) },
  { id: 'e-absolute-edge', client_id: 'expiry', expires_at: at(7 * DAY - HOUR), idle_expires_at: null },
  { id: 'e-idle-edge', client_id: 'expiry', expires_at: null, idle_expires_at: at(7 * DAY - HOUR) },
  { id: 'e-later', client_id: 'expiry', expires_at: at(7 * DAY + HOUR), idle_expires_at: at(8 * DAY) },
  { id: 'e-never', client_id: 'expiry', expires_at: null, idle_expires_at: null },

  // Device moves: ip only, asn only, both; half-known pairs are not compared.
  { id: 'l-ip', client_id: 'device', device: { ...moved, last_asn: 'AS1' } },
  { id: 'l-asn', client_id: 'device', device: { ...moved, last_ip: '10.0.0.1', initial_user_agent: 'A', last_user_agent: 'B' } },
  { id: 'l-both', user_id: 'u-victim', client_id: 'device', last_exchanged_at: at(-2 * HOUR), device: moved },
  { id: 'l-ip-unknown', client_id: 'device', device: { ...moved, initial_ip: null } },
  { id: 'l-last-ip-null', client_id: 'device', device: { ...stayed, last_ip: null } },
  { id: 'l-asn-half', client_id: 'device', device: { ...stayed, initial_asn: null, last_asn: 'AS2' } },
  { id: 'l-same', client_id: 'device', device: stayed },
  { id: 'l-agent-only', client_id: 'device', device: { ...stayed, initial_user_agent: 'A', last_user_agent: 'B' } },

  // Unused for 30 days, or not.
  { id: 'u-exchanged', client_id: 'unused', created_at: at(-60 * DAY), last_exchanged_at: at(-30 * DAY - HOUR) },
  { id: 'u-created', client_id: 'unused', created_at: at(-45 * DAY), last_exchanged_at: null },
  { id: 'u-edge', client_id: 'unused', created_at: at(-60 * DAY), last_exchanged_at: at(-30 * DAY + HOUR) },
  { id: 'u-recent', client_id: 'unused', created_at: at(-90 * DAY), last_exchanged_at: at(-DAY) },
  { id: 'u-unknown', client_id: 'unused', created_at: null, last_exchanged_at: null },
];
const inactive = ['x-deleted', 'x-expired', 'x-idle'];
const byId = new Map(fixtures.map((f) => [f.id, base(f)]));

async function idsOf(db: Kysely<Database>, view: keyof ReportingViews): Promise<string[]> {
  const rows = await db.selectFrom(view).select('id').orderBy('id').execute();
  return rows.map((r) => r.id);
}

/** The tokens above, their devices, and the users' sync states, written once for the file: the tests only read (the migration test drops and remakes the views). */
async function seed(t: TestDatabase): Promise<void> {
  await t.db.insertInto('auth0.refresh_tokens').values(fixtures.map(base)).execute();
  await t.db
    .insertInto('auth0.refresh_token_devices')
    .values(fixtures.filter((f) => f.device).map((f) => ({ tenant: TEST_TENANT, token_id: f.id, ...f.device })))
    .execute();
  // u1's listing was last confirmed complete a second ago; u3's last attempt failed after an
  // older success; u2 and the others have no state row (loaded by hand).
  await t.db
    .insertInto('auth0.user_sync_state')
    .values([
      { tenant: TEST_TENANT, user_id: 'u1', status: 'synced', last_attempt_at: at(-1000), last_success_at: at(-1000) },
      { tenant: TEST_TENANT, user_id: 'u3', status: 'failed', last_attempt_at: at(-1000), last_success_at: at(-HOUR), error_code: 'server_error' },
      { tenant: TEST_TENANT, user_id: 'u4', status: 'synced', last_attempt_at: at(-2000), last_success_at: at(-2000) },
    ])
    .execute();
}

const { withDatabase } = sharedDatabase({ seed });

describe('auth0.active_refresh_tokens', () => {
  it('holds every token but the deleted, expired and idle-expired ones', () =>
    withDatabase(async (t) => {
      const expected = fixtures
        .map((f) => f.id)
        .filter((id) => !inactive.includes(id))
        .sort();
      expect(await idsOf(t.db, 'auth0.active_refresh_tokens')).toEqual(expected);
    }));

  it('has every token column plus the device columns, null without a device row', () =>
    withDatabase(async (t) => {
      const [withDevice, withoutDevice] = await t.db
        .selectFrom('auth0.active_refresh_tokens')
        .selectAll()
        .where('id', 'in', ['l-both', 's1'])
        .orderBy('id')
        .execute();
      const token = await t.db.selectFrom('auth0.refresh_tokens').selectAll().where('id', '=', 's1').executeTakeFirstOrThrow();
      // The tenant leads (issue #23), then the token's own columns.
      const tokenColumns = ['tenant', ...Object.keys(token).filter((column) => column !== 'tenant')];
      const deviceColumns = ['initial_ip', 'initial_asn', 'initial_user_agent', 'last_ip', 'last_asn', 'last_user_agent'];
      // Since issue #22 the view also gives the token's audiences and scopes as text[].
      expect(Object.keys(withDevice!)).toEqual([...tokenColumns, 'last_seen_at', ...deviceColumns, 'audiences', 'scopes']);
      expect(withDevice).toMatchObject({ id: 'l-both', user_id: 'u-victim', deleted_at: null, ...moved, initial_user_agent: null });
      expect(withoutDevice).toMatchObject({ id: 's1', user_id: 'u1', client_id: 'stats', rotating: true, raw: { id: 's1' } });
      for (const column of deviceColumns) expect(withoutDevice![column as keyof typeof withoutDevice]).toBeNull();
    }));

  it("says a live token was last seen at its user's last successful sync, not at its last change", () =>
    withDatabase(async (t) => {
      const rows = await t.db
        .selectFrom('auth0.active_refresh_tokens')
        .select(['id', 'last_seen_at', 'last_changed_at'])
        .where('id', 'in', ['s1', 's2', 's3', 'r1', 'r2'])
        .orderBy('id')
        .execute();
      expect(rows).toEqual([
        // u3's last attempt failed; its last success is older than the row: never earlier than its write.
        { id: 'r1', last_seen_at: at(-MINUTE), last_changed_at: at(-MINUTE) },
        { id: 'r2', last_seen_at: at(-2000), last_changed_at: at(-MINUTE) },
        { id: 's1', last_seen_at: at(-1000), last_changed_at: at(-MINUTE) },
        { id: 's2', last_seen_at: at(-1000), last_changed_at: at(-MINUTE) },
        { id: 's3', last_seen_at: at(-MINUTE), last_changed_at: at(-MINUTE) }, // no state row: the last change
      ]);
    }));
});

describe('auth0.refresh_tokens_per_client', () => {
  it('counts active tokens and users, the rotating share and the date range per client', () =>
    withDatabase(async (t) => {
      const rows = await t.db.selectFrom('auth0.refresh_tokens_per_client').selectAll().orderBy('client_id').execute();
      const byClient = new Map(rows.map((r) => [r.client_id, r]));
      expect(rows.map((r) => r.client_id)).toEqual(['device', 'expiry', 'rotating', 'stats', 'two-thirds', 'unused', null]);
      expect(byClient.get('stats')).toEqual({
        tenant: TEST_TENANT,
        client_id: 'stats',
        active_tokens: 3,
        users: 2,
        rotating_share: '0.333',
        oldest_created_at: byId.get('s1')!.created_at,
        last_exchanged_at: byId.get('s2')!.last_exchanged_at,
      });
      expect(byClient.get('rotating')).toMatchObject({ active_tokens: 2, users: 2, rotating_share: '1.000' });
      expect(byClient.get('two-thirds')).toMatchObject({ active_tokens: 3, users: 1, rotating_share: '0.667' });
      expect(byClient.get('expiry')).toMatchObject({ active_tokens: 7, rotating_share: '1.000' });
      expect(byClient.get(null)).toMatchObject({ active_tokens: 1, users: 1, rotating_share: '0.000' });
    }));
});

describe('auth0.refresh_tokens_expiring_soon', () => {
  it('lists tokens expiring within 7 days, with the first expiry and its reason', () =>
    withDatabase(async (t) => {
      const rows = await t.db.selectFrom('auth0.refresh_tokens_expiring_soon').selectAll().orderBy('id').execute();
      const expected = (id: string, reason: 'absolute' | 'idle') => {
        const token = byId.get(id)!;
        const first = reason === 'absolute' ? token.expires_at : token.idle_expires_at;
        return {
          tenant: TEST_TENANT,
          id,
          user_id: 'u-default',
          client_id: 'expiry',
          expires_at: token.expires_at,
          idle_expires_at: token.idle_expires_at,
          expires_first_at: first,
          reason,
        };
      };
      expect(rows).toEqual([
        expected('e-absolute', 'absolute'),
        expected('e-absolute-edge', 'absolute'),
        expected('e-idle', 'idle'),
        expected('e-idle-edge', 'idle'),
        expected('e-tie', 'absolute'),
      ]);
    }));
});

describe('auth0.refresh_tokens_location_changed', () => {
  it('flags IP and ASN changes separately, only where both sides of a pair are known', () =>
    withDatabase(async (t) => {
      const rows = await t.db.selectFrom('auth0.refresh_tokens_location_changed').selectAll().orderBy('id').execute();
      expect(rows.map((r) => [r.id, r.ip_changed, r.asn_changed])).toEqual([
        ['l-asn', false, true],
        ['l-both', true, true],
        ['l-ip', true, false],
        ['l-ip-unknown', false, true],
      ]);
      expect(rows[1]).toEqual({
        tenant: TEST_TENANT,
        id: 'l-both',
        user_id: 'u-victim',
        client_id: 'device',
        ...moved,
        initial_user_agent: null,
        last_user_agent: null,
        last_exchanged_at: byId.get('l-both')!.last_exchanged_at,
        ip_changed: true,
        asn_changed: true,
      });
      expect(rows[0]).toMatchObject({ initial_user_agent: 'A', last_user_agent: 'B', last_ip: '10.0.0.1' });
    }));
});

describe('auth0.refresh_tokens_unused', () => {
  it('lists tokens not exchanged (or, never exchanged, not created) for 30 days', () =>
    withDatabase(async (t) => {
      const rows = await t.db
        .selectFrom('auth0.refresh_tokens_unused')
        .select(['id', 'client_id', 'created_at', 'last_exchanged_at', 'last_used_at'])
        .select(sql<number>`extract(epoch from unused_for)::float8 * 1000`.as('unused_ms'))
        .orderBy('id')
        .execute();
      expect(rows.map((r) => r.id)).toEqual(['u-created', 'u-exchanged']);
      const [created, exchanged] = rows;
      expect(created).toMatchObject({
        client_id: 'unused',
        last_exchanged_at: null,
        last_used_at: byId.get('u-created')!.created_at,
      });
      expect(exchanged).toMatchObject({ last_used_at: byId.get('u-exchanged')!.last_exchanged_at });
      expect(created!.unused_ms).toBeGreaterThanOrEqual(45 * DAY);
      expect(created!.unused_ms).toBeLessThan(45 * DAY + 5 * MINUTE);
      expect(exchanged!.unused_ms).toBeGreaterThanOrEqual(30 * DAY + HOUR);
      expect(exchanged!.unused_ms).toBeLessThan(30 * DAY + HOUR + 5 * MINUTE);
    }));
});

describe('the migration', () => {
  const viewNames = async (t: TestDatabase) => {
    const { rows } = await sql<{ name: string; comment: string | null }>`
      select c.relname as name, obj_description(c.oid, 'pg_class') as comment
      from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = 'auth0' and c.relkind = 'v' order by 1`.execute(t.db);
    return rows;
  };

  it('comments every view, and down drops them all so up can create them again', () =>
    withDatabase(async (t) => {
      const names = [
        'active_refresh_tokens',
        'active_sessions',
        'recent_token_changes',
        'refresh_token_deletions',
        'refresh_token_deletions_by_reason',
        'refresh_token_scopes',
        'refresh_tokens_expiring_soon',
        'refresh_tokens_location_changed',
        'refresh_tokens_outliving_session',
        'refresh_tokens_per_client',
        'refresh_tokens_unused',
        'refresh_tokens_with_session',
        'refresh_tokens_without_second_factor',
        'sessions_per_client',
        'sessions_per_device',
      ];
      const before = await viewNames(t);
      expect(before.map((v) => v.name)).toEqual(names);
      for (const view of before) expect(view.comment?.length).toBeGreaterThan(60);
      expect(before[0]!.comment).toMatch(/^Tokens that are live now: not deleted, not past expires_at/);

      const provider = { getMigrations: async () => migrations };
      const migrator = new Migrator({ db: t.db, provider, migrationTableSchema: 'auth0' });
      const down = await migrator.migrateTo('2026_11_26_1000_change_history');
      expect(down.error).toBeUndefined();
      expect(down.results?.map((r) => r.migrationName)).toContain('2026_11_26_1100_reporting_views');
      expect(await viewNames(t)).toEqual([]);

      // The rows are the test tenant's again once tenants come back (issue #23).
      const up = await migrateToLatest(t.db, { tenant: TEST_TENANT });
      expect(up.error).toBeUndefined();
      expect((await viewNames(t)).map((v) => v.name)).toEqual(names);
      expect(await idsOf(t.db, 'auth0.refresh_tokens_unused')).toEqual(['u-created', 'u-exchanged']);
    }));
});
