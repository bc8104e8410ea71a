import { describe, expect, it } from '@jest/globals';
import { main } from '../../src/cli/main.js';
import { captureIo, cliDeps, loadUsers, type TestDatabase } from '../helpers/db.js';
import { withFakeTenant, withTestDatabase } from '../helpers/fixtures.js';
import { expectWarehouseMatchesApi } from '../helpers/warehouse.js';
import { envFor, generateTenant, type FakeAuth0 } from '../helpers/fake-auth0.js';

// Issue #23: two tenants synced into one warehouse. Both sandboxes come from the same seed, so
// their user ids and token ids are the same: only the tenant tells their rows apart.

// Dates around now: the tokens are live, so their loss is not explained by expiry (the deletion guard counts it).
const SEED = { users: 60, seed: 23, datesAround: Date.now() };

async function sync(t: TestDatabase, fake: FakeAuth0, tenant: string, extra: Record<string, string> = {}, args: string[] = []) {
  const out = captureIo();
  const code = await main(['sync', ...args], envFor(fake, t.url, { AUTH0_TENANT_NAME: tenant, SYNC_PAGE_SIZE: '50', ...extra }), out.io, cliDeps(t));
  return { code, ...out };
}

function withTwoTenants(use: (t: TestDatabase, eu: FakeAuth0, us: FakeAuth0) => Promise<void>): Promise<void> {
  return withTestDatabase((t) =>
    withFakeTenant((eu) =>
      withFakeTenant(async (us) => {
        for (const fake of [eu, us]) for (const [userId, tokens] of generateTenant(SEED)) fake.setUser(userId, tokens);
        await loadUsers(t.db, eu.users.keys(), 'eu');
        await loadUsers(t.db, us.users.keys(), 'us');
        await use(t, eu, us);
      }),
    ),
  );
}

const countsByTenant = async (t: TestDatabase) =>
  Object.fromEntries(
    (
      await t.db
        .selectFrom('auth0.refresh_tokens')
        .select((eb) => ['tenant', eb.fn.countAll<string>().as('all'), eb.fn.count<string>('deleted_at').as('deleted')])
        .groupBy('tenant')
        .execute()
    ).map((row) => [row.tenant, { all: Number(row.all), deleted: Number(row.deleted) }]),
  );

