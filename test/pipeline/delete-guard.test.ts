import { describe, expect, it } from '@jest/globals';
import { sql } from 'kysely';
import { main } from '../../src/cli/main.js';
import { createDb } from '../../src/warehouse/connection.js';
import { captureIo, cliDeps, itServer, loadUsers, type TestDatabase } from '../helpers/db.js';
import { sharedDatabase } from '../helpers/fixtures.js';
import { envFor, generateTenant, makeToken, type Auth0TokenJson, type FakeAuth0 } from '../helpers/fake-auth0.js';
import { expectWarehouseMatchesApi } from '../helpers/warehouse.js';

// Dates around today: Auth0 lists only live tokens, and an expired one's deletion is explained.
const tenant = generateTenant({ users: 120, maxTokensPerUser: 4, seed: 11, userIdPrefix: 'auth0|guard', datesAround: Date.now() });

/** What a test works with: its database, its fake tenant, and helpers bound to both. */
function world(t: TestDatabase, fake: FakeAuth0) {
  async function sync(args: string[] = [], extra: Record<string, string> = {}, deps = cliDeps(t)) {
    const out = captureIo();
    const code = await main(['sync', ...args], envFor(fake, t.url, { SYNC_CONCURRENCY: '4', ...extra }), out.io, deps);
    return { code, ...out };
  }

  const lastRun = () => t.db.selectFrom('auth0.sync_runs').selectAll().orderBy('id', 'desc').executeTakeFirstOrThrow();
  const count = async (query: ReturnType<typeof sql<{ n: number }>>) => (await query.execute(t.db)).rows[0]!.n;
  const deletedTokens = () => count(sql<{ n: number }>`select count(*)::int as n from auth0.refresh_tokens where deleted_at is not null`);
  const deletedChanges = () => count(sql<{ n: number }>`select count(*)::int as n from auth0.refresh_token_changes where change = 'deleted'`);
  const goneUsers = () => count(sql<{ n: number }>`select count(*)::int as n from auth0.user_sync_state where status = 'not_found'`);

  return { t, fake, sync, lastRun, count, deletedTokens, deletedChanges, goneUsers };
}

// Each test gets an emptied database (one clone for the file) and a fresh tenant of the 120 users,
// all in the source table.
const { withEmptyDatabaseAndTenant } = sharedDatabase();
function withTenant(use: (w: ReturnType<typeof world>) => Promise<void>): Promise<void> {
  return withEmptyDatabaseAndTenant(async (t, fake) => {
    for (const [userId, tokens] of tenant) fake.setUser(userId, tokens);
    await loadUsers(t.db, tenant.keys());
    await use(world(t, fake));
  });
}

