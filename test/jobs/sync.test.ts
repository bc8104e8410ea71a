import { describe, expect, it } from '@jest/globals';
import { Kysely, PostgresDialect, type LogEvent } from 'kysely';
import pg from 'pg';
import { main } from '../../src/cli/main.js';
import type { Database } from '../../src/warehouse/schema.js';
import { captureIo, cliDeps, itServer, loadUsers, type TestDatabase } from '../helpers/db.js';
import { sharedDatabase } from '../helpers/fixtures.js';
import { expectWarehouseMatchesApi } from '../helpers/warehouse.js';
import { envFor, generateTenant, makeToken, type Auth0TokenJson, type FakeAuth0 } from '../helpers/fake-auth0.js';

const tenant = generateTenant({ users: 300, manyTokensEvery: 60, seed: 7 });

/** What a test works with: its emptied database, its fake tenant, and helpers bound to both. */
function world(t: TestDatabase, fake: FakeAuth0) {
  async function sync(args: string[] = [], extra: Record<string, string> = {}, deps = cliDeps(t)) {
    const out = captureIo();
    const code = await main(['sync', ...args], envFor(fake, t.url, { SYNC_PAGE_SIZE: '50', LOG_LEVEL: 'info', ...extra }), out.io, deps);
    return { code, ...out };
  }

  const lastRun = () => t.db.selectFrom('auth0.sync_runs').selectAll().orderBy('id', 'desc').executeTakeFirstOrThrow();
  const stateOf = (userId: string) => t.db.selectFrom('auth0.user_sync_state').selectAll().where('user_id', '=', userId).executeTakeFirstOrThrow();
  const tokenRow = (id: unknown) => t.db.selectFrom('auth0.refresh_tokens').selectAll().where('id', '=', String(id)).executeTakeFirstOrThrow();

  /** The first sync of the tenant, which most tests start from. */
  async function syncedOnce() {
    expect((await sync()).code).toBe(0);
    return lastRun();
  }

  return { t, fake, sync, lastRun, stateOf, tokenRow, syncedOnce };
}

// Each test gets an emptied database (one clone of the migrated template for the file) and a
// fresh tenant with the 300 users in the source table, so none depends on what another one left behind.
const { withEmptyDatabaseAndTenant } = sharedDatabase();
function withTenant(use: (w: ReturnType<typeof world>) => Promise<void>): Promise<void> {
  return withEmptyDatabaseAndTenant(async (t, fake) => {
    for (const [userId, tokens] of tenant) fake.setUser(userId, tokens);
    await loadUsers(t.db, tenant.keys());
    await use(world(t, fake));
  });
}

