import { describe, expect, it } from '@jest/globals';
import { sql } from 'kysely';
import { main } from '../../src/cli/main.js';
import { captureIo, cliDeps, loadUsers, type TestDatabase } from '../helpers/db.js';
import { sharedDatabase } from '../helpers/fixtures.js';
import { envFor, makeToken, type Auth0TokenJson, type FakeAuth0 } from '../helpers/fake-auth0.js';
import { expectWarehouseMatchesApi } from '../helpers/warehouse.js';

const ALICE = 'auth0|alice';
const BOB = 'auth0|bob';
const CAROL = 'auth0|carol';

const laptop = {
  initial_ip: '10.0.0.1',
  initial_asn: '64496',
  initial_user_agent: 'Mozilla/5.0 (Macintosh)',
  last_ip: '10.0.0.2',
  last_asn: '64496',
  last_user_agent: 'Mozilla/5.0 (Macintosh)',
};
const token = (userId: string, n: number, overrides: Auth0TokenJson = {}) =>
  makeToken(userId, n, { device: laptop, last_exchanged_at: '2026-11-20T08:00:00.000Z', ...overrides });

// Alice: a1 is revoked in run 3 and comes back in run 4; a2 is exchanged in run 3; a3 is used
// from a new IP in run 3. Bob is deleted from Auth0 in run 3. Carol never changes.
const a1 = token(ALICE, 1);
const a2 = token(ALICE, 2, { device: undefined });
const a3 = token(ALICE, 3);
const b1 = token(BOB, 1);
const b2 = token(BOB, 2, { last_exchanged_at: null });
const c1 = token(CAROL, 1);

const a2Exchanged = { ...a2, last_exchanged_at: '2026-11-26T07:30:00.000Z' };
const a3Moved = { ...a3, device: { ...laptop, last_ip: '203.0.113.50' } };

/** What a test works with: its emptied database, its fake tenant, and helpers bound to both. */
function world(t: TestDatabase, fake: FakeAuth0) {
  async function sync(args: string[] = []) {
    const out = captureIo();
    const code = await main(['sync', ...args], envFor(fake, t.url), out.io, cliDeps(t));
    expect(out.stderr).toEqual([]);
    expect(code).toBe(0);
    return t.db.selectFrom('auth0.sync_runs').selectAll().orderBy('id', 'desc').executeTakeFirstOrThrow();
  }

  type Row = { token_id: string; change: string; old_value: string | null; new_value: string | null; run_id: number | null };

  /** The history rows of one run, in a stable order. */
  async function changesOf(runId: number): Promise<Row[]> {
    return t.db
      .selectFrom('auth0.refresh_token_changes')
      .select(['token_id', 'change', 'old_value', 'new_value', 'run_id'])
      .where('run_id', '=', runId)
      .orderBy('token_id')
      .orderBy('change')
      .execute();
  }

  const allChanges = () => t.db.selectFrom('auth0.refresh_token_changes').selectAll().orderBy('id').execute();

  const row = (tok: Auth0TokenJson, change: string, runId: number, old_value: string | null = null, new_value: string | null = null): Row => ({
    token_id: String(tok.id),
    change,
    old_value,
    new_value,
    run_id: runId,
  });
  const byToken = (rows: Row[]) => [...rows].sort((x, y) => (x.token_id + x.change < y.token_id + y.change ? -1 : 1));

  /** What changes in the tenant before each scripted run (index 0: before run 1). */
  const script: Array<() => Promise<void> | void> = [
    async () => {
      fake.setUser(ALICE, [a1, a2, a3]);
      fake.setUser(BOB, [b1, b2]);
      fake.setUser(CAROL, [c1]);
      await loadUsers(t.db, [ALICE, BOB, CAROL]);
    },
    () => {},
    () => {
      fake.setUser(ALICE, [a2Exchanged, a3Moved]);
      fake.deleteUser(BOB);
    },
    () => fake.setUser(ALICE, [a1, a2Exchanged, a3Moved]),
    () => fake.setUser(BOB, [b2]),
  ];

  /** Run `n` of the script: its tenant change, then a sync. */
  async function scriptedRun(n: number) {
    await script[n - 1]!();
    return sync();
  }

  /** Replays runs 1..n of the script (each test's starting point); returns their run ids. */
  async function runsThrough(n: number): Promise<number[]> {
    const runs: number[] = [];
    for (let i = 1; i <= n; i++) runs.push((await scriptedRun(i)).id);
    return runs;
  }

  return { t, fake, sync, changesOf, allChanges, row, byToken, script, scriptedRun, runsThrough };
}