describe('the deletion guard', () => {
  it('pointed at the wrong tenant (every user 404), marks not one token deleted and fails the run', () =>
    withTenant(async ({ fake, sync, lastRun, count, deletedTokens, deletedChanges, goneUsers }) => {
      expect((await sync()).code).toBe(0);
      const live = await count(sql<{ n: number }>`select count(*)::int as n from auth0.refresh_tokens where deleted_at is null`);
      expect(live).toBeGreaterThan(100);

      fake.users.clear(); // valid credentials, wrong tenant: nobody exists
      const dry = await sync(['--dry-run']);
      expect(dry.code).toBe(0);
      expect(dry.stdout.join('\n')).toMatch(/A real run would stop at the deletion guard: it would mark deleted \d+ of the \d+ live tokens/);
      const { code, stderr } = await sync();
      expect(code).toBe(1);
      expect(stderr.join('\n')).toMatch(
        /would mark deleted \d+ of the \d+ live tokens .* and record \d+ of \d+ users as gone from Auth0 with no log entry of their deletion \(100%\).*--allow-mass-delete/,
      );
      expect(await deletedTokens()).toBe(0);
      expect(await deletedChanges()).toBe(0);
      expect(await goneUsers()).toBe(0);
      expect(await lastRun()).toMatchObject({
        status: 'failed',
        delete_guard_tripped: true,
        max_delete_ratio: 0.2,
        users_not_found: 0,
        tokens_deleted: 0,
      });
    }));

  it('holds on a first run too: a wrong tenant records no user as gone', () =>
    withTenant(async ({ fake, sync, lastRun, goneUsers }) => {
      fake.users.clear();
      const { code } = await sync();
      expect(code).toBe(1);
      expect(await goneUsers()).toBe(0);
      expect(await lastRun()).toMatchObject({ status: 'failed', delete_guard_tripped: true });
    }));

  it('lets an operator confirm a real mass revocation with --allow-mass-delete', () =>
    withTenant(async ({ t, fake, sync, lastRun, deletedTokens }) => {
      expect((await sync()).code).toBe(0);
      for (const userId of tenant.keys()) fake.setUser(userId, []); // every token revoked, users still there
      expect((await sync()).code).toBe(1);
      expect(await deletedTokens()).toBe(0);

      const { code } = await sync(['--allow-mass-delete']);
      expect(code).toBe(0);
      await expectWarehouseMatchesApi(t.db, fake);
      expect(await deletedTokens()).toBeGreaterThan(100);
      expect(await lastRun()).toMatchObject({ status: 'succeeded', max_delete_ratio: null, delete_guard_tripped: false });
      expect((await lastRun()).args).toMatchObject({ allowMassDelete: true });
    }));

  it('lets SYNC_MAX_DELETE_RATIO=1 turn the guard off', () =>
    withTenant(async ({ fake, sync, goneUsers }) => {
      expect((await sync()).code).toBe(0);
      fake.users.clear();
      expect((await sync([], { SYNC_MAX_DELETE_RATIO: '1' })).code).toBe(0);
      expect(await goneUsers()).toBe(tenant.size);
    }));

  it('passes a run in which 5% of the tokens were revoked, and says what it held', () =>
    withTenant(async ({ t, fake, sync, lastRun }) => {
      expect((await sync()).code).toBe(0);
      const all = [...tenant.values()].flat();
      const revoked = new Set(all.filter((_, i) => i % 20 === 0).map((token) => token.id));
      for (const [userId, tokens] of tenant)
        fake.setUser(
          userId,
          tokens.filter((token) => !revoked.has(token.id)),
        );
      const { code } = await sync();
      expect(code).toBe(0);
      await expectWarehouseMatchesApi(t.db, fake);
      expect(await lastRun()).toMatchObject({ status: 'succeeded', tokens_deleted: revoked.size, tokens_held: all.length, delete_guard_tripped: false });
    }));

  it('does not stop a --user run for a handful of deleted users', () =>
    withTenant(async ({ fake, sync, goneUsers }) => {
      expect((await sync()).code).toBe(0);
      const gone = [...tenant.keys()].slice(0, 3);
      for (const userId of gone) fake.deleteUser(userId);
      const { code } = await sync(gone.flatMap((userId) => ['--user', userId]));
      expect(code).toBe(0);
      expect(await goneUsers()).toBe(3);
    }));
});

