import { describe, expect, it } from '@jest/globals';
import { sql } from 'kysely';
import { main } from '../../src/cli/main.js';
import { toInet } from '../../src/pipeline/normalize-sessions.js';
import { readLogLookups } from '../../src/warehouse/log-checkpoint.js';
import { captureIo, cliDeps, loadUsers, TEST_TENANT, type TestDatabase } from '../helpers/db.js';
import { sharedDatabase, withFakeTenant } from '../helpers/fixtures.js';
import { envFor, generateTenant, type FakeAuth0, type FakeAuth0Options } from '../helpers/fake-auth0.js';
import { expectWarehouseMatchesApi } from '../helpers/warehouse.js';
import { sessionEnded, sessionHasSecondFactor, type Auth0SessionJson } from '../../sandbox/tenant.js';

// Issue #22: each synced user's sessions beside its tokens (SYNC_SESSIONS), kept like tokens.

const WITH_SESSIONS = 'read:refresh_tokens read:users read:logs read:sessions';

/** What a test works with: its emptied database, its fake tenant, and helpers bound to both. */
function world(t: TestDatabase, fake: FakeAuth0) {
  async function sync(extra: Record<string, string> = {}) {
    const out = captureIo();
    const env = envFor(fake, t.url, { SYNC_PAGE_SIZE: '50', SYNC_CONCURRENCY: '4', LOG_LEVEL: 'info', ...extra });
    const code = await main(['sync'], env, out.io, cliDeps(t));
    const said = out.logs().filter((l) => String(l.msg).startsWith('sessions: '));
    return { code, stderr: out.stderr, said, logs: out.logs };
  }

  const storedSessions = () => t.db.selectFrom('auth0.sessions').selectAll().orderBy('id').execute();
  const changes = () => t.db.selectFrom('auth0.session_changes').select(['session_id', 'change', 'old_value', 'new_value']).orderBy('id').execute();
  /** One request per page, plus the empty page that confirms the end after a last page still carrying `next` (as for tokens). */
  const expectedSessionRequests = () =>
    [...fake.users.keys()].reduce((sum, id) => {
      const n = fake.sessionsOf(id)!.length;
      return sum + (n === 0 ? 1 : Math.ceil(n / 50) + 1);
    }, 0);
  const truth = () => [...fake.users.keys()].flatMap((userId) => fake.sessionsOf(userId) ?? []).sort((a, b) => String(a.id).localeCompare(String(b.id)));

  /** Every live session in the warehouse equals what the sandbox lists, field by field. */
  async function expectSessionsMatchApi(): Promise<void> {
    const rows = (await storedSessions()).filter((r) => r.deleted_at === null);
    const expected = truth();
    expect(rows.map((r) => r.id)).toEqual(expected.map((s) => s.id));
    rows.forEach((row, i) => {
      const api = expected[i]!;
      const device = (api.device ?? {}) as Record<string, string | undefined>;
      expect(row.raw).toEqual(api);
      for (const field of ['created_at', 'updated_at', 'authenticated_at', 'last_interacted_at', 'idle_expires_at', 'expires_at'] as const) {
        expect(row[field]?.toISOString() ?? null).toBe(api[field] ?? null);
      }
      expect(row).toMatchObject({
        user_id: api.user_id,
        initial_ip: device.initial_ip ?? null,
        initial_ip_inet: device.initial_ip ?? null,
        initial_asn: device.initial_asn ?? null,
        initial_user_agent: device.initial_user_agent ?? null,
        last_ip: device.last_ip ?? null,
        last_ip_inet: device.last_ip ?? null,
        last_asn: device.last_asn ?? null,
        last_user_agent: device.last_user_agent ?? null,
        client_ids: (api.clients as { client_id: string }[]).map((c) => c.client_id),
        authentication_methods: ((api.authentication as { methods: Record<string, unknown>[] }).methods ?? []).map((m) => ({ type: null, ...m })),
      });
    });
  }

  return { t, fake, sync, storedSessions, changes, expectedSessionRequests, truth, expectSessionsMatchApi };
}

type World = ReturnType<typeof world>;

