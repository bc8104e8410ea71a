import { describe, expect, it } from '@jest/globals';
import { Migrator, sql } from 'kysely';
import { migrations } from '../../migrations/index.js';
import { main } from '../../src/cli/main.js';
import { captureIo, cliDeps, loadUsers, TEST_TENANT, type TestDatabase } from '../helpers/db.js';
import { migrateToLatest } from '../../src/warehouse/migrate.js';
import { sharedDatabase } from '../helpers/fixtures.js';
import { envFor, makeToken, type Auth0TokenJson, type FakeAuth0 } from '../helpers/fake-auth0.js';
import type { LogEntryJson, TokenRemoval } from '../../sandbox/logs.js';

/**
 * The why of each deletion (issue #22), end to end: the fake tenant removes tokens the way each
 * cause does and logs what Auth0 logs for it; the follower records every reason with the log
 * entry (and the API client) that gives it; a full pass, which reads no logs, records expired or
 * unexplained; the views and `status` show them.
 */
const inAYear = () => new Date(Date.now() + 365 * 86_400_000).toISOString();
/** A token live for a year, in session `s-<user>-<n>`. */
const liveToken = (userId: string, n: number, overrides: Auth0TokenJson = {}): Auth0TokenJson => ({
  ...makeToken(userId, n),
  session_id: `s-${userId.slice(-3)}-${n}`,
  expires_at: inAYear(),
  idle_expires_at: inAYear(),
  ...overrides,
});

/** What a test works with: its emptied database, its fake tenant, and helpers bound to both. */
function world(t: TestDatabase, fake: FakeAuth0) {
  async function cli(args: string[], extra: Record<string, string> = {}) {
    const out = captureIo();
    const code = await main(args, envFor(fake, t.url, extra), out.io, cliDeps(t));
    return { code, ...out, text: [...out.stdout, ...out.stderr].join('\n') };
  }
  const follow = (extra: Record<string, string> = {}) => cli(['sync', '--from-logs'], extra);

  /** Each user holds two live tokens; all synced, the follower at the newest entry. */
  async function syncedUsers(userIds: string[]): Promise<void> {
    for (const userId of userIds) fake.setUser(userId, [liveToken(userId, 1), liveToken(userId, 2)]);
    await loadUsers(t.db, userIds);
    expect((await cli(['sync'])).code).toBe(0);
    expect((await follow()).code).toBe(0);
  }
  const firstToken = (userId: string) => String(fake.users.get(userId)![0]!.id);

  /** The deleted change rows, by token. */
  async function deletions() {
    const rows = await t.db
      .selectFrom('auth0.refresh_token_changes')
      .select(['token_id', 'user_id', 'reason', 'reason_log_id', 'reason_client_id'])
      .where('change', '=', 'deleted')
      .orderBy('id')
      .execute();
    return new Map(rows.map((row) => [row.token_id, row]));
  }

  return { t, fake, cli, follow, syncedUsers, firstToken, deletions };
}

// Each test gets an emptied database (one clone of the migrated template for the file) and a fresh tenant.
const { withEmptyDatabase, withEmptyDatabaseAndTenant } = sharedDatabase();
const withTenant = (use: (w: ReturnType<typeof world>) => Promise<void>) => withEmptyDatabaseAndTenant((t, fake) => use(world(t, fake)));

