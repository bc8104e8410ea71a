import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { sql, type Kysely } from 'kysely';
import { main } from '../../src/cli/main.js';
import type { Database } from '../../src/warehouse/schema.js';
import { readUserIdsByStaleness } from '../../src/source/user-ids.js';
import { captureIo, cliDeps, loadUsers, TEST_TENANT, type TestDatabase } from '../helpers/db.js';
import { sharedDatabase, withTempDir } from '../helpers/fixtures.js';
import { configFor, envFor, generateTenant, makeToken, type Auth0TokenJson, type FakeAuth0 } from '../helpers/fake-auth0.js';
import { expectWarehouseMatchesApi } from '../helpers/warehouse.js';

/** What a test works with: its emptied database, its fake tenant, a temporary directory, and helpers bound to them. */
function world(t: TestDatabase, fake: FakeAuth0, dir: string) {
  /** A tenant of `users` users (`auth0|user000001`...), loaded into the fake API and the source table. */
  async function tenantOf(users: number, seed = 5): Promise<Map<string, Auth0TokenJson[]>> {
    const tenant = generateTenant({ users, seed });
    for (const [userId, tokens] of tenant) fake.setUser(userId, tokens);
    await loadUsers(t.db, tenant.keys());
    return tenant;
  }

  /** A user that is in the source table and the API but has never been synced. */
  async function addUser(userId: string, tokens = 1): Promise<void> {
    fake.setUser(
      userId,
      Array.from({ length: tokens }, (_, n) => makeToken(userId, n)),
    );
    await loadUsers(t.db, [userId]);
  }

  async function sync(args: string[] = []) {
    const out = captureIo();
    const code = await main(['sync', ...args], envFor(fake, t.url), out.io, cliDeps(t));
    return { code, ...out };
  }

  /** A run that must succeed; returns its sync_runs row. */
  async function syncOk(args: string[] = []) {
    const result = await sync(args);
    expect(result.stderr).toEqual([]);
    expect(result.code).toBe(0);
    return lastRun();
  }

  const lastRun = () => t.db.selectFrom('auth0.sync_runs').selectAll().orderBy('id', 'desc').executeTakeFirstOrThrow();
  const runCount = async () => (await t.db.selectFrom('auth0.sync_runs').select('id').execute()).length;

  /** The users a run touched: user_sync_state.last_run_id is the last run that attempted each user. */
  async function usersOfRun(runId: number): Promise<string[]> {
    const rows = await t.db.selectFrom('auth0.user_sync_state').select('user_id').where('last_run_id', '=', runId).orderBy('user_id').execute();
    return rows.map((r) => r.user_id);
  }

  async function setLastSuccess(userId: string, at: Date | null): Promise<void> {
    const { numUpdatedRows } = await t.db
      .updateTable('auth0.user_sync_state')
      .set({ last_success_at: at })
      .where('user_id', '=', userId)
      .executeTakeFirstOrThrow();
    expect(Number(numUpdatedRows)).toBe(1);
  }

  return { t, fake, dir, tenantOf, addUser, sync, syncOk, lastRun, runCount, usersOfRun, setLastSuccess };
}

const { withEmptyDatabaseAndTenant } = sharedDatabase();
function withTenant(use: (w: ReturnType<typeof world>) => Promise<void>): Promise<void> {
  return withEmptyDatabaseAndTenant((t, fake) => withTempDir((dir) => use(world(t, fake, dir)), 'backfill-test-'));
}
const hoursAgo = (h: number) => new Date(Date.now() - h * 3_600_000);
const sorted = (ids: Iterable<string>) => [...ids].sort();

