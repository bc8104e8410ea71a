import { describe, expect, it } from '@jest/globals';
import { sql } from 'kysely';
import type { RefreshTokenAsOfRow } from '../../src/warehouse/schema.js';
import { TEST_TENANT, type TestDatabase } from '../helpers/db.js';
import { sharedDatabase } from '../helpers/fixtures.js';
import { atFrom, DAY, HOUR, insertChange, insertToken, liveAt } from '../helpers/history.js';

const now = Date.now();
const at = atFrom(now);

/**
 * A scripted history, written straight into the tables:
 * - a: seen 10 days ago, live throughout; moved IP 3 hours ago, exchanged 2 hours ago.
 * - b: seen 5 days ago, deleted 2 days ago.
 * - c: seen 8 days ago, deleted 6 days ago, restored 3 days ago: live now (deleted_at cleared).
 * - d: seen 8 days ago, deleted 6 days ago, restored 4 days ago, deleted again 20 hours ago.
 * - e: seen an hour ago.
 * - f: seen 10 days ago, expired 2 days ago (never deleted).
 * - g: seen 10 days ago, idle-expired 4 days ago.
 * - h: seen 9.5 days ago, deleted 7 days ago, with no change rows (loaded by hand).
 */
async function writeHistory({ db }: TestDatabase): Promise<void> {
  await insertToken(db, { id: 'a', first_seen_at: at(-10 * DAY) });
  await insertChange(db, 'a', 'created', at(-10 * DAY));
  await insertChange(db, 'a', 'last_ip_changed', at(-3 * HOUR), { old_value: '10.0.0.1', new_value: '192.0.2.9' });
  await insertChange(db, 'a', 'exchanged', at(-2 * HOUR), { old_value: 'x', new_value: 'y' });
  await insertToken(db, { id: 'b', first_seen_at: at(-5 * DAY - HOUR), deleted_at: at(-2 * DAY) });
  await insertChange(db, 'b', 'created', at(-5 * DAY - HOUR));
  await insertChange(db, 'b', 'deleted', at(-2 * DAY));
  await insertToken(db, { id: 'c', first_seen_at: at(-8 * DAY) });
  await insertChange(db, 'c', 'created', at(-8 * DAY));
  await insertChange(db, 'c', 'deleted', at(-6 * DAY));
  await insertChange(db, 'c', 'restored', at(-3 * DAY));
  await insertToken(db, { id: 'd', first_seen_at: at(-8 * DAY), deleted_at: at(-20 * HOUR) });
  await insertChange(db, 'd', 'created', at(-8 * DAY));
  await insertChange(db, 'd', 'deleted', at(-6 * DAY));
  await insertChange(db, 'd', 'restored', at(-4 * DAY));
  await insertChange(db, 'd', 'deleted', at(-20 * HOUR));
  await insertToken(db, { id: 'e', first_seen_at: at(-HOUR) });
  await insertChange(db, 'e', 'created', at(-HOUR));
  await insertToken(db, { id: 'f', first_seen_at: at(-10 * DAY), expires_at: at(-2 * DAY) });
  await insertToken(db, { id: 'g', first_seen_at: at(-10 * DAY), idle_expires_at: at(-4 * DAY) });
  await insertToken(db, { id: 'h', first_seen_at: at(-9.5 * DAY), deleted_at: at(-7 * DAY) });
  await db.insertInto('auth0.users').values({ tenant: TEST_TENANT, user_id: 'u-a', email: 'a@example.com' }).execute();
}

const { withDatabase } = sharedDatabase({ seed: writeHistory });

describe('auth0.refresh_tokens_as_of', () => {
  it('returns the tokens live at each moment of the scripted history', () =>
    withDatabase(async (t) => {
      expect(await liveAt(t.db, at(-11 * DAY))).toEqual([]);
      expect(await liveAt(t.db, at(-9 * DAY))).toEqual(['a', 'f', 'g', 'h']);
      expect(await liveAt(t.db, at(-5 * DAY))).toEqual(['a', 'b', 'f', 'g']);
      expect(await liveAt(t.db, at(-3.5 * DAY))).toEqual(['a', 'b', 'd', 'f']);
      expect(await liveAt(t.db, at(-1.5 * DAY))).toEqual(['a', 'c', 'd']);
      expect(await liveAt(t.db, at(-10 * HOUR))).toEqual(['a', 'c']);
      expect(await liveAt(t.db, new Date(now))).toEqual(['a', 'c', 'e']);
    }));

  it('counts a change from the moment the sync observed it', () =>
    withDatabase(async (t) => {
      expect(await liveAt(t.db, at(-2 * DAY - 1))).toContain('b');
      expect(await liveAt(t.db, at(-2 * DAY))).not.toContain('b');
      expect(await liveAt(t.db, at(-3 * DAY - 1))).not.toContain('c');
      expect(await liveAt(t.db, at(-3 * DAY))).toContain('c');
    }));

  it('agrees with auth0.active_refresh_tokens at now()', () =>
    withDatabase(async (t) => {
      const { rows } = await sql<{ same: boolean }>`
      select (select array_agg(id order by id) from auth0.refresh_tokens_as_of(now()))
           = (select array_agg(id order by id) from auth0.active_refresh_tokens) as same`.execute(t.db);
      expect(rows[0]?.same).toBe(true);
    }));

  it('says since when each token was live: first seen, or its restoration', () =>
    withDatabase(async (t) => {
      const rows = await t.db
        .selectFrom(sql<RefreshTokenAsOfRow>`auth0.refresh_tokens_as_of(${at(-1.5 * DAY)})`.as('t'))
        .select(['id', 'live_since', 'deleted_at'])
        .orderBy('id')
        .execute();
      expect(rows).toEqual([
        { id: 'a', live_since: at(-10 * DAY), deleted_at: null },
        { id: 'c', live_since: at(-3 * DAY), deleted_at: null },
        { id: 'd', live_since: at(-4 * DAY), deleted_at: at(-20 * HOUR) },
      ]);
    }));
});

describe('auth0.recent_token_changes', () => {
  it('lists the last 24 hours of changes, exchanges left out, with user and client', () =>
    withDatabase(async (t) => {
      const rows = await t.db
        .selectFrom('auth0.recent_token_changes')
        .select(['change', 'token_id', 'user_id', 'email', 'client_id', 'old_value', 'new_value'])
        .orderBy('observed_at')
        .execute();
      expect(rows).toEqual([
        { change: 'deleted', token_id: 'd', user_id: 'u-d', email: null, client_id: 'app', old_value: null, new_value: null },
        { change: 'last_ip_changed', token_id: 'a', user_id: 'u-a', email: 'a@example.com', client_id: 'app', old_value: '10.0.0.1', new_value: '192.0.2.9' },
        { change: 'created', token_id: 'e', user_id: 'u-e', email: null, client_id: 'app', old_value: null, new_value: null },
      ]);
    }));
});
