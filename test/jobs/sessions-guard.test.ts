import { describe, expect, it } from '@jest/globals';
import { Migrator, sql } from 'kysely';
import { migrations } from '../../migrations/index.js';
import { main } from '../../src/cli/main.js';
import { captureIo, cliDeps, loadUsers, TEST_TENANT, type TestDatabase } from '../helpers/db.js';
import { migrateToLatest } from '../../src/warehouse/migrate.js';
import { sharedDatabase } from '../helpers/fixtures.js';
import { envFor, generateTenant, type FakeAuth0 } from '../helpers/fake-auth0.js';
import { SCOPE_WITH_SESSIONS } from '../../sandbox/auth0-server.js';

// Issue #22: session deletions are bounded by the deletion guard, by the same rule and settings as
// token deletions (SYNC_MAX_DELETE_RATIO, SYNC_DELETE_GUARD_MIN), and what the logs explain never counts.

const inAYear = () => new Date(Date.now() + 365 * 86_400_000).toISOString();

/** A session of Auth0's shape (as the sandbox lists them), numbered per user. */
function session(userId: string, n: number) {
  const at = new Date(Date.now() - 3_600_000).toISOString();
  return {
    id: `sess_${userId.replace(/\W/g, '')}_${n}`,
    user_id: userId,
    created_at: at,
    updated_at: at,
    authenticated_at: at,
    last_interacted_at: at,
    device: { initial_ip: '192.0.2.1', last_ip: '192.0.2.1', initial_asn: '64496', last_asn: '64496', initial_user_agent: 'ua', last_user_agent: 'ua' },
    clients: [{ client_id: 'app' }],
    authentication: { methods: [{ name: 'pwd', timestamp: at }] },
  };
}

/** What a test works with: its emptied database, its fake tenant (granting read:sessions), and helpers bound to both. */
function world(t: TestDatabase, fake: FakeAuth0) {
  async function cli(args: string[], extra: Record<string, string> = {}) {
    const out = captureIo();
    const code = await main(args, envFor(fake, t.url, { SYNC_DELETE_GUARD_MIN: '5', SYNC_MAX_DELETE_RATIO: '0.2', ...extra }), out.io, cliDeps(t));
    return { code, stderr: out.stderr, text: [...out.stdout, ...out.stderr].join('\n') };
  }

  const liveSessions = async () =>
    Number(
      (
        await t.db
          .selectFrom('auth0.sessions')
          .select((eb) => eb.fn.countAll().as('n'))
          .where('deleted_at', 'is', null)
          .executeTakeFirstOrThrow()
      ).n,
    );
  const liveTokens = async () =>
    Number(
      (
        await t.db
          .selectFrom('auth0.refresh_tokens')
          .select((eb) => eb.fn.countAll().as('n'))
          .where('deleted_at', 'is', null)
          .executeTakeFirstOrThrow()
      ).n,
    );
  const lastRun = () => t.db.selectFrom('auth0.sync_runs').selectAll().orderBy('id', 'desc').executeTakeFirstOrThrow();

  /** 30 users with live tokens, each with 2 sessions live for a year, synced once (a full pass). */
  async function syncedTenant(): Promise<{ tenant: FakeAuth0; users: string[] }> {
    const users: string[] = [];
    for (const [userId, tokens] of generateTenant({ users: 30, seed: 23, maxTokensPerUser: 3, datesAround: Date.now() })) {
      // Each token belongs to one of the user's two sessions, as Auth0 links them.
      fake.setUser(
        userId,
        tokens.map((token, i) => ({ ...token, session_id: session(userId, i % 2).id, expires_at: inAYear(), idle_expires_at: inAYear() })),
      );
      fake.setSessions(
        userId,
        [0, 1].map((n) => ({ ...session(userId, n), expires_at: inAYear(), idle_expires_at: inAYear() })),
      );
      users.push(userId);
    }
    await loadUsers(t.db, users);
    const first = await cli(['sync']);
    expect(first).toMatchObject({ code: 0, stderr: [] });
    expect(await liveSessions()).toBe(60);
    return { tenant: fake, users };
  }

  return { t, fake, cli, liveSessions, liveTokens, lastRun, syncedTenant };
}

// Each test gets an emptied database (one clone of the migrated template for the file) and a fresh tenant that grants read:sessions.
const { withEmptyDatabase, withEmptyDatabaseAndTenant } = sharedDatabase();
const withTenant = (use: (w: ReturnType<typeof world>) => Promise<void>) =>
  withEmptyDatabaseAndTenant((t, fake) => use(world(t, fake)), { scope: SCOPE_WITH_SESSIONS });