describe('--user and --users-file', () => {
  it('--user (repeatable) syncs exactly the named users, once each, as a backfill run', () =>
    withTenant(async ({ tenantOf, syncOk, usersOfRun }) => {
      const ids = [...(await tenantOf(10)).keys()];
      const full = await syncOk();
      expect(full).toMatchObject({ trigger: 'manual', args: null, users_total: 10 });

      const run = await syncOk(['--user', ids[6]!, '--user', ids[2]!, '--user', ids[6]!]);
      expect(run).toMatchObject({
        trigger: 'backfill',
        status: 'succeeded',
        args: { users: [ids[6], ids[2]] },
        users_total: 2,
        users_synced: 2,
      });
      expect(await usersOfRun(run.id)).toEqual(sorted([ids[2]!, ids[6]!]));
      expect(await usersOfRun(full.id)).toEqual(sorted(ids.filter((_, i) => i !== 2 && i !== 6)));
    }));

  it('--users-file reads one ID per line, skipping blank and # lines, each ID once', () =>
    withTenant(async ({ dir, tenantOf, syncOk, usersOfRun }) => {
      const ids = [...(await tenantOf(10)).keys()];
      const full = await syncOk();
      const file = path.join(dir, 'users.txt');
      await writeFile(file, ['# backfill for ticket 42', '', ids[1], `  ${ids[4]}  `, '', '#' + ids[5], ids[1], ids[8], ''].join('\n'));

      const run = await syncOk(['--users-file', file]);
      expect(run).toMatchObject({ trigger: 'backfill', status: 'succeeded', args: { usersFile: file }, users_synced: 3 });
      expect(await usersOfRun(run.id)).toEqual(sorted([ids[1]!, ids[4]!, ids[8]!]));
      expect(await usersOfRun(full.id)).toHaveLength(7);
    }));

  it('--users-file with CRLF line endings and --user together: the union, each ID once', () =>
    withTenant(async ({ dir, tenantOf, syncOk, usersOfRun }) => {
      const ids = [...(await tenantOf(10)).keys()];
      await syncOk();
      const file = path.join(dir, 'users-crlf.txt');
      await writeFile(file, `${ids[3]}\r\n#${ids[9]}\r\n${ids[7]}\r\n`);

      const run = await syncOk(['--user', ids[7]!, '--users-file', file, '--user', ids[0]!]);
      expect(run).toMatchObject({ trigger: 'backfill', args: { users: [ids[7], ids[0]], usersFile: file }, users_synced: 3 });
      expect(await usersOfRun(run.id)).toEqual(sorted([ids[0]!, ids[3]!, ids[7]!]));
    }));

  it('--users-file naming a missing file exits 64 (usage) naming the flag, and syncs nobody', () =>
    withTenant(async ({ t, dir, tenantOf, sync }) => {
      await tenantOf(3);
      const { code, stderr } = await sync(['--users-file', path.join(dir, 'no-such-file.txt')]);
      expect(code).toBe(64);
      expect(stderr.join('\n')).toContain('--users-file');
      expect(await t.db.selectFrom('auth0.user_sync_state').select('user_id').execute()).toEqual([]);
    }));
});

describe('--only-failed', () => {
  it('retries exactly the users whose last sync failed, whatever the reason', () =>
    withTenant(async ({ t, fake, tenantOf, sync, syncOk, lastRun, usersOfRun }) => {
      const tenant = await tenantOf(12);
      const ids = [...tenant.keys()];
      const [badRequest, serverError] = [ids[2]!, ids[9]!]; // both answered 400: not retried, so the run stays fast
      const [malformed, malformedTokens] = [...tenant.entries()].find(([id, tokens]) => tokens.length >= 1 && id !== badRequest && id !== serverError)!;
      fake.intercept((ctx) => {
        if (ctx.userId === badRequest) return { status: 400, body: '{"statusCode":400,"message":"Bad user id"}' };
        if (ctx.userId === serverError) return { status: 400, body: '{"statusCode":400,"message":"Invalid query"}' };
        return undefined;
      });
      fake.setUser(malformed, [{ ...malformedTokens[0]!, created_at: 'yesterday' }]);

      const first = await sync();
      expect(first.code).toBe(2);
      const failedRun = await lastRun();
      expect(failedRun).toMatchObject({ status: 'partial', users_failed: 3 });
      const failed = sorted([badRequest, serverError, malformed]);
      const failedNow = await t.db.selectFrom('auth0.user_sync_state').select('user_id').where('status', '=', 'failed').orderBy('user_id').execute();
      expect(failedNow.map((r) => r.user_id)).toEqual(failed);

      // Fixed: only those three are attempted.
      fake.intercept(undefined);
      fake.setUser(malformed, malformedTokens);
      const retry = await syncOk(['--only-failed']);
      expect(retry).toMatchObject({ trigger: 'backfill', status: 'succeeded', args: { onlyFailed: true }, users_total: 3, users_synced: 3 });
      expect(await usersOfRun(retry.id)).toEqual(failed);
      expect(await usersOfRun(failedRun.id)).toHaveLength(9);
      await expectWarehouseMatchesApi(t.db, fake);

      // Nobody is failing any more: the next --only-failed run touches nobody.
      const empty = await syncOk(['--only-failed']);
      expect(empty).toMatchObject({ trigger: 'backfill', users_total: 0, users_synced: 0 });
      expect(await usersOfRun(empty.id)).toEqual([]);
    }));
});

