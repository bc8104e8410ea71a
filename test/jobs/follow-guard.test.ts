import { describe, expect, it } from '@jest/globals';
import { main } from '../../src/cli/main.js';
import { captureIo, cliDeps, loadUsers, type TestDatabase } from '../helpers/db.js';
import { sharedDatabase } from '../helpers/fixtures.js';
import { envFor, generateTenant, makeToken, type FakeAuth0 } from '../helpers/fake-auth0.js';
import { expectWarehouseMatchesApi } from '../helpers/warehouse.js';

/**
 * The log follower's writes on a bad day (issue #18): the deletion guard knows what the tenant's
 * logs explain, users are removed only when the tenant says so (and come back when it says so),
 * a user whose listing failed is retried by the next follow, and an invalid user ID in an entry
 * is never stored.
 */

/** What a test works with: its emptied database, its fake tenant, and helpers bound to both. */
function world(t: TestDatabase, fake: FakeAuth0) {
  async function cli(args: string[], extra: Record<string, string> = {}) {
    const out = captureIo();
    const code = await main(args, envFor(fake, t.url, extra), out.io, cliDeps(t));
    return { code, ...out, text: [...out.stdout, ...out.stderr].join('\n') };
  }
  const follow = (extra: Record<string, string> = {}) => cli(['sync', '--from-logs'], extra);
  const lastRun = () => t.db.selectFrom('auth0.sync_runs').selectAll().orderBy('id', 'desc').executeTakeFirstOrThrow();
  const checkpoint = () => t.db.selectFrom('auth0.log_checkpoint').selectAll().executeTakeFirstOrThrow();
  const user = (userId: string) => t.db.selectFrom('auth0.users').selectAll().where('user_id', '=', userId).executeTakeFirst();
  const liveTokens = async (userId: string) =>
    (await t.db.selectFrom('auth0.refresh_tokens').select('id').where('user_id', '=', userId).where('deleted_at', 'is', null).execute()).length;
  const usersWithDeletedTokens = async () =>
    (await t.db.selectFrom('auth0.refresh_tokens').select('user_id').distinct().where('deleted_at', 'is not', null).execute()).length;

  /** `n` users, each with 1..3 tokens live for a year, synced, the follower at the newest entry. */
  async function syncedTenant(n: number): Promise<string[]> {
    const tenant = generateTenant({ users: n, seed: 7, maxTokensPerUser: 3 });
    for (const [userId, tokens] of tenant) {
      const live = tokens.map((token, i) => ({ ...liveToken(userId, i), id: token.id }));
      fake.setUser(userId, live.length > 0 ? live : [liveToken(userId, 0)]);
    }
    await loadUsers(t.db, tenant.keys());
    expect((await cli(['sync'])).code).toBe(0);
    expect((await follow()).code).toBe(0);
    return [...tenant.keys()];
  }

  return { t, fake, cli, follow, lastRun, checkpoint, user, liveTokens, usersWithDeletedTokens, syncedTenant };
}

const { withEmptyDatabaseAndTenant } = sharedDatabase();
function withTenant(use: (w: ReturnType<typeof world>) => Promise<void>): Promise<void> {
  return withEmptyDatabaseAndTenant(async (t, fake) => {
    await use(world(t, fake));
  });
}
const inAYear = () => new Date(Date.now() + 365 * 86_400_000).toISOString();
const liveToken = (userId: string, n: number) => ({ ...makeToken(userId, n), expires_at: inAYear(), idle_expires_at: inAYear() });