describe('the reason of each deletion', () => {
  it('records every reason for the event that causes it, with its log entry and API client', () =>
    withTenant(async ({ t, fake, follow, syncedUsers, firstToken, deletions }) => {
      const causes: [string, TokenRemoval, string][] = [
        ['auth0|u-user', { by: 'user' }, 'revoked_by_user'],
        ['auth0|u-api', { by: 'api', clientId: 'admin-m2m' }, 'revoked_by_api'],
        ['auth0|u-reuse', { by: 'reuse' }, 'reuse_detected'],
        ['auth0|u-logout', { by: 'logout' }, 'session_revoked'],
        ['auth0|u-session-api', { by: 'session_api', clientId: 'admin-m2m' }, 'session_revoked'],
        ['auth0|u-cleanup', { by: 'cleanup' }, 'pruned'],
      ];
      const deletedUsers = ['auth0|u-sdu', 'auth0|u-sapi-del'];
      await syncedUsers([...causes.map(([userId]) => userId), ...deletedUsers]);

      const expected = new Map<string, { reason: string; reason_log_id: string; reason_client_id: string | null }>();
      for (const [userId, cause, reason] of causes) {
        const tokenId = firstToken(userId);
        const [entry] = fake.removeTokens(userId, [tokenId], cause);
        expect(entry).toBeDefined();
        expected.set(tokenId, { reason, reason_log_id: String(entry!.log_id), reason_client_id: 'clientId' in cause ? cause.clientId : null });
      }
      const tokensOf = (userId: string) => fake.users.get(userId)!.map((token) => String(token.id));
      const sduTokens = tokensOf('auth0|u-sdu');
      fake.deleteUser('auth0|u-sdu');
      const sduEntry = fake.logs.entries.at(-1)!;
      const apiDeletedTokens = tokensOf('auth0|u-sapi-del');
      fake.deleteUser('auth0|u-sapi-del', { clientId: 'admin-m2m' });
      const apiDeleteEntry = fake.logs.entries.at(-1)!;
      for (const id of sduTokens) expected.set(id, { reason: 'user_deleted', reason_log_id: String(sduEntry.log_id), reason_client_id: null });
      for (const id of apiDeletedTokens) {
        expected.set(id, { reason: 'user_deleted', reason_log_id: String(apiDeleteEntry.log_id), reason_client_id: 'admin-m2m' });
      }

      const { code, text } = await follow();
      expect({ code, text }).toMatchObject({ code: 0 });
      const recorded = await deletions();
      expect(recorded.size).toBe(expected.size);
      for (const [tokenId, want] of expected) expect({ tokenId, ...recorded.get(tokenId) }).toMatchObject({ tokenId, ...want });
      // Nothing unexplained: the guard counted nothing.
      const run = await t.db.selectFrom('auth0.sync_runs').select(['tokens_unexplained', 'tokens_deleted']).orderBy('id', 'desc').executeTakeFirstOrThrow();
      expect(run).toEqual({ tokens_unexplained: 0, tokens_deleted: expected.size });
      // Only deletions carry a reason.
      const others = await t.db
        .selectFrom('auth0.refresh_token_changes')
        .select('reason')
        .where('change', '<>', 'deleted')
        .where('reason', 'is not', null)
        .execute();
      expect(others).toEqual([]);

      // The views: every deletion with its reason; per day and reason.
      const view = await t.db.selectFrom('auth0.refresh_token_deletions').select(['token_id', 'reason', 'reason_log_id', 'reason_client_id']).execute();
      expect(new Map(view.map((row) => [row.token_id, row.reason]))).toEqual(new Map([...expected].map(([id, want]) => [id, want.reason])));
      const byReason = await t.db.selectFrom('auth0.refresh_token_deletions_by_reason').select(['reason', 'deletions', 'users']).orderBy('reason').execute();
      expect(byReason).toEqual([
        { reason: 'pruned', deletions: 1, users: 1 },
        { reason: 'reuse_detected', deletions: 1, users: 1 },
        { reason: 'revoked_by_api', deletions: 1, users: 1 },
        { reason: 'revoked_by_user', deletions: 1, users: 1 },
        { reason: 'session_revoked', deletions: 2, users: 2 },
        { reason: 'user_deleted', deletions: 4, users: 2 },
      ]);
    }));

  it('a full pass, which reads no logs, records expired or unexplained; status and its JSON call out the unexplained', () =>
    withTenant(async ({ t, fake, cli, syncedUsers, firstToken, deletions }) => {
      const users = ['auth0|p-revoked', 'auth0|p-expired', 'auth0|p-silent', 'auth0|p-other'];
      await syncedUsers(users);
      // Revoked by the user (logged), expired (nothing logged), vanished without a word.
      const expiring = liveToken('auth0|p-expired', 3, { expires_at: new Date(Date.now() + 1500).toISOString() });
      fake.users.set('auth0|p-expired', [...fake.users.get('auth0|p-expired')!, expiring]);
      expect((await cli(['sync'])).code).toBe(0);
      await new Promise((wake) => setTimeout(wake, 1600));
      const revoked = firstToken('auth0|p-revoked');
      fake.removeTokens('auth0|p-revoked', [revoked], { by: 'user' });
      fake.removeTokens('auth0|p-expired', [String(expiring.id)], { by: 'expiry' });
      const silent = firstToken('auth0|p-silent');
      fake.users.set(
        'auth0|p-silent',
        fake.users.get('auth0|p-silent')!.filter((token) => token.id !== silent),
      );

      const { code } = await cli(['sync'], { SYNC_MAX_DELETE_RATIO: '1' });
      expect(code).toBe(0);
      const recorded = await deletions();
      expect(Object.fromEntries([...recorded].map(([id, row]) => [id, [row.reason, row.reason_log_id, row.reason_client_id]]))).toEqual({
        [revoked]: ['unexplained', null, null],
        [String(expiring.id)]: ['expired', null, null],
        [silent]: ['unexplained', null, null],
      });
      expect(await t.db.selectFrom('auth0.sync_runs').select('tokens_unexplained').orderBy('id', 'desc').executeTakeFirstOrThrow()).toEqual({
        tokens_unexplained: 2,
      });

      const status = await cli(['status']);
      expect(status.text).toMatch(/Deletions in the last 24 hours: 3 \(expired 1, unexplained 2\)/);
      expect(status.text).toContain('2 unexplained deletions in the last 24 hours');
      const json = await cli(['status', '--json']);
      const document = JSON.parse(json.stdout.join('\n')) as { deletions: unknown };
      expect(document.deletions).toEqual({ hours: 24, total: 3, byReason: { expired: 1, unexplained: 2 }, unexplained: 2 });
    }));

  it('keeps the reason and log entry of a user whose sync failed, for the follow that retries it', () =>
    withTenant(async ({ t, fake, follow, syncedUsers, firstToken, deletions }) => {
      await syncedUsers(['auth0|r-1', 'auth0|r-2']);
      const tokenId = firstToken('auth0|r-1');
      const [entry] = fake.removeTokens('auth0|r-1', [tokenId], { by: 'api', clientId: 'ops-tool' }) as [LogEntryJson];
      fake.intercept((ctx) => (ctx.userId === 'auth0|r-1' ? { status: 503 } : undefined));
      expect((await follow({ AUTH0_MAX_RETRIES: '0' })).code).toBe(2);
      const [retry] = await t.db.selectFrom('auth0.log_follow_retries').select(['explained', 'explanations']).execute();
      expect(retry).toMatchObject({ explained: true, explanations: [expect.objectContaining({ reason: 'revoked_by_api', logId: entry.log_id })] });

      fake.intercept(undefined);
      expect((await follow()).code).toBe(0);
      expect((await deletions()).get(tokenId)).toMatchObject({ reason: 'revoked_by_api', reason_log_id: entry.log_id, reason_client_id: 'ops-tool' });
    }));

  it('refuses a reason on a change that is not a deletion, and a word outside the list', () =>
    withEmptyDatabase(async (t) => {
      const insert = (change: string, reason: string) =>
        sql`insert into auth0.refresh_token_changes (tenant, token_id, user_id, change, reason) values ('127', 'rt', 'u', ${change}, ${reason})`.execute(t.db);
      await expect(insert('created', 'expired')).rejects.toThrow(/refresh_token_changes_reason_on_deletions/);
      await expect(insert('deleted', 'vanished')).rejects.toThrow(/refresh_token_changes_reason_check/);
      await insert('deleted', 'expired');
    }));
});