/** On the test's database, a fresh tenant (granting read:sessions unless `options` say otherwise) of 20 users with live tokens (dates around now), every 10th with several pages of them, closed after `use`. */
function inTenant(t: TestDatabase, use: (w: World) => Promise<void>, options: FakeAuth0Options = {}): Promise<void> {
  return withFakeTenant(
    async (fake) => {
      for (const [userId, tokens] of generateTenant({ users: 20, seed: 22, manyTokensEvery: 10, datesAround: Date.now() })) fake.setUser(userId, tokens);
      await loadUsers(t.db, fake.users.keys());
      await use(world(t, fake));
    },
    { scope: WITH_SESSIONS, ...options },
  );
}

// Each test gets an emptied database (one clone of the migrated template for the file) and a fresh tenant.
const { withEmptyDatabase } = sharedDatabase();
const withTenant = (use: (w: World) => Promise<void>, options: FakeAuth0Options = {}) => withEmptyDatabase((t) => inTenant(t, use, options));

describe('SYNC_SESSIONS=auto with read:sessions granted', () => {
  it("lists every user's sessions once, says so in one line, and the warehouse equals the sandbox field by field", () =>
    withTenant(async ({ t, fake, sync, changes, expectedSessionRequests, truth, expectSessionsMatchApi }) => {
      const run = await sync();
      expect(run.stderr).toEqual([]);
      expect(run.code).toBe(0);
      expect(run.said.map((l) => l.msg)).toEqual(['sessions: on (SYNC_SESSIONS=auto and the access token grants read:sessions)']);
      expect(fake.stats.sessionListRequests).toBe(expectedSessionRequests());
      await expectWarehouseMatchesApi(t.db, fake);
      await expectSessionsMatchApi();
      expect(truth().length).toBeGreaterThan(10);
      const states = await t.db.selectFrom('auth0.user_sync_state').select('sessions_synced_at').execute();
      expect(states.every((s) => s.sessions_synced_at instanceof Date)).toBe(true);
      expect((await changes()).map((c) => c.change)).toEqual(truth().map(() => 'created'));
    }));

  it('writes nothing for an unchanged pass, records a deletion, a restoration and a change, and pages through many sessions', () =>
    withTenant(async ({ t, fake, sync, storedSessions, changes, expectedSessionRequests, expectSessionsMatchApi }) => {
      expect((await sync()).code).toBe(0);
      const versions = async () => (await sql<{ id: string; xmin: string }>`select id, xmin::text from auth0.sessions order by id`.execute(t.db)).rows;
      const before = await versions();
      const history = (await changes()).length;
      expect((await sync()).code).toBe(0);
      expect(await versions()).toEqual(before);
      expect((await changes()).length).toBe(history);

      // One session ends (revoked), another gets a second factor and a new address, a third user gets 120 sessions (3 pages of 50).
      const [userId, sessions] = [...fake.users.keys()].map((id) => [id, fake.sessionsOf(id)!] as const).find(([, s]) => s.length >= 2)!;
      const [gone, stepped, ...rest] = sessions;
      const steppedUp: Auth0SessionJson = {
        ...stepped,
        authenticated_at: new Date().toISOString(),
        device: { ...(stepped!.device as object), last_ip: '2001:db8::7' },
        authentication: {
          methods: [
            { name: 'pwd', timestamp: stepped!.created_at },
            { name: 'mfa', type: 'otp', timestamp: new Date().toISOString() },
          ],
        },
      };
      fake.setSessions(userId, [steppedUp, ...rest]);
      const manyUser = [...fake.users.keys()].find((id) => id !== userId)!;
      const many = Array.from({ length: 120 }, (_, i) => ({ ...fake.sessionsOf(manyUser)![0], id: `many_${String(i).padStart(3, '0')}`, user_id: manyUser }));
      fake.setSessions(manyUser, many);
      fake.resetStats();
      expect((await sync()).code).toBe(0);
      await expectSessionsMatchApi();
      const gonRow = (await storedSessions()).find((s) => s.id === gone!.id)!;
      expect(gonRow.deleted_at).toBeInstanceOf(Date);
      const recent = (await changes()).slice(history);
      expect(recent).toEqual(
        expect.arrayContaining([
          { session_id: gone!.id, change: 'deleted', old_value: null, new_value: null },
          expect.objectContaining({ session_id: stepped!.id, change: 'authenticated' }),
          expect.objectContaining({ session_id: stepped!.id, change: 'last_ip_changed', new_value: '2001:db8::7' }),
          expect.objectContaining({ session_id: stepped!.id, change: 'methods_changed', new_value: 'pwd mfa:otp' }),
        ]),
      );
      expect(fake.stats.sessionListRequests).toBe(expectedSessionRequests()); // the 120 sessions take 3 pages of 50

      // The session comes back: restored, not created again.
      fake.setSessions(userId, [gone!, steppedUp, ...rest]);
      expect((await sync()).code).toBe(0);
      expect((await changes()).filter((c) => c.session_id === gone!.id).map((c) => c.change)).toEqual(['created', 'deleted', 'restored']);
      expect((await storedSessions()).find((s) => s.id === gone!.id)!.deleted_at).toBeNull();
    }));

  it("marks a deleted user's sessions deleted, and keeps a failing user's sessions as they were", () =>
    withTenant(async ({ t, fake, sync, storedSessions }) => {
      expect((await sync()).code).toBe(0);
      const users = [...fake.users.keys()].filter((id) => (fake.sessionsOf(id) ?? []).length > 0);
      const [deleted, failing] = users;
      const failingSessions = fake.sessionsOf(failing!)!.map((s) => s.id);
      fake.deleteUser(deleted!);
      fake.setSessions(failing!, []);
      // The failing user's sessions route answers a 400 (not retried): its listing is never complete.
      fake.intercept((ctx) => (ctx.userId === failing && ctx.path.endsWith('/sessions') ? { status: 400 } : undefined));
      const run = await sync({ SYNC_MAX_DELETE_RATIO: '1' });
      expect(run.code).toBe(2);
      const rows = await storedSessions();
      expect(rows.filter((s) => s.user_id === deleted).every((s) => s.deleted_at !== null)).toBe(true);
      expect(rows.filter((s) => s.user_id === failing).map((s) => [s.id, s.deleted_at])).toEqual(failingSessions.map((id) => [id, null]));
      const state = await t.db.selectFrom('auth0.user_sync_state').selectAll().where('user_id', '=', failing!).executeTakeFirstOrThrow();
      expect(state).toMatchObject({ status: 'failed', error_code: 'bad_request' });
    }));

  it('makes hostile session fields safe: control characters stripped, bad addresses null in inet, a huge object capped', () =>
    withTenant(async ({ fake, sync, storedSessions }) => {
      const userId = [...fake.users.keys()][0]!;
      const base = fake.sessionsOf(userId)?.[0] ?? { id: 'base', user_id: userId };
      fake.setSessions(userId, [
        {
          ...base,
          id: 'hostile_1',
          user_id: userId,
          device: { last_ip: 'not-an-ip', initial_ip: '10.0.0.300', last_user_agent: 'Evil\u001b[31mAgent\r\nforged: line', last_asn: 'AS\u0000123' },
          clients: [{ client_id: 'c\u0007lient' }, { nope: true }],
          authentication: { methods: [{ name: 'pwd\u202e', timestamp: '2026-01-01T00:00:00Z' }] },
          session_metadata: { ...Object.fromEntries(Array.from({ length: 10 }, (_, i) => [`note${i}`, 'x'.repeat(40_000)])), 'k\u0000ey': 'v\u0000al' },
        },
      ]);
      expect((await sync()).code).toBe(0);
      const row = (await storedSessions()).find((s) => s.id === 'hostile_1')!;
      expect(row).toMatchObject({
        last_ip: 'not-an-ip',
        last_ip_inet: null,
        initial_ip: '10.0.0.300',
        initial_ip_inet: null,
        last_user_agent: 'Evil[31mAgent  forged: line'.replace('[31m', ''),
        last_asn: 'AS123',
        client_ids: ['client'],
        authentication_methods: [{ name: 'pwd', type: null, timestamp: '2026-01-01T00:00:00.000Z' }],
      });
      expect(JSON.stringify(row.raw).length).toBeLessThan(20_000);
      expect(row.raw).toMatchObject({ id: 'hostile_1', truncated: true });
      expect(JSON.stringify(row.raw)).not.toMatch(/[\u0000-\u001f]/);
      // A user whose session cannot be keyed fails alone, with its rows as they were.
      fake.setSessions(userId, [{ id: 'bad\u0001id' }]);
      const run = await sync();
      expect(run.code).toBe(2);
      expect((await storedSessions()).find((s) => s.id === 'hostile_1')!.deleted_at).toBeNull();
    }));

  it('reports tokens outliving their session and live tokens whose session saw no second factor', () =>
    withTenant(async ({ t, fake, sync }) => {
      expect((await sync()).code).toBe(0);
      const live = [...fake.users.values()]
        .flat()
        .filter(
          (tk) => typeof tk.session_id === 'string' && Date.parse(String(tk.expires_at)) > Date.now() && Date.parse(String(tk.idle_expires_at)) > Date.now(),
        );
      const outliving = await t.db
        .selectFrom('auth0.refresh_tokens_outliving_session' as never)
        .selectAll()
        .execute();
      const expectedOutliving = live.filter((tk) => sessionEnded(String(tk.session_id)));
      expect(expectedOutliving.length).toBeGreaterThan(0);
      expect((outliving as { token_id: string; why: string }[]).map((r) => [r.token_id, r.why]).sort()).toEqual(
        expectedOutliving.map((tk) => [tk.id, 'session_gone']).sort(),
      );
      const noMfa = await t.db
        .selectFrom('auth0.refresh_tokens_without_second_factor' as never)
        .selectAll()
        .execute();
      const expectedNoMfa = live.filter((tk) => !sessionEnded(String(tk.session_id)) && !sessionHasSecondFactor(String(tk.session_id)));
      expect(expectedNoMfa.length).toBeGreaterThan(0);
      expect((noMfa as { token_id: string }[]).map((r) => r.token_id).sort()).toEqual(expectedNoMfa.map((tk) => String(tk.id)).sort());

      // A token first seen by a run that did not list sessions is not taken for one outliving its session.
      const [userId, tokens] = [...fake.users.entries()][0]!;
      fake.setUser(userId, [...tokens, { ...tokens[0], id: 'rt_new_unlisted', session_id: 'sess_new_unlisted' }]);
      expect((await sync({ SYNC_SESSIONS: 'off' })).code).toBe(0);
      const { rows: unlisted } = await sql`select 1 from auth0.refresh_tokens_outliving_session where token_id = 'rt_new_unlisted'`.execute(t.db);
      expect(unlisted).toEqual([]);

      // A session that expired (Auth0 still listing it) and one deleted: each with its reason.
      const withTokens = live.find((tk) => !sessionEnded(String(tk.session_id)))!;
      const sessionId = String(withTokens.session_id);
      await sql`update auth0.sessions set expires_at = now() - interval '1 hour' where id = ${sessionId}`.execute(t.db);
      const { rows } = await sql<{ why: string }>`select why from auth0.refresh_tokens_outliving_session where session_id = ${sessionId}`.execute(t.db);
      expect(rows.map((r) => r.why)).toContain('session_expired');
      // CIDR queries on the typed addresses work.
      const { rows: cidr } = await sql<{ n: number }>`select count(*)::int as n from auth0.active_sessions where last_ip << '0.0.0.0/0'`.execute(t.db);
      expect(cidr[0]!.n).toBeGreaterThan(0);
      const perClient = await sql<{ client_id: string; active_sessions: string }>`select * from auth0.sessions_per_client`.execute(t.db);
      expect(perClient.rows.length).toBeGreaterThan(0);
      const perDevice = await sql<{ active_sessions: string }>`select sum(active_sessions)::int as n from auth0.sessions_per_device`.execute(t.db);
      expect(perDevice.rows.length).toBe(1);
    }));
});