describe('the deletion guard of a follow', () => {
  it('applies a revocation burst that the logs explain, however large', () =>
    withTenant(async ({ t, fake, follow, lastRun, checkpoint, liveTokens, syncedTenant }) => {
      const users = await syncedTenant(60);
      const revoked = users.slice(0, 30);
      for (const userId of revoked) fake.setUser(userId, []); // "log out everywhere": srrt entries
      const { code, text } = await follow({ SYNC_DELETE_GUARD_MIN: '5' });
      expect({ code, text }).toMatchObject({ code: 0 });
      expect(await lastRun()).toMatchObject({
        trigger: 'logs',
        status: 'succeeded',
        delete_guard_tripped: false,
        users_gone_unexplained: 0,
        tokens_unexplained: 0,
      });
      for (const userId of revoked) expect(await liveTokens(userId)).toBe(0);
      expect((await checkpoint()).log_id).toBe(fake.logs.newestId());
      await expectWarehouseMatchesApi(t.db, fake);
    }));

  it('with the wrong credentials, lets at most SYNC_DELETE_GUARD_MIN users lose tokens across any number of follows', () =>
    withTenant(async ({ fake, cli, follow, checkpoint, usersWithDeletedTokens, syncedTenant }) => {
      const users = await syncedTenant(40);
      // Another tenant answers: none of our users exists there, and its logs name them (logins).
      fake.users.clear();
      const env = { SYNC_DELETE_GUARD_MIN: '5' };
      let stopped = 0;
      for (let i = 0; i < 8; i += 1) {
        for (const userId of users.slice(i * 3, i * 3 + 3)) fake.logs.append({ type: 's', user_id: userId, description: 'Successful login' });
        const { code, text } = await follow(env);
        if (code === 1) {
          stopped += 1;
          expect(text).toMatch(/more than SYNC_DELETE_GUARD_MIN=5 allows between full passes|record \d+ of \d+ users as gone from Auth0/);
          expect(text).toContain('nothing of it was marked deleted');
          expect(text).toContain('npm run sync -- --from-logs --allow-mass-delete');
        } else expect(code).toBe(0);
      }
      expect(stopped).toBeGreaterThan(0);
      expect(await usersWithDeletedTokens()).toBeLessThanOrEqual(5);
      const stuck = await checkpoint();
      // A full pass against the same wrong tenant deletes nothing either.
      expect((await cli(['sync'], env)).code).toBe(1);
      expect(await usersWithDeletedTokens()).toBeLessThanOrEqual(5);
      // An operator who knows the users really went confirms; the follow then moves on.
      const confirmed = await cli(['sync', '--from-logs', '--allow-mass-delete'], env);
      expect(confirmed.code).toBe(0);
      expect((await checkpoint()).log_id).not.toBe(stuck.log_id);
      expect((await checkpoint()).log_id).toBe(fake.logs.newestId());
      expect(await usersWithDeletedTokens()).toBe(24);
    }));

  it('bounds budgeted passes with the wrong credentials the same way, run after run', () =>
    withTenant(async ({ t, fake, cli, lastRun, usersWithDeletedTokens, syncedTenant }) => {
      await syncedTenant(40);
      const full = await t.db.selectFrom('auth0.sync_runs').select(['trigger', 'full_pass']).orderBy('id').execute();
      expect(full[0]).toEqual({ trigger: 'manual', full_pass: true });
      fake.users.clear(); // the wrong tenant: every user answers 404, and no log explains it
      const codes = [];
      for (let i = 0; i < 6; i += 1) codes.push((await cli(['sync'], { SYNC_MAX_USERS: '4', SYNC_DELETE_GUARD_MIN: '5' })).code);
      expect(codes.slice(0, 1)).toEqual([0]);
      expect(codes.at(-1)).toBe(1);
      expect(await lastRun()).toMatchObject({ full_pass: false, delete_guard_tripped: true });
      expect(await usersWithDeletedTokens()).toBeLessThanOrEqual(5);
    }));

  it('counts expired tokens as explained: a follow after a long quiet spell is not stopped', () =>
    withTenant(async ({ t, fake, cli, follow, lastRun, syncedTenant }) => {
      const users = await syncedTenant(12);
      // Tokens that expired while nobody looked: stored with a past expiry, gone from the listing.
      const past = new Date(Date.now() - 86_400_000).toISOString();
      for (const userId of users) {
        const old = fake.users.get(userId)!.map((token) => ({ ...token, expires_at: past }));
        fake.users.set(userId, old);
      }
      expect((await cli(['sync', '--allow-mass-delete'])).code).toBe(0); // store the past expiry
      for (const userId of users) fake.setUser(userId, [liveToken(userId, 90)]); // a login each, expired ones gone
      for (const userId of users) expect(fake.logs.entries.some((e) => e.type === 'srrt' && e.user_id === userId)).toBe(true);
      // Take the revocations out of the logs: only the logins remain to explain nothing.
      const logins = fake.logs.entries.filter((e) => e.type !== 'srrt');
      (fake.logs.entries as unknown[]).splice(0, fake.logs.entries.length, ...logins);
      const { code, text } = await follow({ SYNC_DELETE_GUARD_MIN: '2' });
      expect({ code, text }).toMatchObject({ code: 0 });
      expect(await lastRun()).toMatchObject({ users_gone_unexplained: 0, tokens_unexplained: 0 });
      await expectWarehouseMatchesApi(t.db, fake);
    }));
});