describe('--stale', () => {
  it('--stale 1h syncs exactly the source users without a successful sync in the last hour', () =>
    withTenant(async ({ tenantOf, addUser, syncOk, usersOfRun, setLastSuccess }) => {
      const ids = [...(await tenantOf(10)).keys()];
      const full = await syncOk();
      await setLastSuccess(ids[1]!, hoursAgo(2));
      await setLastSuccess(ids[6]!, hoursAgo(30));
      await setLastSuccess(ids[4]!, hoursAgo(0.5)); // synced recently enough
      await setLastSuccess(ids[8]!, null); // attempted, never successful
      const newcomer = 'auth0|newcomer';
      await addUser(newcomer); // never synced at all

      const run = await syncOk(['--stale', '1h']);
      const expected = sorted([ids[1]!, ids[6]!, ids[8]!, newcomer]);
      expect(run).toMatchObject({ trigger: 'backfill', status: 'succeeded', args: { stale: '1h' }, users_total: 4, users_synced: 4 });
      expect(await usersOfRun(run.id)).toEqual(expected);
      expect(await usersOfRun(full.id)).toEqual(sorted(ids.filter((id) => !expected.includes(id))));
    }));

  it('--stale DATE syncs exactly the source users without a successful sync since that date', () =>
    withTenant(async ({ tenantOf, syncOk, usersOfRun, setLastSuccess }) => {
      const ids = [...(await tenantOf(8)).keys()];
      const full = await syncOk();
      const day = 86_400_000;
      const since = new Date(Date.now() - 10 * day).toISOString().slice(0, 10); // YYYY-MM-DD, midnight UTC
      await setLastSuccess(ids[0]!, new Date(Date.now() - 20 * day));
      await setLastSuccess(ids[3]!, new Date(Date.parse(since) - 1000)); // a second before: stale
      await setLastSuccess(ids[5]!, new Date(Date.parse(since) + 1000)); // a second after: fresh
      await setLastSuccess(ids[7]!, new Date(Date.now() - 5 * day));

      const run = await syncOk(['--stale', since]);
      const expected = sorted([ids[0]!, ids[3]!]);
      expect(run).toMatchObject({ trigger: 'backfill', args: { stale: since }, users_total: 2, users_synced: 2 });
      expect(await usersOfRun(run.id)).toEqual(expected);
      expect(await usersOfRun(full.id)).toHaveLength(6);
    }));
});

describe('--max-users: a budgeted source run goes stalest first', () => {
  it('takes never-synced users first, then the least recently synced, and records users_total = N', () =>
    withTenant(async ({ tenantOf, addUser, syncOk, usersOfRun, setLastSuccess }) => {
      const ids = [...(await tenantOf(10)).keys()];
      await syncOk();
      // Explicit, distinct staleness: ids[3] oldest, then ids[7], ids[0], then the rest by index.
      const hours = new Map<string, number>(ids.map((id, i) => [id, 10 - i]));
      hours.set(ids[3]!, 50).set(ids[7]!, 40).set(ids[0]!, 30);
      for (const [id, h] of hours) await setLastSuccess(id, hoursAgo(h));
      await addUser('auth0|new-b');
      await addUser('auth0|new-a');

      const run = await syncOk(['--max-users', '5']);
      expect(run).toMatchObject({ trigger: 'manual', status: 'succeeded', args: { maxUsers: 5 }, users_total: 5, users_synced: 5 });
      expect(await usersOfRun(run.id)).toEqual(sorted(['auth0|new-a', 'auth0|new-b', ids[3]!, ids[7]!, ids[0]!]));

      // The next budgeted run takes the next five stalest: the rotation covers the tenant in turn.
      const next = await syncOk(['--max-users', '5']);
      expect(next).toMatchObject({ users_total: 5, users_synced: 5 });
      expect(await usersOfRun(next.id)).toEqual(sorted([ids[1]!, ids[2]!, ids[4]!, ids[5]!, ids[6]!]));
      // Then the last two never rotated, then three of the first run's (synced at about the same time).
      const third = await syncOk(['--max-users', '5']);
      const thirdUsers = await usersOfRun(third.id);
      expect(thirdUsers).toHaveLength(5);
      expect(thirdUsers).toEqual(expect.arrayContaining([ids[8]!, ids[9]!]));
      const firstUsers = ['auth0|new-a', 'auth0|new-b', ids[3]!, ids[7]!, ids[0]!];
      expect(thirdUsers.filter((id) => id !== ids[8] && id !== ids[9]).every((id) => firstUsers.includes(id))).toBe(true);
    }));

  it('counts a user whose syncs always failed as never synced', () =>
    withTenant(async ({ t, tenantOf, syncOk, usersOfRun, setLastSuccess }) => {
      const ids = [...(await tenantOf(6)).keys()];
      await syncOk();
      for (const [i, id] of ids.entries()) await setLastSuccess(id, hoursAgo(10 - i));
      await setLastSuccess(ids[5]!, null);
      await t.db
        .updateTable('auth0.user_sync_state')
        .set({ status: 'failed', error_code: 'server_error', error: 'down' })
        .where('user_id', '=', ids[5]!)
        .execute();
      const run = await syncOk(['--max-users', '2']);
      expect(run).toMatchObject({ users_total: 2 });
      expect(await usersOfRun(run.id)).toEqual(sorted([ids[5]!, ids[0]!]));
    }));

  // Regression: the keyset cursor was read back as a JS Date (milliseconds) while now() has
  // microseconds, so every page boundary repeated a user.
  it('pages through stale users without repeating one across a page boundary (microsecond timestamps)', () =>
    withTenant(async ({ t, fake, tenantOf, syncOk }) => {
      const ids = [...(await tenantOf(5)).keys()];
      await syncOk();
      for (const [i, id] of ids.entries()) {
        await sql`update auth0.user_sync_state set last_success_at = timestamptz '2026-01-01 00:00:00.000123+00' + ${i} * interval '1 second'
                where user_id = ${id}`.execute(t.db);
      }
      const source = configFor(fake, t.url).source;
      const seen: string[] = [];
      for await (const id of readUserIdsByStaleness(t.db, { tenant: TEST_TENANT, source }, new Date(), 2)) seen.push(id);
      expect(seen).toEqual(ids);
    }));
});