describe('a token listed under two users', () => {
  it('stays with its first owner, fails the second user naming the token, and never flips', () =>
    withTenant(async ({ t, fake, sync, count }) => {
      const [first, second] = [...tenant.entries()].filter(([, tokens]) => tokens.length >= 2);
      const [userA, tokensA] = first!;
      const [userB, tokensB] = second!;
      expect((await sync()).code).toBe(0);
      const stolen: Auth0TokenJson = { ...tokensA[0]!, user_id: userB };
      fake.setUser(userB, [...tokensB, stolen]);

      for (let pass = 0; pass < 2; pass += 1) {
        const { code } = await sync();
        expect(code).toBe(2);
        const owner = await t.db
          .selectFrom('auth0.refresh_tokens')
          .select(['user_id', 'deleted_at'])
          .where('id', '=', String(stolen.id))
          .executeTakeFirstOrThrow();
        expect(owner).toEqual({ user_id: userA, deleted_at: null });
        const state = await t.db.selectFrom('auth0.user_sync_state').selectAll().where('user_id', '=', userB).executeTakeFirstOrThrow();
        expect(state).toMatchObject({ status: 'failed', error_code: 'token_owner_conflict' });
        expect(state.error).toContain(String(stolen.id));
      }
      const created = await count(
        sql<{ n: number }>`select count(*)::int as n from auth0.refresh_token_changes where token_id = ${stolen.id} and change = 'created'`,
      );
      expect(created).toBe(1);
    }));

  it('within one batch: the first user listing a new token keeps it', () =>
    withTenant(async ({ t, fake, sync, lastRun }) => {
      const userIds = [...tenant.keys()];
      const shared = makeToken('shared', 1);
      fake.setUser(userIds[0]!, [{ ...shared, user_id: userIds[0] }]);
      fake.setUser(userIds[1]!, [{ ...shared, user_id: userIds[1] }]);
      const { code } = await sync();
      expect(code).toBe(2);
      const owner = await t.db.selectFrom('auth0.refresh_tokens').select('user_id').where('id', '=', String(shared.id)).executeTakeFirstOrThrow();
      expect(owner.user_id).toBe(userIds[0]);
      expect(await lastRun()).toMatchObject({ status: 'partial', users_failed: 1 });
    }));
});

describe('database errors that would hit every user', () => {
  itServer('stop the run before any fetch when the role may not write refresh_tokens', () =>
    withTenant(async ({ t, fake, sync }) => {
      const role = `rt_reader_${process.pid}`;
      await sql`drop role if exists ${sql.id(role)}`.execute(t.db);
      await sql`create role ${sql.id(role)} login`.execute(t.db);
      await sql`grant usage on schema auth0 to ${sql.id(role)}`.execute(t.db);
      await sql`grant select on all tables in schema auth0 to ${sql.id(role)}`.execute(t.db);
      await sql`grant insert, update on auth0.sync_runs, auth0.user_sync_state to ${sql.id(role)}`.execute(t.db);
      const url = new URL(t.url!);
      url.username = role;
      url.password = '';
      const db = createDb(url.toString());
      try {
        fake.resetStats();
        const { code, stderr } = await sync([], {}, { openDatabase: async () => ({ db, ownsDatabase: false, close: async () => {} }) });
        expect(code).toBe(1);
        expect(stderr.join('\n')).toMatch(/\[database_refused\].*missing .*INSERT on auth0\.refresh_tokens.*grant/);
        expect(fake.stats.listRequests).toBe(0);
      } finally {
        await db.destroy();
        await sql`drop owned by ${sql.id(role)}`.execute(t.db);
        await sql`drop role if exists ${sql.id(role)}`.execute(t.db);
      }
    }),
  );

  it('stop the run at the first write that is refused (42501), without retrying user by user', () =>
    withTenant(async ({ t, fake, sync, lastRun }) => {
      await sql`create function auth0.refuse() returns trigger language plpgsql as $$
      begin raise exception 'permission denied for table refresh_tokens' using errcode = '42501'; end $$`.execute(t.db);
      await sql`create trigger refuse before insert on auth0.refresh_tokens for each row execute function auth0.refuse()`.execute(t.db);
      try {
        fake.intercept(() => ({ delayMs: 15 })); // fetching takes longer than the first write
        fake.resetStats();
        const { code, stderr } = await sync();
        expect(code).toBe(1);
        expect(stderr.join('\n')).toMatch(/\[database_refused\]|SQLSTATE 42501/);
        expect(fake.stats.listRequests).toBeLessThan(tenant.size);
        const run = await lastRun();
        expect(run).toMatchObject({ status: 'failed', users_failed: 0 });
        expect(run.error).toMatch(/SQLSTATE 42501.*grant/);
      } finally {
        await sql`drop trigger refuse on auth0.refresh_tokens`.execute(t.db);
        await sql`drop function auth0.refuse()`.execute(t.db);
      }
    }));
});