describe('users removed only when the tenant says so', () => {
  it('takes the last word of one batch: sdu then ss leaves the user live, ss then sdu removes it', () =>
    withTenant(async ({ t, fake, follow, user, liveTokens, syncedTenant }) => {
      const [recreated] = await syncedTenant(3);
      fake.deleteUser(recreated!); // sdu
      fake.setUser(recreated!, [liveToken(recreated!, 7)]); // ss: the same ID created again
      fake.setUser('auth0|brief', [liveToken('auth0|brief', 1)]); // ss
      fake.deleteUser('auth0|brief'); // sdu
      expect((await follow()).code).toBe(0);
      expect(await user(recreated!)).toMatchObject({ removed_at: null });
      expect(await liveTokens(recreated!)).toBe(1);
      expect(await user('auth0|brief')).toMatchObject({ removed_at: expect.any(Date) });
      await expectWarehouseMatchesApi(t.db, fake);
    }));

  it('across two follows: removed when deleted, back when created again', () =>
    withTenant(async ({ t, fake, cli, follow, user, liveTokens, syncedTenant }) => {
      const [recreated] = await syncedTenant(3);
      fake.deleteUser(recreated!);
      expect((await follow()).code).toBe(0);
      expect(await user(recreated!)).toMatchObject({ removed_at: expect.any(Date) });
      expect(await liveTokens(recreated!)).toBe(0);
      fake.setUser(recreated!, [liveToken(recreated!, 8)]);
      expect((await follow()).code).toBe(0);
      expect(await user(recreated!)).toMatchObject({ removed_at: null });
      expect(await liveTokens(recreated!)).toBe(1);
      // The next full pass syncs it again (it skips removed users only).
      expect((await cli(['sync'])).code).toBe(0);
      await expectWarehouseMatchesApi(t.db, fake);
    }));

  it('keeps a deleted user whose listing failed as it was, and retries it in the next follow', () =>
    withTenant(async ({ t, fake, follow, checkpoint, user, liveTokens, syncedTenant }) => {
      const [deleted] = await syncedTenant(3);
      const held = await liveTokens(deleted!);
      fake.deleteUser(deleted!);
      fake.intercept((ctx) => (ctx.userId === deleted ? { status: 503 } : undefined));
      const failed = await follow({ AUTH0_MAX_RETRIES: '0' });
      expect(failed.code).toBe(2); // partial
      expect(failed.text).toContain('1 failed again and are kept for the next follow');
      expect(await user(deleted!)).toMatchObject({ removed_at: null });
      expect(await liveTokens(deleted!)).toBe(held);
      expect(await t.db.selectFrom('auth0.log_follow_retries').selectAll().execute()).toEqual([
        expect.objectContaining({ user_id: deleted, deleted: true, explained: true, attempts: 1 }),
      ]);
      expect((await checkpoint()).log_id).toBe(fake.logs.newestId()); // the entries were read

      fake.intercept(undefined);
      const retried = await follow();
      expect(retried.code).toBe(0);
      expect(retried.text).toContain('1 of them retried after an earlier follow could not sync them');
      expect(await user(deleted!)).toMatchObject({ removed_at: expect.any(Date) });
      expect(await liveTokens(deleted!)).toBe(0);
      expect(await t.db.selectFrom('auth0.log_follow_retries').selectAll().execute()).toEqual([]);
    }));

  it('counts and skips an invalid user ID in an entry: never inserted, never listed', () =>
    withTenant(async ({ t, fake, follow, syncedTenant }) => {
      await syncedTenant(2);
      const hostile = ['auth0|\u001b[31mevil', `auth0|${'x'.repeat(600)}`, 'auth0|bell\u0007', 'auth0|nul\u0000'];
      for (const userId of hostile) fake.logs.append({ type: 'ss', user_id: userId, description: 'Successful signup' });
      fake.resetStats();
      const { code, text } = await follow();
      expect(code).toBe(0);
      expect(text).toContain('4 invalid user');
      expect(fake.stats.listRequests).toBe(0);
      const stored = await t.db.selectFrom('auth0.users').select('user_id').execute();
      expect(stored.map((r) => r.user_id).filter((id) => hostile.includes(id))).toEqual([]);
    }));
});