describe('two tenants in one warehouse', () => {
  it("syncs each tenant's sandbox into its own rows, at the same time, with the same ids in both", () =>
    withTwoTenants(async (t, eu, us) => {
      const [a, b] = await Promise.all([sync(t, eu, 'eu'), sync(t, us, 'us')]);
      expect([a.code, a.stderr, b.code, b.stderr]).toEqual([0, [], 0, []]);
      await expectWarehouseMatchesApi(t.db, eu, 'eu');
      await expectWarehouseMatchesApi(t.db, us, 'us');
      const total = [...eu.users.values()].flat().length;
      expect(total).toBeGreaterThan(0);
      expect(await countsByTenant(t)).toEqual({ eu: { all: total, deleted: 0 }, us: { all: total, deleted: 0 } });
      const runs = await t.db.selectFrom('auth0.sync_runs').select(['tenant', 'status', 'users_synced']).orderBy('tenant').execute();
      expect(runs).toEqual([
        { tenant: 'eu', status: 'succeeded', users_synced: 60 },
        { tenant: 'us', status: 'succeeded', users_synced: 60 },
      ]);
      const states = await t.db
        .selectFrom('auth0.user_sync_state')
        .select((eb) => ['tenant', eb.fn.countAll<string>().as('n')])
        .groupBy('tenant')
        .orderBy('tenant')
        .execute();
      expect(states.map((s) => [s.tenant, Number(s.n)])).toEqual([
        ['eu', 60],
        ['us', 60],
      ]);
    }));

  it("a deletion in one tenant never touches the other's rows with the same ids, and its guard stops only its own run", () =>
    withTwoTenants(async (t, eu, us) => {
      expect((await sync(t, eu, 'eu')).code).toBe(0);
      expect((await sync(t, us, 'us')).code).toBe(0);
      const total = [...eu.users.values()].flat().length;

      // One user revoked everything in us: its tokens go in us only.
      const [userId, tokens] = [...us.users.entries()].find(([, held]) => held.length >= 2)!;
      us.setUser(userId, []);
      expect((await sync(t, us, 'us')).code).toBe(0);
      expect(await countsByTenant(t)).toEqual({ eu: { all: total, deleted: 0 }, us: { all: total, deleted: tokens.length } });
      await expectWarehouseMatchesApi(t.db, eu, 'eu');
      await expectWarehouseMatchesApi(t.db, us, 'us');

      // us answers empty lists for everyone: its deletion guard stops its run; eu is untouched,
      // and eu's next sync is measured against eu's tokens alone.
      for (const id of [...us.users.keys()]) us.setUser(id, []);
      const stopped = await sync(t, us, 'us', { SYNC_MAX_DELETE_RATIO: '0.1', SYNC_DELETE_GUARD_MIN: '5' });
      expect(stopped.code).toBe(1);
      const usRun = await t.db.selectFrom('auth0.sync_runs').selectAll().where('tenant', '=', 'us').orderBy('id', 'desc').executeTakeFirstOrThrow();
      expect(usRun).toMatchObject({ status: 'failed', delete_guard_tripped: true });
      expect(await countsByTenant(t)).toEqual({ eu: { all: total, deleted: 0 }, us: { all: total, deleted: tokens.length } });
      expect((await sync(t, eu, 'eu', { SYNC_MAX_DELETE_RATIO: '0.1', SYNC_DELETE_GUARD_MIN: '5' })).code).toBe(0);
      await expectWarehouseMatchesApi(t.db, eu, 'eu');
    }));

  it("holds one tenant's run lock without blocking the other's run", () =>
    withTwoTenants(async (t, eu, us) => {
      // A run of eu in progress elsewhere: its lock held on another connection.
      const pg = (await import('pg')).default;
      const holder = new pg.Client({ connectionString: t.url });
      await holder.connect();
      try {
        const { RUN_LOCK_KEY } = await import('../../src/warehouse/run-lock.js');
        await holder.query('select pg_advisory_lock($1, hashtext($2))', [RUN_LOCK_KEY.classId, 'eu']);
        const blocked = await sync(t, eu, 'eu');
        expect(blocked.code).toBe(3);
        const free = await sync(t, us, 'us');
        expect([free.code, free.stderr]).toEqual([0, []]);
        await expectWarehouseMatchesApi(t.db, us, 'us');
      } finally {
        await holder.end();
      }
    }));

  it("follows each tenant's logs from its own checkpoint, and a change in one tenant syncs that tenant only", () =>
    withTwoTenants(async (t, eu, us) => {
      expect((await sync(t, eu, 'eu')).code).toBe(0);
      expect((await sync(t, us, 'us')).code).toBe(0);
      // First follows: each tenant's checkpoint starts at its own newest entry.
      expect((await sync(t, eu, 'eu', {}, ['--from-logs'])).code).toBe(0);
      expect((await sync(t, us, 'us', {}, ['--from-logs'])).code).toBe(0);
      const checkpoints = await t.db.selectFrom('auth0.log_checkpoint').select(['tenant', 'log_id']).orderBy('tenant').execute();
      expect(checkpoints.map((c) => [c.tenant, c.log_id])).toEqual([
        ['eu', eu.logs.newestId()],
        ['us', us.logs.newestId()],
      ]);
      // A revocation in us (logged there): the follow of us syncs that user in us; eu keeps its token.
      const [userId, tokens] = [...us.users.entries()].find(([, held]) => held.length >= 1)!;
      us.setUser(userId, tokens.slice(1));
      expect((await sync(t, us, 'us', {}, ['--from-logs'])).code).toBe(0);
      expect((await sync(t, eu, 'eu', {}, ['--from-logs'])).code).toBe(0);
      const copies = await t.db
        .selectFrom('auth0.refresh_tokens')
        .select(['tenant', 'deleted_at'])
        .where('id', '=', String(tokens[0]!.id))
        .orderBy('tenant')
        .execute();
      expect(copies.map((c) => [c.tenant, c.deleted_at === null])).toEqual([
        ['eu', true],
        ['us', false],
      ]);
      const logRuns = await t.db.selectFrom('auth0.sync_runs').select(['tenant', 'users_synced']).where('trigger', '=', 'logs').execute();
      expect(logRuns).toEqual([{ tenant: 'us', users_synced: 1 }]);
      await expectWarehouseMatchesApi(t.db, eu, 'eu');
      await expectWarehouseMatchesApi(t.db, us, 'us');
    }));
});