/** Every row of every auth0 table, in primary key order, as jsonb text; and every sequence. */
async function snapshot(db: Kysely<Database>): Promise<Record<string, string[]>> {
  const tables = await sql<{ name: string }>`
    select table_name as name from information_schema.tables
    where table_schema = 'auth0' and table_type = 'BASE TABLE' order by table_name
  `.execute(db);
  const out: Record<string, string[]> = {};
  for (const { name } of tables.rows) {
    const pk = await sql<{ col: string }>`
      select a.attname as col from pg_index i
      join pg_attribute a on a.attrelid = i.indrelid and a.attnum = any(i.indkey)
      where i.indrelid = ${`auth0.${name}`}::regclass and i.indisprimary
      order by array_position(i.indkey::int2[], a.attnum)
    `.execute(db);
    const order = pk.rows.length > 0 ? sql.join(pk.rows.map((r) => sql.ref(`t.${r.col}`))) : sql`1`;
    const rows = await sql<{ row: string }>`select to_jsonb(t)::text as row from ${sql.table(`auth0.${name}`)} t order by ${order}, 1`.execute(db);
    out[name] = rows.rows.map((r) => r.row);
  }
  const sequences = await sql<{ row: string }>`
    select concat_ws(' ', sequencename, last_value) as row from pg_sequences where schemaname = 'auth0' order by sequencename
  `.execute(db);
  out['(sequences)'] = sequences.rows.map((r) => r.row);
  return out;
}

