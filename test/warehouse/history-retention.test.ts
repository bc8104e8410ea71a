import { describe, expect, it } from '@jest/globals';
import type { Kysely } from 'kysely';
import type { Database } from '../../src/warehouse/schema.js';
import pg from 'pg';
import { pruneHistory, PRUNE_LOCK_KEY, type PruneResult } from '../../src/warehouse/history-retention.js';
import { TEST_TENANT, type TestDatabase } from '../helpers/db.js';
import { sharedDatabase } from '../helpers/fixtures.js';
import { atFrom, DAY, HOUR, insertChange, insertToken, liveAt } from '../helpers/history.js';

const now = Date.now();
const at = atFrom(now);
/** Moments inside a 3-day window, where as-of must answer the same after pruning. */
const inside = [at(-3 * DAY + HOUR), at(-2 * DAY), at(-1.5 * DAY), at(-12 * HOUR), new Date(now)];

async function insertRun(
  db: Kysely<Database>,
  runs: Record<string, number>,
  name: string,
  status: 'succeeded' | 'partial' | 'failed' | 'running',
  startedAt: Date,
): Promise<void> {
  const row = await db
    .insertInto('auth0.sync_runs')
    .values({ tenant: TEST_TENANT, trigger: 'schedule', status, started_at: startedAt, finished_at: status === 'running' ? null : startedAt })
    .returning('id')
    .executeTakeFirstOrThrow();
  runs[name] = row.id;
}

/**
 * History over ten days; pruned to 3 days (the window opens 3 days ago):
 * - a: live since 10 days ago; its created and exchanged rows are old.
 * - b: deleted 5 days ago, never back.
 * - c: deleted 6 days ago, restored 4 days ago: live through the window.
 * - d: deleted 5 days ago, restored a day ago: deleted when the window opened.
 * - e: deleted 8 and restored 7 days ago, deleted again 2.5 days ago.
 *
 * Each test gets that history written and pruned once in an emptied database (one for the file):
 * `runs` names the run ids, `asOfBefore` is what as-of answered before, `pruned` what the pruning said.
 */
const { withEmptyDatabase } = sharedDatabase();
function withPrunedHistory(
  use: (w: { t: TestDatabase; runs: Record<string, number>; asOfBefore: string[][]; pruned: PruneResult }) => Promise<void>,
): Promise<void> {
  return withEmptyDatabase(async (t) => {
    const { db } = t;
    const runs: Record<string, number> = {};
    await insertRun(db, runs, 'firstSeen', 'succeeded', at(-10 * DAY));
    await insertRun(db, runs, 'onlyOldChanges', 'succeeded', at(-9 * DAY));
    await insertRun(db, runs, 'stuck', 'running', at(-9 * DAY));
    await insertRun(db, runs, 'userState', 'failed', at(-8 * DAY));
    await insertRun(db, runs, 'lease', 'failed', at(-8 * DAY));
    await insertRun(db, runs, 'unreferenced', 'failed', at(-7 * DAY));
    await insertRun(db, runs, 'keptChange', 'succeeded', at(-5 * DAY));
    await insertRun(db, runs, 'lastSucceeded', 'succeeded', at(-4 * DAY));
    await insertRun(db, runs, 'recent', 'partial', at(-HOUR));

    await insertToken(db, { id: 'a', first_seen_at: at(-10 * DAY), first_seen_run_id: runs.firstSeen });
    await insertChange(db, 'a', 'created', at(-10 * DAY), { run_id: runs.firstSeen });
    await insertChange(db, 'a', 'exchanged', at(-9 * DAY), { run_id: runs.onlyOldChanges });
    await insertChange(db, 'a', 'exchanged', at(-HOUR), { run_id: runs.recent });
    await insertToken(db, { id: 'b', first_seen_at: at(-9 * DAY), deleted_at: at(-5 * DAY) });
    await insertChange(db, 'b', 'created', at(-9 * DAY), { run_id: runs.onlyOldChanges });
    await insertChange(db, 'b', 'deleted', at(-5 * DAY), { run_id: runs.onlyOldChanges });
    await insertToken(db, { id: 'c', first_seen_at: at(-9 * DAY) });
    await insertChange(db, 'c', 'deleted', at(-6 * DAY));
    await insertChange(db, 'c', 'restored', at(-4 * DAY));
    await insertToken(db, { id: 'd', first_seen_at: at(-9 * DAY) });
    await insertChange(db, 'd', 'deleted', at(-5 * DAY), { run_id: runs.keptChange });
    await insertChange(db, 'd', 'restored', at(-DAY), { run_id: runs.recent });
    await insertToken(db, { id: 'e', first_seen_at: at(-9 * DAY), deleted_at: at(-2.5 * DAY) });
    await insertChange(db, 'e', 'deleted', at(-8 * DAY));
    await insertChange(db, 'e', 'restored', at(-7 * DAY));
    await insertChange(db, 'e', 'deleted', at(-2.5 * DAY));

    await db
      .insertInto('auth0.user_sync_state')
      .values({ tenant: TEST_TENANT, user_id: 'u-a', status: 'failed', last_attempt_at: at(-8 * DAY), last_run_id: runs.userState })
      .execute();
    await db.insertInto('auth0.run_lease').values({ tenant: TEST_TENANT, run_id: runs.lease }).execute();

    const asOfBefore = await Promise.all(inside.map((moment) => liveAt(db, moment)));
    const pruned = (await pruneHistory(db, 3))!;
    await use({ t, runs, asOfBefore, pruned });
  });
}

