import { describe, expect, it } from '@jest/globals';
import { sql } from 'kysely';
import { main } from '../../src/cli/main.js';
import { captureIo, cliDeps, loadUsers, type TestDatabase } from '../helpers/db.js';
import { envFor, makeToken, type Auth0TokenJson, type FakeAuth0 } from '../helpers/fake-auth0.js';
import { sharedDatabase } from '../helpers/fixtures.js';
import { expectWarehouseMatchesApi } from '../helpers/warehouse.js';

// Issue #14: a pass in which nothing changed rewrites no token, device or resource-server row;
// a change rewrites exactly the rows it concerns. Row versions are told apart by xmin (the
// transaction that wrote the version) and xmax (set by an update, a deletion or a row lock).

// An emptied database (one clone for the file) and a fresh tenant per test; each builds the runs
// it starts from (syncedOnce, changeAliceAndBob), so no test depends on another having run first.
const { withEmptyDatabaseAndTenant } = sharedDatabase();

const ALICE = 'auth0|alice';
const BOB = 'auth0|bob';
const CAROL = 'auth0|carol';
const phone = { initial_ip: '10.0.0.1', initial_asn: '64496', initial_user_agent: 'App/1', last_ip: '10.0.0.2', last_asn: '64496', last_user_agent: 'App/1' };
const servers = [
  { audience: 'https://api.example.com/', scopes: 'read:orders' },
  { audience: 'https://billing.example.com/', scopes: 'read:invoices' },
];
type Token = Auth0TokenJson & { id: string };
const token = (userId: string, n: number, overrides: Auth0TokenJson = {}): Token =>
  makeToken(userId, n, {
    device: phone,
    resource_servers: servers,
    last_exchanged_at: '2026-11-20T08:00:00.000Z',
    // Live in the views for years to come.
    expires_at: '2099-01-01T00:00:00.000Z',
    idle_expires_at: '2099-01-01T00:00:00.000Z',
    ...overrides,
  }) as Token;

const a1 = token(ALICE, 1);
const a2 = token(ALICE, 2, { device: undefined });
const b1 = token(BOB, 1);
const b2 = token(BOB, 2);
const c1 = token(CAROL, 1);
const listings = (): [string, Auth0TokenJson[]][] => [
  [ALICE, [a1, a2]],
  [BOB, [b1, b2]],
  [CAROL, [c1]],
];

/** Every token, device and resource-server row version, keyed `table:key`. */
async function versions(t: TestDatabase): Promise<Map<string, string>> {
  const { rows } = await sql<{ key: string; version: string }>`
    select 'token:' || id as key, xmin::text || '/' || xmax::text as version from auth0.refresh_tokens
    union all select 'device:' || token_id, xmin::text || '/' || xmax::text from auth0.refresh_token_devices
    union all select 'server:' || token_id || ' ' || audience, xmin::text || '/' || xmax::text from auth0.refresh_token_resource_servers
  `.execute(t.db);
  return new Map(rows.map((r) => [r.key, r.version]));
}

/** The keys whose row version (xmin) differs between two snapshots, plus rows added or gone. */
function rewritten(before: Map<string, string>, after: Map<string, string>): string[] {
  const xmin = (v: string | undefined) => v?.split('/')[0];
  const keys = new Set([...before.keys(), ...after.keys()]);
  return [...keys].filter((k) => xmin(before.get(k)) !== xmin(after.get(k))).sort();
}

async function sync(t: TestDatabase, fake: FakeAuth0) {
  const out = captureIo();
  const code = await main(['sync'], envFor(fake, t.url), out.io, cliDeps(t));
  expect(out.stderr).toEqual([]);
  expect(code).toBe(0);
  return t.db.selectFrom('auth0.sync_runs').selectAll().orderBy('id', 'desc').executeTakeFirstOrThrow();
}

const lastSeen = async (t: TestDatabase) => {
  return t.db
    .selectFrom('auth0.active_refresh_tokens as v')
    .innerJoin('auth0.user_sync_state as s', 's.user_id', 'v.user_id')
    .select(['v.id', 'v.last_seen_at', 's.last_success_at'])
    .orderBy('v.id')
    .execute();
};

/** The three users in the source table and the tenant, synced once. */
async function syncedOnce(t: TestDatabase, fake: FakeAuth0) {
  for (const [userId, tokens] of listings()) fake.setUser(userId, tokens);
  await loadUsers(t.db, [ALICE, BOB, CAROL]);
  return sync(t, fake);
}

/** Alice's a1 changes a field and a2 gains a device; Bob's b1 changes a scope and b2 is revoked. */
function changeAliceAndBob(fake: FakeAuth0) {
  fake.setUser(ALICE, [
    { ...a1, client_id: 'another-app' },
    { ...a2, device: phone },
  ]);
  fake.setUser(BOB, [{ ...b1, resource_servers: [servers[0], { ...servers[1], scopes: 'read:invoices write:invoices' }] }]);
}