describe('--dry-run', () => {
  it('prints what a sync would do and leaves the database byte for byte unchanged', () =>
    withTenant(async ({ t, fake, tenantOf, sync, syncOk, runCount }) => {
      const tenant = await tenantOf(12);
      const entries = [...tenant.entries()].filter(([, tokens]) => tokens.length >= 2);
      expect(entries.length).toBeGreaterThanOrEqual(4);
      type Entry = [string, Auth0TokenJson[]];
      const [[revokeUser, revokeTokens], [changeUser, changeTokens], [addUserId, addTokens], [goneUser, goneTokens]] = entries as [Entry, Entry, Entry, Entry];
      await syncOk();
      // A failing user too, so user_sync_state holds a failed row with an error.
      const failing = [...tenant.keys()].find((id) => ![revokeUser, changeUser, addUserId, goneUser].includes(id))!;
      fake.intercept((ctx) => (ctx.userId === failing ? { status: 400, body: '{"statusCode":400,"message":"Bad user id"}' } : undefined));
      expect((await sync()).code).toBe(2);
      fake.intercept(undefined);

      fake.setUser(revokeUser, revokeTokens.slice(1));
      fake.setUser(changeUser, [{ ...changeTokens[0]!, last_exchanged_at: '2026-11-25T10:00:00.000Z' }, ...changeTokens.slice(1)]);
      fake.setUser(addUserId, [...addTokens, makeToken(addUserId, 999)]);
      fake.deleteUser(goneUser);

      const before = await snapshot(t.db);
      const runsBefore = await runCount();
      expect(before['refresh_tokens']!.length).toBeGreaterThan(10);
      expect(before['user_sync_state']).toHaveLength(12);

      const { code, stdout, stderr } = await sync(['--dry-run']);
      expect(stderr).toEqual([]);
      expect(code).toBe(0);
      const line = stdout.find((l) => l.startsWith('Dry run'));
      expect(line).toBe(
        `Dry run over 12 users (1 gone from Auth0, 0 failed): would add 1, change 1 and mark deleted ${1 + goneTokens.length} tokens. Nothing was written.`,
      );
      expect(await runCount()).toBe(runsBefore);
      expect(await snapshot(t.db)).toEqual(before);
    }));

  it('with a backfill selection writes nothing either, and reports only the named users', () =>
    withTenant(async ({ t, fake, tenantOf, sync, syncOk }) => {
      const tenant = await tenantOf(6);
      await syncOk();
      const [user, tokens] = [...tenant.entries()].find(([, list]) => list.length >= 1)!;
      fake.setUser(user, [...tokens, makeToken(user, 500), makeToken(user, 501)]);
      const before = await snapshot(t.db);

      const { code, stdout } = await sync(['--dry-run', '--user', user]);
      expect(code).toBe(0);
      expect(stdout.find((l) => l.startsWith('Dry run'))).toBe(
        'Dry run over 1 user (0 gone from Auth0, 0 failed): would add 2, change 0 and mark deleted 0 tokens. Nothing was written.',
      );
      expect(await snapshot(t.db)).toEqual(before);
    }));

  it('on an empty warehouse writes nothing, not even run or user state', () =>
    withTenant(async ({ t, tenantOf, sync, runCount }) => {
      await tenantOf(4);
      const before = await snapshot(t.db);
      const { code, stdout } = await sync(['--dry-run']);
      expect(code).toBe(0);
      expect(stdout.some((l) => l.startsWith('Dry run over 4 users'))).toBe(true);
      expect(await snapshot(t.db)).toEqual(before);
      expect(await runCount()).toBe(0);
    }));
});

describe('flags that do not fit', () => {
  it.each([[['--only-failed', '--stale', '1h']], [['--user', 'auth0|x', '--only-failed']], [['--users-file', '/dev/null', '--stale', '2026-11-01']]])(
    '%j exits 64 (usage) with one line, before touching the database',
    (args) =>
      withTenant(async ({ tenantOf, sync, runCount }) => {
        await tenantOf(2);
        const { code, stderr, stdout } = await sync(args);
        expect(code).toBe(64);
        expect(stderr).toHaveLength(1);
        expect(stderr[0]).not.toContain('\n');
        expect(stderr[0]).toMatch(/--only-failed.*--stale|--stale.*--only-failed/);
        expect(stdout).toEqual([]);
        expect(await runCount()).toBe(0);
      }),
  );

  it.each([['yesterday'], ['1 hour'], ['2026-13-45']])('--stale %s exits 64 (usage) naming --stale', (value) =>
    withTenant(async ({ tenantOf, sync, runCount }) => {
      await tenantOf(2);
      const { code, stderr } = await sync(['--stale', value]);
      expect(code).toBe(64);
      expect(stderr).toHaveLength(1);
      expect(stderr[0]).toContain('--stale');
      expect(stderr[0]).toContain(value);
      expect(await runCount()).toBe(0);
    }),
  );

  it.each([
    [['--max-users', '0'], '--max-users'],
    [['--max-users', 'ten'], '--max-users'],
    [['--max-duration', 'soon'], '--max-duration'],
    [['--max-duration', '0s'], '--max-duration'],
  ])('%j exits 64 (usage) naming the flag', (args, flag) =>
    withTenant(async ({ tenantOf, sync, runCount }) => {
      await tenantOf(2);
      const { code, stderr } = await sync(args);
      expect(code).toBe(64);
      expect(stderr).toHaveLength(1);
      expect(stderr[0]).toContain(flag);
      expect(await runCount()).toBe(0);
    }),
  );
});