describe('the migration', () => {
  it('down drops the reason columns, the explanations and the deletion views, and puts recent_token_changes back; up again', () =>
    withEmptyDatabase(async (t) => {
      const columns = async (table: string) =>
        (
          await sql<{ name: string; comment: string | null }>`
          select column_name as name, col_description(${`auth0.${table}`}::regclass, ordinal_position::int) as comment
          from information_schema.columns where table_schema = 'auth0' and table_name = ${table} order by ordinal_position`.execute(t.db)
        ).rows;
      const views = async () =>
        (
          await sql<{
            name: string;
          }>`select table_name as name from information_schema.views where table_schema = 'auth0' and table_name like 'refresh_token_deletions%'`.execute(t.db)
        ).rows;
      const migrator = new Migrator({ db: t.db, provider: { getMigrations: async () => migrations }, migrationTableSchema: 'auth0' });
      const down = await migrator.migrateTo('2026_12_04_1000_follower_bad_day');
      expect(down.error).toBeUndefined();
      expect(down.results?.map((r) => r.migrationName)).toContain('2026_12_04_1900_change_reasons');
      expect((await columns('refresh_token_changes')).map((c) => c.name)).not.toContain('reason');
      expect((await columns('log_follow_retries')).map((c) => c.name)).not.toContain('explanations');
      expect(await views()).toEqual([]);
      const recent = await columns('recent_token_changes');
      expect(recent.map((c) => c.name)).toEqual([
        'observed_at',
        'change',
        'token_id',
        'user_id',
        'email',
        'client_id',
        'session_id',
        'old_value',
        'new_value',
        'run_id',
      ]);
      for (const column of recent) expect(column.comment?.length).toBeGreaterThan(10);

      const up = await migrateToLatest(t.db, { tenant: TEST_TENANT });
      expect(up.error).toBeUndefined();
      expect((await columns('refresh_token_changes')).map((c) => c.name)).toEqual(expect.arrayContaining(['reason', 'reason_log_id', 'reason_client_id']));
      expect((await views()).length).toBe(2);
    }));
});