describe('the deletion guard and sessions', () => {
  it('records the session counts of a run in sync_runs', () =>
    withTenant(async ({ lastRun, syncedTenant }) => {
      await syncedTenant();
      expect(await lastRun()).toMatchObject({
        status: 'succeeded',
        sessions_seen: 60,
        sessions_held: 0,
        sessions_added: 60,
        sessions_deleted: 0,
        sessions_unexplained: 0,
      });
    }));

  it('stops a full pass whose sessions route suddenly answers empty lists for every user, tokens unchanged: no session deleted', () =>
    withTenant(async ({ cli, liveSessions, liveTokens, lastRun, syncedTenant }) => {
      const { tenant, users } = await syncedTenant();
      const tokens = await liveTokens();
      for (const userId of users) tenant.setSessions(userId, []);
      const run = await cli(['sync']);
      expect(run.code).toBe(1);
      // The first batch (SYNC_DELETE_GUARD_MIN users) already crosses it.
      expect(run.text).toMatch(/mark deleted (\d+) of the \1 live sessions held for its users with no log entry or expiry to explain it \(100%\)/);
      expect(await lastRun()).toMatchObject({ status: 'failed', delete_guard_tripped: true, sessions_deleted: 0, sessions_unexplained: 0 });
      expect(await liveSessions()).toBe(60);
      expect(await liveTokens()).toBe(tokens);
      // Within the ratio (5 of 60 sessions, measured in one batch of every user), a pass goes through and counts them.
      for (const [i, userId] of users.entries())
        tenant.setSessions(
          userId,
          [0, 1].filter((n) => i >= 5 || n === 0).map((n) => ({ ...session(userId, n), expires_at: inAYear(), idle_expires_at: inAYear() })),
        );
      expect((await cli(['sync'], { SYNC_DELETE_GUARD_MIN: '30' })).code).toBe(0);
      expect(await lastRun()).toMatchObject({
        sessions_seen: 55,
        sessions_held: 60,
        sessions_deleted: 5,
        sessions_unexplained: 5,
        delete_guard_tripped: false,
      });
      expect(await liveSessions()).toBe(55);
    }));

  it('bounds budgeted passes that lose sessions run after run by the same ratio of live sessions', () =>
    withTenant(async ({ cli, liveSessions, liveTokens, lastRun, syncedTenant }) => {
      const { tenant, users } = await syncedTenant();
      for (const userId of users) tenant.setSessions(userId, []);
      const codes = [];
      for (let i = 0; i < 8; i += 1) codes.push((await cli(['sync'], { SYNC_MAX_USERS: '3' })).code);
      // 3 users (6 sessions) a run: the first run's 6 of 60 are within 20%; the second would bring
      // the window to 12 of the 54 live sessions (22%), so it stops before writing, and so does every later one.
      expect(codes).toEqual([0, 1, 1, 1, 1, 1, 1, 1]);
      expect(await lastRun()).toMatchObject({ full_pass: false, delete_guard_tripped: true, sessions_deleted: 0 });
      expect(await liveSessions()).toBe(54);
      expect(await liveTokens()).toBeGreaterThan(0);
    }));

  it('lets a full pass pointed at the wrong tenant delete no session', () =>
    withTenant(async ({ cli, liveSessions, lastRun, syncedTenant }) => {
      const { tenant } = await syncedTenant();
      tenant.users.clear(); // every user answers 404, and no log explains it
      const run = await cli(['sync']);
      expect(run.code).toBe(1);
      expect(await lastRun()).toMatchObject({ delete_guard_tripped: true, sessions_deleted: 0 });
      expect(await liveSessions()).toBe(60);
    }));

  it('applies session deletions that the logs explain (logouts), however many', () =>
    withTenant(async ({ cli, liveSessions, lastRun, syncedTenant }) => {
      const { tenant, users } = await syncedTenant();
      expect((await cli(['sync', '--from-logs'])).code).toBe(0);
      // Users with tokens: their logout is logged (a user without tokens logs nothing here).
      const loggedOut = users.filter((userId) => (tenant.users.get(userId) ?? []).length > 0).slice(0, 20);
      expect(loggedOut.length).toBeGreaterThanOrEqual(10);
      for (const userId of loggedOut) {
        const tokens = tenant.users.get(userId)!;
        // The user logs out of every session: `slo` entries, the sessions and their tokens gone.
        tenant.removeTokens(
          userId,
          tokens.map((token) => String(token.id)),
          { by: 'logout' },
        );
        tenant.setSessions(userId, []);
      }
      const run = await cli(['sync', '--from-logs']);
      expect(run).toMatchObject({ code: 0 });
      expect(await lastRun()).toMatchObject({ trigger: 'logs', delete_guard_tripped: false, sessions_deleted: 2 * loggedOut.length, sessions_unexplained: 0 });
      expect(await liveSessions()).toBe(60 - 2 * loggedOut.length);
    }));
});

describe('the session_counts migration', () => {
  it('down drops the session counts of sync_runs, and up adds them back with their comments', () =>
    withEmptyDatabase(async (t) => {
      const columns = async () =>
        (
          await sql<{ column_name: string; comment: string | null }>`
          select column_name, col_description('auth0.sync_runs'::regclass, ordinal_position::int) as comment
          from information_schema.columns where table_schema = 'auth0' and table_name = 'sync_runs' and column_name like 'sessions\_%'
          order by column_name`.execute(t.db)
        ).rows;
      const names = ['sessions_added', 'sessions_deleted', 'sessions_held', 'sessions_seen', 'sessions_unexplained'];
      expect((await columns()).map((c) => c.column_name)).toEqual(names);
      expect((await columns()).every((c) => (c.comment ?? '').length > 20)).toBe(true);
      const migrator = new Migrator({ db: t.db, provider: { getMigrations: async () => migrations }, migrationTableSchema: 'auth0' });
      const down = await migrator.migrateTo('2026_12_04_1910_typed_columns');
      expect(down.error).toBeUndefined();
      expect(down.results?.map((r) => [r.migrationName, r.direction, r.status])).toEqual([
        ['2026_12_05_1000_tenants', 'Down', 'Success'],
        ['2026_12_04_2000_session_counts', 'Down', 'Success'],
      ]);
      expect(await columns()).toEqual([]);
      expect((await migrateToLatest(t.db, { tenant: TEST_TENANT })).error).toBeUndefined();
      expect((await columns()).map((c) => c.column_name)).toEqual(names);
    }));
});