describe('sync, end to end', () => {
  it('stores every token, device and resource server the API returns', () =>
    withTenant(async ({ t, fake, sync, lastRun, stateOf }) => {
      const { code, logs, stderr } = await sync();
      expect(stderr).toEqual([]);
      expect(code).toBe(0);
      await expectWarehouseMatchesApi(t.db, fake);

      const run = await lastRun();
      const total = [...tenant.values()].reduce((n, tokens) => n + tokens.length, 0);
      expect(run).toMatchObject({ status: 'succeeded', trigger: 'manual', users_total: 300, users_synced: 300, users_failed: 0, tokens_seen: total });
      expect(run.finished_at).toBeInstanceOf(Date);
      expect(run.requests).toBeGreaterThan(300);
      expect(logs().at(-1)).toMatchObject({ msg: 'sync finished', runId: run.id, status: 'succeeded', usersSynced: 300 });
      const multiPage = [...tenant.entries()].find(([, tokens]) => tokens.length > 100)!;
      expect(await stateOf(multiPage[0])).toMatchObject({ status: 'synced', token_count: multiPage[1].length, last_run_id: run.id });
    }));

  it('reflects revoked, added and changed tokens and deleted users on the next run', () =>
    withTenant(async ({ t, fake, sync, lastRun, stateOf, tokenRow, syncedOnce }) => {
      const [userA, tokensA] = [...tenant.entries()].find(([, tokens]) => tokens.length >= 3)!;
      const [userB, tokensB] = [...tenant.entries()].filter(([, tokens]) => tokens.length >= 1)[5]!;
      const [, tokensC] = [...tenant.entries()].filter(([, tokens]) => tokens.length >= 2)[9]!;
      const firstRun = await syncedOnce();
      const revoked = tokensA[0]!;
      const changed: Auth0TokenJson = {
        ...tokensA[1]!,
        last_exchanged_at: '2026-11-25T10:00:00.000Z',
        device: { initial_ip: '1.1.1.1', last_ip: '9.9.9.9' },
        resource_servers: [{ audience: 'https://new/', scopes: 'read:things' }],
      };
      const added = makeToken(userA, 999);
      fake.setUser(userA, [changed, ...tokensA.slice(2), added]);
      fake.deleteUser(userB);

      const { code } = await sync();
      expect(code).toBe(0);
      await expectWarehouseMatchesApi(t.db, fake);
      const run = await lastRun();
      expect(run).toMatchObject({ status: 'succeeded', users_synced: 299, users_not_found: 1, tokens_deleted: 1 + tokensB.length });

      // The deletion is a change: it writes the row.
      expect(await tokenRow(revoked.id)).toMatchObject({ deleted_at: expect.any(Date), last_changed_run_id: run.id });
      for (const token of tokensB) expect((await tokenRow(token.id)).deleted_at).toBeInstanceOf(Date);
      expect(await stateOf(userB)).toMatchObject({ status: 'not_found', token_count: 0 });
      const changedRow = await tokenRow(changed.id);
      expect(changedRow).toMatchObject({ first_seen_run_id: firstRun.id, last_changed_run_id: run.id, deleted_at: null });
      expect(changedRow.first_seen_at.getTime()).toBeLessThan(changedRow.last_changed_at.getTime());
      // An unchanged token of a synced user is not rewritten.
      expect(await tokenRow(tokensC[0]!.id)).toMatchObject({ first_seen_run_id: firstRun.id, last_changed_run_id: firstRun.id });
      expect(await tokenRow(added.id)).toMatchObject({ first_seen_run_id: run.id, deleted_at: null });

      // A token that comes back is live again; an unchanged user's rows are untouched but seen.
      fake.setUser(userA, [revoked, changed]);
      expect((await sync()).code).toBe(0);
      expect(await tokenRow(revoked.id)).toMatchObject({ deleted_at: null });
      expect((await tokenRow(added.id)).deleted_at).toBeInstanceOf(Date);
      expect((await tokenRow(tokensC[0]!.id)).deleted_at).toBeNull();
      await expectWarehouseMatchesApi(t.db, fake);
    }));

  it('fails only the user with a malformed record, naming the field, and keeps its earlier rows', () =>
    withTenant(async ({ t, fake, sync, lastRun, stateOf, syncedOnce }) => {
      const [user, tokens] = [...tenant.entries()].filter(([, list]) => list.length >= 2)[3]!;
      await syncedOnce();
      const before = await t.db.selectFrom('auth0.refresh_tokens').selectAll().where('user_id', '=', user).orderBy('id').execute();
      const stateBefore = await stateOf(user);
      fake.setUser(user, [{ ...tokens[0]!, created_at: 'not a date' }, makeToken(user, 500)]);

      const { code, stderr, logs } = await sync();
      expect(code).toBe(2);
      expect(stderr.join('\n')).toContain('1 of 300 users failed');
      const run = await lastRun();
      expect(run).toMatchObject({ status: 'partial', users_failed: 1, users_synced: 299, users_not_found: 0 });
      const state = await stateOf(user);
      expect(state).toMatchObject({ status: 'failed', error_code: 'invalid_record', token_count: stateBefore.token_count });
      expect(state.error).toContain('created_at is not an ISO-8601 date: "not a date"');
      expect(state.last_success_at).toEqual(stateBefore.last_success_at);
      const after = await t.db.selectFrom('auth0.refresh_tokens').selectAll().where('user_id', '=', user).orderBy('id').execute();
      expect(after).toEqual(before);
      expect(logs().some((l) => l.msg === 'user failed' && l.userId === user)).toBe(true);
    }));

  it('keeps going when one user keeps failing at the API', () =>
    withTenant(async ({ fake, sync, lastRun, stateOf }) => {
      const [user] = [...fake.users.keys()].slice(-1);
      fake.intercept((ctx) => (ctx.userId === user ? { status: 400, body: '{"statusCode":400,"message":"Bad user id"}' } : undefined));
      const { code } = await sync();
      expect(code).toBe(2);
      expect(await stateOf(user!)).toMatchObject({ status: 'failed', error_code: 'bad_request', error: expect.stringContaining('400: Bad user id') });
      expect(await lastRun()).toMatchObject({ users_synced: 299, users_failed: 1 });
    }));

  it('--user syncs just those users, whether or not they are in the source table', () =>
    withTenant(async ({ t, fake, sync, lastRun, stateOf }) => {
      const outsider = 'google-oauth2|outsider';
      fake.setUser(outsider, [makeToken(outsider, 1), makeToken(outsider, 2)]);
      const [known] = [...tenant.keys()];
      const { code } = await sync(['--user', outsider, '--user', known!, '--user', outsider]);
      expect(code).toBe(0);
      const run = await lastRun();
      expect(run).toMatchObject({ trigger: 'backfill', users_total: 2, users_synced: 2, args: { users: [outsider, known] } });
      expect(await stateOf(outsider)).toMatchObject({ status: 'synced', token_count: 2, last_run_id: run.id });
      const synced = await t.db.selectFrom('auth0.user_sync_state').select('user_id').where('last_run_id', '=', run.id).execute();
      expect(synced.map((s) => s.user_id).sort()).toEqual([known, outsider].sort());
    }));

  itServer('writes user rows in batches, not a statement per token', () =>
    withTenant(async ({ t, fake, sync }) => {
      // Every statement the sync sends, seen through Kysely's log hook on a database handle of its own.
      const statements: string[] = [];
      const log = (event: LogEvent) => {
        if (event.level === 'query') statements.push(event.query.sql);
      };
      const pool = new pg.Pool({ connectionString: t.url, max: 4, options: '-c jit=off' });
      const counted = new Kysely<Database>({ dialect: new PostgresDialect({ pool }), log });
      try {
        const { code } = await sync([], {}, { openDatabase: async () => ({ db: counted, ownsDatabase: false, close: async () => {} }) });
        expect(code).toBe(0);
      } finally {
        await counted.destroy();
      }
      await expectWarehouseMatchesApi(t.db, fake);
      const tokens = [...tenant.values()].reduce((n, list) => n + list.length, 0);
      expect(tokens).toBeGreaterThan(300);
      // The run's own bookkeeping plus one write per batch of users (about 25 here): a handful
      // for 300 users and their tokens, not one per user or per token.
      const writes = statements.filter((text) => /^\s*(insert|update|delete|with\b[\s\S]*\b(insert|update|delete)\b)/i.test(text));
      expect(writes.filter((text) => text.includes('insert into "auth0"."refresh_tokens"')).length).toBeGreaterThan(0);
      expect(writes.length).toBeLessThan(50);
      expect(statements.length).toBeLessThan(300);
    }),
  );
});
