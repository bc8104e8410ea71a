import { describe, expect, it } from '@jest/globals';
import { sql } from 'kysely';
import pg from 'pg';
import { describeLogId } from '../../src/auth0/log-id.js';
import { main } from '../../src/cli/main.js';
import { RUN_LOCK_KEY } from '../../src/warehouse/run-lock.js';
import { formatStatus } from '../../src/status/format-status.js';
import { readStatus } from '../../src/status/read-status.js';
import { captureIo, cliDeps, itServer, loadUsers, sourceOf, TEST_TENANT, type TestDatabase } from '../helpers/db.js';
import { sharedDatabase } from '../helpers/fixtures.js';
import { envFor, generateTenant, makeToken, type Auth0TokenJson, type FakeAuth0 } from '../helpers/fake-auth0.js';
import { expectWarehouseMatchesApi } from '../helpers/warehouse.js';

/** What a test works with: its emptied database, its fake tenant (counting its list requests per user), and helpers bound to them. */
function world(t: TestDatabase, fake: FakeAuth0, listed: Map<string, number>) {
  async function cli(args: string[]) {
    const out = captureIo();
    const code = await main(args, envFor(fake, t.url), out.io, cliDeps(t));
    return { code, ...out };
  }
  const follow = () => cli(['sync', '--from-logs']);
  const checkpoint = () => t.db.selectFrom('auth0.log_checkpoint').selectAll().executeTakeFirst();
  const runs = () => t.db.selectFrom('auth0.sync_runs').selectAll().orderBy('id').execute();
  async function usersOfRun(runId: number): Promise<string[]> {
    const rows = await t.db.selectFrom('auth0.user_sync_state').select('user_id').where('last_run_id', '=', runId).orderBy('user_id').execute();
    return rows.map((r) => r.user_id);
  }

  /** A tenant of `n` users, fully synced, with the log follower started at the newest entry. */
  async function syncedTenant(n = 20) {
    const tenant = generateTenant({ users: n, seed: 3, maxTokensPerUser: 3 });
    for (const [userId, tokens] of tenant) fake.setUser(userId, tokens.length > 0 ? tokens : [makeToken(userId, 0)]);
    await loadUsers(t.db, tenant.keys());
    const full = await cli(['sync']);
    expect(full.code).toBe(0);
    const first = await follow();
    expect(first.code).toBe(0);
    expect(first.stdout.join('\n')).toContain('No log checkpoint yet: following starts at the newest entry');
    expect(first.stdout.join('\n')).toContain('earlier history is covered by full passes');
    expect((await checkpoint())?.log_id).toBe(fake.logs.newestId());
    listed.clear();
    return [...tenant.keys()];
  }

  return { t, fake, listed, cli, follow, checkpoint, runs, usersOfRun, syncedTenant };
}