describe('the log follower', () => {
  it('resolves a session named by a logout or a revocation through auth0.sessions, even one without tokens', () =>
    withTenant(async ({ t, sync, truth }) => {
      expect((await sync()).code).toBe(0);
      const web = truth().find((s) => String(s.id).startsWith('web_'))!;
      const lookups = await readLogLookups(t.db, TEST_TENANT, { tokenIds: [], sessionIds: [String(web.id), 'unknown'] });
      expect([...lookups.sessionUsers]).toEqual([[web.id, [web.user_id]]]);
    }));
});

describe('a tenant without sessions keeps working exactly as before', () => {
  it('sends the same requests and writes the same rows with SYNC_SESSIONS=auto and no read:sessions as with SYNC_SESSIONS=off', () =>
    withTenant(
      async ({ t, fake, sync, storedSessions }) => {
        const auto = await sync();
        expect(auto.code).toBe(0);
        expect(auto.said.map((l) => l.msg)).toEqual(['sessions: off (SYNC_SESSIONS=auto and the access token lacks read:sessions; grant it to sync sessions)']);
        const autoRequests = fake.stats.requests;
        expect(fake.stats.sessionListRequests).toBe(0);
        await expectWarehouseMatchesApi(t.db, fake);
        expect(await storedSessions()).toEqual([]);

        await sql`truncate auth0.refresh_tokens, auth0.refresh_token_devices, auth0.refresh_token_resource_servers, auth0.refresh_token_changes, auth0.user_sync_state, auth0.sync_runs cascade`.execute(
          t.db,
        );
        fake.resetStats();
        const off = await sync({ SYNC_SESSIONS: 'off' });
        expect(off.code).toBe(0);
        expect(off.said).toEqual([]);
        expect(fake.stats.requests).toBe(autoRequests);
        await expectWarehouseMatchesApi(t.db, fake);
      },
      { scope: 'read:refresh_tokens read:users read:logs' },
    ));

  it('turns sessions off once when the route is absent (404) or refused (403), and SYNC_SESSIONS=on stops the run naming what to set', () =>
    withEmptyDatabase(async (t) => {
      for (const mode of ['absent', 'forbidden'] as const) {
        await inTenant(
          t,
          async ({ fake, sync, storedSessions }) => {
            const run = await sync();
            expect(run.code).toBe(0);
            expect(run.said.map((l) => l.msg)).toEqual([
              'sessions: on (SYNC_SESSIONS=auto and the access token grants read:sessions)',
              'sessions: off for this run: GET /api/v2/users/{user_id}/sessions is not available to this client (SYNC_SESSIONS=auto); tokens are synced as before',
            ]);
            expect(fake.stats.sessionListRequests).toBeLessThanOrEqual(4); // the users in flight
            await expectWarehouseMatchesApi(t.db, fake);
            expect(await storedSessions()).toEqual([]);
            const on = await sync({ SYNC_SESSIONS: 'on' });
            expect(on.code).toBe(1);
            expect(on.stderr.join('\n')).toMatch(/not available to this client; grant read:sessions, or set SYNC_SESSIONS=auto or SYNC_SESSIONS=off/);
            await sql`truncate auth0.refresh_tokens, auth0.refresh_token_devices, auth0.refresh_token_resource_servers, auth0.refresh_token_changes, auth0.user_sync_state, auth0.sync_runs cascade`.execute(
              t.db,
            );
          },
          { sessionsEndpoint: mode },
        );
      }
    }));

  it('SYNC_SESSIONS=on with a token lacking read:sessions stops before the first listing', () =>
    withTenant(
      async ({ fake, sync }) => {
        const run = await sync({ SYNC_SESSIONS: 'on' });
        expect(run.code).toBe(1);
        expect(run.stderr.join('\n')).toMatch(/lacks the read:sessions scope/);
        expect(fake.stats.listRequests).toBe(0);
      },
      { scope: 'read:refresh_tokens' },
    ));
});

describe('toInet', () => {
  it('keeps what inet takes and nulls the rest', () => {
    expect(['10.1.2.3', '::1', '2001:db8::7', '::ffff:1.2.3.4'].map(toInet)).toEqual(['10.1.2.3', '::1', '2001:db8::7', '::ffff:1.2.3.4']);
    expect(['10.0.0.300', '1.2.3', 'fe80::1%eth0', 'x', ':::', ''].map(toInet)).toEqual([null, null, null, null, null, null]);
  });
});