// Each test gets an emptied database and a fresh tenant; the scripted runs it starts from are replayed
// (runsThrough below), so no test depends on another having run first.
const { withEmptyDatabaseAndTenant } = sharedDatabase();
function withTenant(use: (w: ReturnType<typeof world>) => Promise<void>): Promise<void> {
  return withEmptyDatabaseAndTenant(async (t, fake) => {
    await use(world(t, fake));
  });
}
describe('change history over a scripted sequence of runs', () => {
  it('run 1: one `created` row per token, nothing else', () =>
    withTenant(async ({ changesOf, allChanges, row, byToken, scriptedRun }) => {
      const run = await scriptedRun(1);
      expect(run).toMatchObject({ tokens_added: 6, tokens_changed: 0, tokens_deleted: 0 });
      expect(await changesOf(run.id)).toEqual(byToken([a1, a2, a3, b1, b2, c1].map((tok) => row(tok, 'created', run.id))));
      expect(await allChanges()).toHaveLength(6);
      // Rows carry the user and the time they were observed, within the run.
      for (const change of await allChanges()) {
        expect(change.user_id).toBe([a1, a2, a3, b1, b2, c1].find((x) => x.id === change.token_id)?.user_id);
        expect(change.observed_at.getTime()).toBeGreaterThanOrEqual(run.started_at.getTime());
        expect(change.observed_at.getTime()).toBeLessThanOrEqual(run.finished_at!.getTime());
      }
    }));

  it('run 2: nothing changed, no new rows', () =>
    withTenant(async ({ changesOf, allChanges, scriptedRun, runsThrough }) => {
      await runsThrough(1);
      const run = await scriptedRun(2);
      expect(run).toMatchObject({ status: 'succeeded', tokens_added: 0, tokens_changed: 0, tokens_deleted: 0 });
      expect(await changesOf(run.id)).toEqual([]);
      expect(await allChanges()).toHaveLength(6);
    }));

  it('run 3: a revocation, an exchange, a new IP and a deleted user, each with old and new values', () =>
    withTenant(async ({ t, fake, changesOf, allChanges, row, byToken, scriptedRun, runsThrough }) => {
      await runsThrough(2);
      const run = await scriptedRun(3); // Alice: a1 revoked, a2 exchanged, a3 from a new IP; Bob deleted.
      expect(run).toMatchObject({ users_synced: 2, users_not_found: 1, tokens_added: 0, tokens_changed: 2, tokens_deleted: 3 });
      expect(await changesOf(run.id)).toEqual(
        byToken([
          row(a1, 'deleted', run.id),
          row(a2, 'exchanged', run.id, '2026-11-20T08:00:00.000Z', '2026-11-26T07:30:00.000Z'),
          row(a3, 'last_ip_changed', run.id, '10.0.0.2', '203.0.113.50'),
          row(b1, 'deleted', run.id),
          row(b2, 'deleted', run.id),
        ]),
      );
      expect(await allChanges()).toHaveLength(11);
      await expectWarehouseMatchesApi(t.db, fake);
    }));

  it('run 4: the revoked token comes back: one `restored` row, and nothing again for the deleted user', () =>
    withTenant(async ({ t, fake, changesOf, allChanges, row, scriptedRun, runsThrough }) => {
      await runsThrough(3);
      const run = await scriptedRun(4); // Alice's a1 is back.
      expect(run).toMatchObject({ users_not_found: 1, tokens_added: 0, tokens_changed: 1, tokens_deleted: 0 });
      expect(await changesOf(run.id)).toEqual([row(a1, 'restored', run.id)]);
      expect(await allChanges()).toHaveLength(12);
      await expectWarehouseMatchesApi(t.db, fake);
    }));

  it('run 5: a deleted user comes back with one of its tokens: that one is restored, the other stays deleted', () =>
    withTenant(async ({ t, changesOf, row, scriptedRun, runsThrough }) => {
      await runsThrough(4);
      const run = await scriptedRun(5); // Bob is back with b2 only.
      expect(await changesOf(run.id)).toEqual([row(b2, 'restored', run.id)]);
      expect(
        (await t.db.selectFrom('auth0.refresh_tokens').select('deleted_at').where('id', '=', String(b1.id)).executeTakeFirstOrThrow()).deleted_at,
      ).toBeInstanceOf(Date);
    }));

  it('answers "tokens revoked per day" and "where was this token used from"', () =>
    withTenant(async ({ t, runsThrough }) => {
      const runs = await runsThrough(5);
      const perDay = await sql<{ day: Date; n: number; today: Date }>`
      select date_trunc('day', observed_at) as day, count(*)::int as n, date_trunc('day', now()) as today
      from auth0.refresh_token_changes where change = 'deleted' group by 1
    `.execute(t.db);
      expect(perDay.rows).toHaveLength(1);
      expect(perDay.rows[0]!.n).toBe(3);
      expect(perDay.rows[0]!.day).toEqual(perDay.rows[0]!.today);

      const whereFrom = await t.db
        .selectFrom('auth0.refresh_token_changes')
        .select(['change', 'old_value', 'new_value', 'run_id'])
        .where('token_id', '=', String(a3.id))
        .orderBy('observed_at')
        .orderBy('id')
        .execute();
      expect(whereFrom).toEqual([
        { change: 'created', old_value: null, new_value: null, run_id: runs[0] },
        { change: 'last_ip_changed', old_value: '10.0.0.2', new_value: '203.0.113.50', run_id: runs[2] },
      ]);

      // The whole timeline of a1: created, deleted, restored.
      const a1Timeline = await t.db
        .selectFrom('auth0.refresh_token_changes')
        .select(['change', 'run_id'])
        .where('token_id', '=', String(a1.id))
        .orderBy('id')
        .execute();
      expect(a1Timeline).toEqual([
        { change: 'created', run_id: runs[0] },
        { change: 'deleted', run_id: runs[2] },
        { change: 'restored', run_id: runs[3] },
      ]);
    }));

  it('records ASN and user agent changes too, and only the fields that moved', () =>
    withTenant(async ({ fake, sync, changesOf, row, byToken, runsThrough }) => {
      await runsThrough(1);
      fake.setUser(CAROL, [{ ...c1, device: { ...laptop, last_asn: '64511', last_user_agent: 'okhttp/4.12' } }]);
      const run = await sync(['--user', CAROL]);
      expect(await changesOf(run.id)).toEqual(
        byToken([row(c1, 'last_asn_changed', run.id, '64496', '64511'), row(c1, 'last_user_agent_changed', run.id, 'Mozilla/5.0 (Macintosh)', 'okhttp/4.12')]),
      );
    }));
});

describe('a listing without a device', () => {
  const DAVE = 'auth0|dave';
  const d1 = token(DAVE, 1);

  // Regression: a listing without a device drops the device row, and the same device seen
  // again was compared with NULLs and recorded as three changes.
  it('records nothing when the same device shows up again after a listing without one', () =>
    withTenant(async ({ t, fake, sync, changesOf, row }) => {
      fake.setUser(DAVE, [d1]);
      await loadUsers(t.db, [DAVE]);
      const first = await sync(['--user', DAVE]);
      expect(await changesOf(first.id)).toEqual([row(d1, 'created', first.id)]);

      fake.setUser(DAVE, [{ ...d1, device: undefined }]);
      const without = await sync(['--user', DAVE]);
      expect(await changesOf(without.id)).toEqual([]);

      fake.setUser(DAVE, [d1]);
      const again = await sync(['--user', DAVE]);
      expect(await changesOf(again.id)).toEqual([]);
    }));
});