describe('pruneHistory', () => {
  it('answers as-of the same inside the window before and after pruning', () =>
    withPrunedHistory(async ({ t, asOfBefore, pruned }) => {
      // d was deleted when the window opened: only its 5-day-old row says so.
      expect(asOfBefore).toEqual([
        ['a', 'c', 'e'],
        ['a', 'c'],
        ['a', 'c'],
        ['a', 'c', 'd'],
        ['a', 'c', 'd'],
      ]);
      expect(pruned.cutoff.getTime()).toBeGreaterThan(at(-3 * DAY - HOUR).getTime());
      expect(await Promise.all(inside.map((moment) => liveAt(t.db, moment)))).toEqual(asOfBefore);
    }));

  it('deleted the old change rows but the state in force when the window opened', () =>
    withPrunedHistory(async ({ t }) => {
      const rows = await t.db.selectFrom('auth0.refresh_token_changes').select(['token_id', 'change']).orderBy('observed_at').execute();
      expect(rows).toEqual([
        { token_id: 'e', change: 'restored' }, // 7 days ago, in force at the cutoff (its live_since)
        { token_id: 'd', change: 'deleted' }, // 5 days ago, in force at the cutoff, restored since
        { token_id: 'c', change: 'restored' }, // 4 days ago, in force at the cutoff
        { token_id: 'e', change: 'deleted' }, // 2.5 days ago, inside the window
        { token_id: 'd', change: 'restored' },
        { token_id: 'a', change: 'exchanged' },
      ]);
    }));

  it('deletes old runs nothing names, never a running one', () =>
    withPrunedHistory(async ({ t, runs }) => {
      const left = new Set((await t.db.selectFrom('auth0.sync_runs').select('id').execute()).map((r) => r.id));
      const kept = Object.entries(runs)
        .filter(([, id]) => left.has(id))
        .map(([name]) => name)
        .sort();
      // lastSucceeded: the worker reads the last success at start, however old it is.
      expect(kept).toEqual(['firstSeen', 'keptChange', 'lastSucceeded', 'lease', 'recent', 'stuck', 'userState']);
    }));

  it('deletes nothing more on a second pass', () =>
    withPrunedHistory(async ({ t }) => {
      const again = (await pruneHistory(t.db, 3))!;
      expect(again.changesDeleted).toBe(0);
      expect(again.runsDeleted).toBe(0);
    }));

  it('leaves the work to the process already pruning (issue #23: every worker replica prunes)', () =>
    withPrunedHistory(async ({ t }) => {
      await insertChange(t.db, 'a', 'exchanged', at(-10 * DAY));
      const other = new pg.Client({ connectionString: t.url });
      await other.connect();
      try {
        await other.query('begin');
        await other.query('select pg_advisory_xact_lock($1, $2)', [PRUNE_LOCK_KEY.classId, PRUNE_LOCK_KEY.objectId]);
        expect(await pruneHistory(t.db, 3)).toBeUndefined();
        await other.query('commit');
      } finally {
        await other.end();
      }
      expect((await pruneHistory(t.db, 3))!.changesDeleted).toBe(1);
    }));

  it('refuses a retention below one day', () =>
    withPrunedHistory(async ({ t }) => {
      await expect(pruneHistory(t.db, 0)).rejects.toThrow('whole number of days from 1');
    }));
});