// One database for the file, emptied before each test; a fresh tenant per test.
const { withEmptyDatabaseAndTenant } = sharedDatabase();
function withTenant(use: (w: ReturnType<typeof world>) => Promise<void>): Promise<void> {
  return withEmptyDatabaseAndTenant(async (t, fake) => {
    /** List requests per user since the last reset. */
    const listed = new Map<string, number>();
    fake.intercept((ctx) => {
      if (ctx.userId) listed.set(ctx.userId, (listed.get(ctx.userId) ?? 0) + 1);
      return undefined;
    });
    await use(world(t, fake, listed));
  });
}
describe('sync --from-logs', () => {
  it('starts at the newest entry when no checkpoint is stored, syncing nobody', () =>
    withTenant(async ({ fake, follow, checkpoint, runs }) => {
      fake.setUser('auth0|a', [makeToken('auth0|a', 0)]);
      const { code, stdout, stderr } = await follow();
      expect({ code, stderr }).toEqual({ code: 0, stderr: [] });
      expect(stdout.join('\n')).toMatch(
        /No log checkpoint yet: following starts at the newest entry \d{8}…\d{6} \(.+\); earlier history is covered by full passes/,
      );
      expect(await runs()).toEqual([]);
      expect(await checkpoint()).toMatchObject({ log_id: fake.logs.newestId(), history_lost_at: null });
      expect(fake.stats.listRequests).toBe(0);
    }));

  it('syncs exactly the users whose tokens changed (revocations, logins, sapi), then advances', () =>
    withTenant(async ({ t, fake, listed, cli, follow, checkpoint, runs, usersOfRun, syncedTenant }) => {
      const users = await syncedTenant();
      const [revoked, loggedIn, viaApi, viaSession, ...untouched] = users as [string, string, string, string, ...string[]];
      // A session revoked: the warehouse knows which user holds tokens of it.
      const sessionToken: Auth0TokenJson = { ...makeToken(viaSession, 50), session_id: 'sess-revoked' };
      fake.setUser(viaSession, [...fake.users.get(viaSession)!, sessionToken]);
      expect((await cli(['sync', '--user', viaSession])).code).toBe(0);
      await follow(); // takes the login of viaSession
      listed.clear();
      // A revocation (srrt), a new login (s), a Management API delete by an admin (sapi).
      fake.setUser(revoked, fake.users.get(revoked)!.slice(1));
      fake.setUser(loggedIn, [...fake.users.get(loggedIn)!, makeToken(loggedIn, 99)]);
      const apiToken = fake.users.get(viaApi)![0]!;
      fake.users.set(viaApi, fake.users.get(viaApi)!.slice(1));
      fake.logs.append({
        type: 'sapi',
        user_id: untouched[0],
        details: { request: { method: 'delete', path: `/api/v2/refresh-tokens/${String(apiToken.id)}` } },
      });
      fake.users.set(
        viaSession,
        fake.users.get(viaSession)!.filter((tk) => tk.id !== sessionToken.id),
      );
      fake.logs.append({ type: 'sapi', user_id: 'admin@clients', details: { request: { method: 'post', path: '/api/v2/sessions/sess-revoked/revoke' } } });
      // Skipped and counted: another type, a machine client, no user, a caller-only sapi.
      fake.logs.append({ type: 'f', user_id: untouched[1], description: 'Failed login' });
      fake.logs.append({ type: 'sertft', user_id: 'm2m-client@clients' });
      fake.logs.append({ type: 'sertft' });
      fake.logs.append({
        type: 'sapi',
        user_id: untouched[2],
        details: { request: { method: 'patch', path: `/api/v2/users/${encodeURIComponent(untouched[3]!)}` } },
      });

      const before = await checkpoint();
      const { code, stdout, stderr } = await follow();
      expect({ code, stderr }).toEqual({ code: 0, stderr: [] });
      const run = (await runs()).at(-1)!;
      expect(run).toMatchObject({ trigger: 'logs', status: 'succeeded', users_total: 4, users_synced: 4 });
      expect(await usersOfRun(run.id)).toEqual([revoked, loggedIn, viaApi, viaSession].sort());
      // Only the changed users were listed: one page each, plus the empty page that ends a listing
      // whose last page still carries `next` (as Auth0's does).
      expect([...listed.keys()].sort()).toEqual([revoked, loggedIn, viaApi, viaSession].sort());
      for (const n of listed.values()) expect(n).toBeLessThanOrEqual(2);
      await expectWarehouseMatchesApi(t.db, fake);
      const after = await checkpoint();
      expect(after).toMatchObject({ log_id: fake.logs.newestId(), last_run_id: run.id });
      expect(after!.entries_read - before!.entries_read).toBe(8);
      expect(after!.entries_skipped - before!.entries_skipped).toBe(4);
      expect(after!.lag_seconds).toEqual(expect.any(Number));
      expect(stdout.join('\n')).toContain('Read 8 log entries');
      expect(stdout.join('\n')).toContain('skipped 4 entries (2 other type, 1 no user, 1 machine client, 0 unresolved, 0 invalid user)');

      // Nothing new: no run, no list request, the checkpoint stays.
      listed.clear();
      expect((await follow()).code).toBe(0);
      expect((await runs()).at(-1)!.id).toBe(run.id);
      expect(listed.size).toBe(0);
      expect((await checkpoint())?.log_id).toBe(after!.log_id);
    }));

  it('adds a signup to auth0.users and marks a deleted user’s tokens deleted', () =>
    withTenant(async ({ t, fake, follow, runs, syncedTenant }) => {
      const [gone] = await syncedTenant(5);
      fake.setUser('auth0|newcomer', [makeToken('auth0|newcomer', 0)]);
      fake.deleteUser(gone!);
      const { code } = await follow();
      expect(code).toBe(0);
      const run = (await runs()).at(-1)!;
      expect(run).toMatchObject({ trigger: 'logs', users_synced: 1, users_not_found: 1 });
      expect(await t.db.selectFrom('auth0.users').select('user_id').where('user_id', '=', 'auth0|newcomer').executeTakeFirst()).toBeDefined();
      const live = await t.db.selectFrom('auth0.refresh_tokens').select('id').where('user_id', '=', gone!).where('deleted_at', 'is', null).execute();
      expect(live).toEqual([]);
      await expectWarehouseMatchesApi(t.db, fake);
    }));

  it('sets auth0.users.removed_at for a deleted user', () =>
    withTenant(async ({ t, fake, follow, syncedTenant }) => {
      const [gone] = await syncedTenant(3);
      fake.deleteUser(gone!);
      expect((await follow()).code).toBe(0);
      const { rows } = await sql<{
        user_id: string;
        removed_at: Date | null;
      }>`select user_id, removed_at from auth0.users where removed_at is not null`.execute(t.db);
      expect(rows.map((r) => r.user_id)).toEqual([gone]);
    }));

  it('replays the entries after a crash between the sync and the checkpoint write', () =>
    withTenant(async ({ t, fake, listed, follow, checkpoint, runs, usersOfRun, syncedTenant }) => {
      const [changed] = await syncedTenant(5);
      const before = await checkpoint();
      fake.setUser(changed!, fake.users.get(changed!)!.slice(1));
      // The checkpoint write fails, as if the process died right after the run (the trigger is
      // dropped whatever happens: the file's other tests share the database).
      await sql`create or replace function auth0.fail_checkpoint() returns trigger language plpgsql as $$ begin raise exception 'simulated crash'; end $$`.execute(
        t.db,
      );
      await sql`create trigger fail_checkpoint before update on auth0.log_checkpoint for each row execute function auth0.fail_checkpoint()`.execute(t.db);
      try {
        const crashed = await follow();
        expect(crashed.code).toBe(1);
        expect(crashed.stderr.join('\n')).toContain('simulated crash');
        expect((await runs()).at(-1)).toMatchObject({ trigger: 'logs', status: 'succeeded', users_synced: 1 });
        expect((await checkpoint())?.log_id).toBe(before!.log_id);
      } finally {
        await sql`drop trigger fail_checkpoint on auth0.log_checkpoint`.execute(t.db);
      }
      // A second change lands before the replay: both are taken.
      fake.setUser(changed!, [...fake.users.get(changed!)!, makeToken(changed!, 77)]);
      listed.clear();
      const replayed = await follow();
      expect(replayed.code).toBe(0);
      const run = (await runs()).at(-1)!;
      expect(await usersOfRun(run.id)).toEqual([changed]);
      expect((await checkpoint())?.log_id).toBe(fake.logs.newestId());
      await expectWarehouseMatchesApi(t.db, fake);
    }));

  it('keeps the checkpoint when the run fails', () =>
    withTenant(async ({ fake, follow, checkpoint, runs, syncedTenant }) => {
      const [changed] = await syncedTenant(3);
      const before = await checkpoint();
      fake.setUser(changed!, []);
      fake.intercept((ctx) => (ctx.userId ? { status: 401, body: '{"statusCode":401,"message":"Invalid token."}' } : undefined));
      const { code } = await follow();
      expect(code).toBe(1);
      expect((await runs()).at(-1)).toMatchObject({ trigger: 'logs', status: 'failed' });
      expect((await checkpoint())?.log_id).toBe(before!.log_id);
    }));

  // One process per embedded database: nothing else can hold its lock.
  itServer('exits 3 while a full pass holds the run lock, leaving the checkpoint for the next follow', () =>
    withTenant(async ({ t, fake, follow, checkpoint, syncedTenant }) => {
      const [changed] = await syncedTenant(3);
      const before = await checkpoint();
      fake.setUser(changed!, []);
      const holder = new pg.Client({ connectionString: t.url });
      await holder.connect();
      try {
        await holder.query('select pg_advisory_lock($1, hashtext($2))', [RUN_LOCK_KEY.classId, TEST_TENANT]);
        expect((await follow()).code).toBe(3);
        expect((await checkpoint())?.log_id).toBe(before!.log_id);
      } finally {
        await holder.end();
      }
      expect((await follow()).code).toBe(0);
      expect((await checkpoint())?.log_id).toBe(fake.logs.newestId());
      await expectWarehouseMatchesApi(t.db, fake);
    }),
  );

  it('falls back when the checkpoint is older than retention: one sentence, full pass due, resume from the newest', () =>
    withTenant(async ({ t, fake, cli, follow, checkpoint, syncedTenant }) => {
      await syncedTenant(3);
      const stored = await checkpoint();
      fake.setUser('auth0|late', [makeToken('auth0|late', 0)]);
      fake.setUser('auth0|later', [makeToken('auth0|later', 0)]);
      fake.logs.expireBefore(fake.logs.newestId()!);
      const { code, stdout, stderr } = await follow();
      expect({ code, stderr }).toEqual({ code: 0, stderr: [] });
      const message = stdout.filter((l) => !l.startsWith('{'));
      expect(message).toHaveLength(1);
      expect(message[0]).toMatch(
        new RegExp(
          `^The log checkpoint ${describeLogId(stored!.log_id)} \\(.+\\) is no longer accepted \\(older than the plan's log retention, 1 to 30 days\\), so changes since then may be missed: every user is due for a full pass \\(npm run sync\\), and following resumes from the newest entry ${describeLogId(fake.logs.newestId()!)}\\.$`,
        ),
      );
      expect(await checkpoint()).toMatchObject({ log_id: fake.logs.newestId(), history_lost_at: expect.any(Date) });
      const status = formatStatus(await readStatus(t.db, { tenant: TEST_TENANT, source: sourceOf('auth0.users', 'user_id') })).join('\n');
      expect(status).toContain('full pass due');
      // A budgeted pass does not clear it; budgeted passes that reached every user since do, as a
      // full pass (every user, no budget) does.
      expect((await cli(['sync', '--max-users', '2'])).code).toBe(0);
      expect(formatStatus(await readStatus(t.db, { tenant: TEST_TENANT, source: sourceOf('auth0.users', 'user_id') })).join('\n')).toContain('full pass due');
      expect((await cli(['sync', '--max-users', '2'])).code).toBe(0);
      const after = formatStatus(await readStatus(t.db, { tenant: TEST_TENANT, source: sourceOf('auth0.users', 'user_id') })).join('\n');
      expect(after).not.toContain('full pass due');
    }));

  it('warns once and syncs nothing without read:logs; full passes go on', () =>
    withTenant(async ({ t, fake, cli, follow, checkpoint, runs }) => {
      fake.setUser('auth0|a', [makeToken('auth0|a', 0)]);
      await loadUsers(t.db, ['auth0|a']);
      fake.setScope('read:refresh_tokens');
      const { code, stderr } = await follow();
      expect(code).toBe(0);
      expect(stderr).toEqual([
        'warning: The client may not read the tenant logs (/api/v2/logs answered 403); grant it the read:logs scope to follow them. The log follower is off; full passes (npm run sync) go on.',
      ]);
      expect(await runs()).toEqual([]);
      expect(await checkpoint()).toBeUndefined();
      expect((await cli(['sync'])).code).toBe(0);
    }));

  it('status shows the checkpoint, the last entry date, the lag and the users changed since the last full pass', () =>
    withTenant(async ({ t, fake, follow, syncedTenant }) => {
      const users = await syncedTenant(4);
      fake.setUser(users[0]!, []);
      fake.setUser(users[1]!, []);
      expect((await follow()).code).toBe(0);
      const report = await readStatus(t.db, { tenant: TEST_TENANT, source: sourceOf('auth0.users', 'user_id') });
      expect(report.logs).toMatchObject({ logId: fake.logs.newestId(), usersChangedSinceFullPass: 2, fullPassDue: false });
      const lines = formatStatus(report).join('\n');
      expect(lines).toContain(`Log follower: checkpoint ${fake.logs.newestId()}`);
      expect(lines).toMatch(/last entry \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC, lag /);
      expect(lines).toContain('users changed since the last full pass: 2');
    }));

  it('rejects flags that would skip entries (a usage error, exit 64)', () =>
    withTenant(async ({ cli }) => {
      const { code, stderr } = await cli(['sync', '--from-logs', '--max-users', '5']);
      expect(code).toBe(64);
      expect(stderr.join('\n')).toContain('--from-logs syncs the users the tenant logs name');
    }));
});