describe('quiet writes', () => {
  it("a second identical sync writes no token, device or resource-server row, and only the users' state", () =>
    withEmptyDatabaseAndTenant(async (t, fake) => {
      await syncedOnce(t, fake);
      const before = await versions(t);
      expect(before.size).toBe(5 + 4 + 10);
      const stateBefore = await t.db.selectFrom('auth0.user_sync_state').selectAll().orderBy('user_id').execute();

      const run = await sync(t, fake);
      // Not rewritten, and not even locked (a lock would set xmax).
      expect(await versions(t)).toEqual(before);
      expect(run).toMatchObject({ tokens_seen: 5, tokens_added: 0, tokens_changed: 0, tokens_deleted: 0 });
      const history = await t.db.selectFrom('auth0.refresh_token_changes').select('id').where('run_id', '=', run.id).execute();
      expect(history).toEqual([]);
      // The attempt is recorded once per user, and last seen moves with it.
      const stateAfter = await t.db.selectFrom('auth0.user_sync_state').selectAll().orderBy('user_id').execute();
      expect(stateAfter.map((s) => s.last_run_id)).toEqual([run.id, run.id, run.id]);
      for (const [i, s] of stateAfter.entries()) expect(s.last_success_at!.getTime()).toBeGreaterThan(stateBefore[i]!.last_success_at!.getTime());
      const seen = await lastSeen(t);
      expect(seen).toHaveLength(5);
      for (const row of seen) expect(row.last_seen_at).toEqual(row.last_success_at);
      await expectWarehouseMatchesApi(t.db, fake);
    }));

  it('rewrites exactly the rows a changed field, a new device, a changed scope and a deletion concern', () =>
    withEmptyDatabaseAndTenant(async (t, fake) => {
      await syncedOnce(t, fake);
      const before = await versions(t);
      const firstSeen = (await lastSeen(t)).find((r) => r.id === c1.id)!;
      changeAliceAndBob(fake);

      const run = await sync(t, fake);
      expect(rewritten(before, await versions(t))).toEqual(
        [
          `token:${a1.id}`, // changed field: the token row only; its device and servers are as they were
          `token:${a2.id}`, // new device: the token (its raw) and the new device row
          `device:${a2.id}`,
          `token:${b1.id}`, // changed scope: the token and that one resource-server row
          `server:${b1.id} https://billing.example.com/`,
          `token:${b2.id}`, // deleted: the token row only (device and servers kept as last seen)
        ].sort(),
      );
      expect(run).toMatchObject({ tokens_added: 0, tokens_changed: 3, tokens_deleted: 1 });
      const changed = await t.db
        .selectFrom('auth0.refresh_tokens')
        .select(['id', 'last_changed_run_id'])
        .where('last_changed_run_id', '=', run.id)
        .orderBy('id')
        .execute();
      expect(changed.map((r) => r.id)).toEqual([a1.id, a2.id, b1.id, b2.id].sort());
      await expectWarehouseMatchesApi(t.db, fake);

      // Carol's token was not rewritten, yet the views say it was seen by this run.
      const carol = (await lastSeen(t)).find((r) => r.id === c1.id)!;
      expect(carol.last_seen_at).toEqual(carol.last_success_at);
      expect(carol.last_seen_at.getTime()).toBeGreaterThan(firstSeen.last_seen_at.getTime());
      expect((await lastSeen(t)).map((r) => r.id)).not.toContain(b2.id);
    }));

  it('rewrites only the token row of a restored token', () =>
    withEmptyDatabaseAndTenant(async (t, fake) => {
      await syncedOnce(t, fake);
      changeAliceAndBob(fake);
      await sync(t, fake); // b2 revoked
      const before = await versions(t);
      fake.setUser(BOB, [{ ...b1, resource_servers: [servers[0], { ...servers[1], scopes: 'read:invoices write:invoices' }] }, b2]);
      const run = await sync(t, fake);
      expect(rewritten(before, await versions(t))).toEqual([`token:${b2.id}`]);
      expect(run).toMatchObject({ tokens_added: 0, tokens_changed: 1, tokens_deleted: 0 });
      const restored = await t.db.selectFrom('auth0.refresh_tokens').selectAll().where('id', '=', b2.id).executeTakeFirstOrThrow();
      expect(restored).toMatchObject({ deleted_at: null, last_changed_run_id: run.id });
      const seen = (await lastSeen(t)).find((r) => r.id === b2.id)!;
      expect(seen.last_seen_at).toEqual(seen.last_success_at);
      await expectWarehouseMatchesApi(t.db, fake);

      // And once more, nothing: no row rewritten or locked.
      const settled = await versions(t);
      await sync(t, fake);
      expect(await versions(t)).toEqual(settled);
    }));
});
