import { describe, expect, it } from '@jest/globals';
import { main } from '../../src/cli/main.js';
import { createLogger } from '../../src/core/log.js';
import { runSyncJob } from '../../src/jobs/sync.js';
import { captureIo, cliDeps, itServer, loadUsers, type TestDatabase } from '../helpers/db.js';
import { withFakeTenant, withTestDatabase } from '../helpers/fixtures.js';
import { configFor, envFor, generateTenant, type FakeAuth0, type FakeAuth0Options } from '../helpers/fake-auth0.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';
import { expectWarehouseMatchesApi } from '../helpers/warehouse.js';

/** What a test works with: its database, its fake tenant, and a run bound to both. */
function world(t: TestDatabase, server: FakeAuth0) {
  /** One run in-process, with short backoff so fault tests take seconds. */
  function syncOnce(env: Record<string, string> = {}, extra: Partial<Parameters<typeof runSyncJob>[0]> = {}) {
    return runSyncJob({
      config: configFor(server, t.url, env),
      db: t.db,
      logger: createLogger({ level: 'error', write: () => {} }),
      trigger: 'manual',
      ownsDatabase: t.embedded,
      auth0: { backoffBaseMs: 10, backoffCapMs: 200 },
      ...extra,
    });
  }
  return { t, server, syncOnce };
}

/** A database of its own and a tenant of `users` users (in the source table), served as `fake` says; both closed after `use`. */
function withTenant(
  { users, fake = {}, tenant = { manyTokensEvery: 0 } }: { users: number; fake?: FakeAuth0Options; tenant?: { manyTokensEvery: number } },
  use: (w: ReturnType<typeof world>) => Promise<void>,
): Promise<void> {
  return withTestDatabase((t) =>
    withFakeTenant(async (server) => {
      for (const [userId, tokens] of generateTenant({ users, seed: 3, ...tenant })) server.setUser(userId, tokens);
      await loadUsers(t.db, server.users.keys());
      await use(world(t, server));
    }, fake),
  );
}

describe('a run on a bad day', () => {
  it('completes with every token stored when 13% of requests fail transiently under a tight rate limit', () =>
    withTenant({ users: 150, fake: { faultRate: 0.13, rateLimit: { perSecond: 150, burst: 15 } } }, async ({ t, server, syncOnce }) => {
      const result = await syncOnce({ SYNC_PAGE_SIZE: '3' });
      expect(result).toMatchObject({ status: 'succeeded', counts: { usersSynced: 150, usersFailed: 0 } });
      expect(server.stats.faults).toBeGreaterThan(20);
      await expectWarehouseMatchesApi(t.db, server);
    }));

  it('records a user whose requests keep failing as failed with the last error, and goes on', () =>
    withTenant({ users: 20 }, async ({ t, server, syncOnce }) => {
      const victim = [...server.users.keys()][7]!;
      server.intercept((ctx) => (ctx.userId === victim ? { status: 503, body: 'upstream down' } : undefined));
      const result = await syncOnce();
      expect(result).toMatchObject({ status: 'partial', counts: { usersSynced: 19, usersFailed: 1 } });
      const state = await t.db.selectFrom('auth0.user_sync_state').selectAll().where('user_id', '=', victim).executeTakeFirstOrThrow();
      expect(state).toMatchObject({ status: 'failed', error_code: 'server_error', error: expect.stringContaining('503: upstream down') });
    }));

  it(
    'reaches at least 90% of the allowed rate with under 5% of requests refused',
    () =>
      withTenant({ users: 250, fake: { rateLimit: { perSecond: 60, burst: 10 } } }, async ({ server, syncOnce }) => {
        const result = await syncOnce();
        expect(result.status).toBe('succeeded');
        const { listRequests, rateLimited, firstRequestAt, lastRequestAt } = server.stats;
        const seconds = (lastRequestAt! - firstRequestAt!) / 1000;
        const accepted = listRequests - rateLimited;
        expect(accepted / seconds / 60).toBeGreaterThanOrEqual(0.9);
        expect(rateLimited / listRequests).toBeLessThan(0.05);
      }),
    30_000,
  );

  it('renews an access token that expires or is revoked mid-run', () =>
    withTenant({ users: 60, fake: { tokenLifetimeSeconds: 1, latencyMs: 30 } }, async ({ t, server, syncOnce }) => {
      let listCalls = 0;
      server.intercept((ctx) => {
        // The 40th list call, not the 40th request: that one may be a token request, whose new
        // token the revocation would then miss.
        if (ctx.path === '/api/v2/refresh-tokens' && ++listCalls === 40) server.revokeAccessTokens();
        return undefined;
      });
      const result = await syncOnce({ SYNC_CONCURRENCY: '2' });
      expect(result.status).toBe('succeeded');
      expect(server.stats.tokenRequests).toBeGreaterThanOrEqual(3);
      // Each request in flight with the revoked token gets one 401, then all share one renewal.
      expect(server.stats.byStatus[401]).toBeGreaterThanOrEqual(1);
      expect(server.stats.byStatus[401]).toBeLessThanOrEqual(2);
      await expectWarehouseMatchesApi(t.db, server);
    }));

  it('restarts a user whose cursor expired from the first page, without duplicating rows', () =>
    withTenant({ users: 12, tenant: { manyTokensEvery: 4 } }, async ({ t, server, syncOnce }) => {
      const expiredFor = new Set<string>();
      server.intercept((ctx) => {
        if (ctx.query.has('from') && ctx.userId && !expiredFor.has(ctx.userId)) {
          expiredFor.add(ctx.userId);
          server.expireCursors();
        }
        return undefined;
      });
      const result = await syncOnce({ SYNC_CONCURRENCY: '1' });
      expect(result.status).toBe('succeeded');
      expect(expiredFor.size).toBeGreaterThanOrEqual(3);
      expect(server.stats.byStatus[400]).toBe(expiredFor.size);
      await expectWarehouseMatchesApi(t.db, server);
    }));

  it('stops the whole run at once on a 403, sending no more than a handful of list requests after it', () =>
    withTenant({ users: 400 }, async ({ t, server }) => {
      let firstForbidden = 0;
      server.intercept((ctx) => {
        if (ctx.path !== '/api/v2/refresh-tokens' || ctx.count < 60) return undefined;
        firstForbidden ||= ctx.count;
        return { status: 403, body: '{"statusCode":403,"error":"Forbidden","message":"Insufficient scope, expected any of: read:refresh_tokens"}' };
      });
      const out = captureIo();
      const code = await main(['sync'], envFor(server, t.url), out.io, cliDeps(t));
      expect(code).toBe(1);
      expect(out.stderr.join('\n')).toContain('grant the read:refresh_tokens scope');
      const after = server.stats.listRequests - (firstForbidden - 1); // the 403s and anything after
      expect(after).toBeLessThanOrEqual(10);
      const run = await t.db.selectFrom('auth0.sync_runs').selectAll().executeTakeFirstOrThrow();
      expect(run).toMatchObject({ status: 'failed', error: expect.stringContaining('Insufficient scope') });
      expect(run.users_synced).toBeLessThan(60);
    }));

  itServer('stops at once with exit 1 when the database goes away, and the next run marks that run interrupted', () =>
    withTenant({ users: 600, fake: { latencyMs: 5 } }, async ({ t, server }) => {
      const proxy = await startTcpProxy({ host: '127.0.0.1', port: Number(new URL(t.url!).port || 5432) });
      const viaProxy = new URL(t.url!);
      viaProxy.port = String(proxy.port);
      server.intercept((ctx) => {
        if (ctx.count === 150) void proxy.kill();
        return undefined;
      });
      const out = captureIo();
      const code = await main(['sync'], envFor(server, viaProxy.toString()), out.io);
      expect(code).toBe(1);
      expect(out.stderr.join('\n')).toMatch(/database_unavailable/);
      // The database is gone at request 150; the writer retries a cut connection twice before
      // giving up, while fetches go on for that moment: well short of the 600 users, not at once.
      expect(server.stats.listRequests).toBeLessThan(300);

      server.intercept(undefined);
      expect(await main(['sync'], envFor(server, t.url), captureIo().io)).toBe(0);
      const runs = await t.db.selectFrom('auth0.sync_runs').select(['status', 'error']).orderBy('id').execute();
      expect(runs.map((r) => r.status)).toEqual(['interrupted', 'succeeded']);
      await expectWarehouseMatchesApi(t.db, server);
    }),
  );

  itServer('counts what a batch wrote when the acknowledgement of its commit was lost', () =>
    withTenant({ users: 40 }, async ({ t, server }) => {
      const proxy = await startTcpProxy({ host: '127.0.0.1', port: Number(new URL(t.url!).port || 5432) });
      const viaProxy = new URL(t.url!);
      viaProxy.port = String(proxy.port);
      try {
        const lost = proxy.loseCommitAck(/insert into "auth0"\."refresh_tokens"/);
        const out = captureIo();
        const code = await main(['sync'], envFor(server, viaProxy.toString()), out.io);
        await lost; // it did happen
        expect({ code, stderr: out.stderr.filter((line) => !line.includes('commit that landed')) }).toEqual({ code: 0, stderr: [] });
        const run = await t.db.selectFrom('auth0.sync_runs').selectAll().executeTakeFirstOrThrow();
        const stored = await t.db
          .selectFrom('auth0.refresh_tokens')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .executeTakeFirstOrThrow();
        const history = await t.db
          .selectFrom('auth0.refresh_token_changes')
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .executeTakeFirstOrThrow();
        expect(Number(stored.n)).toBeGreaterThan(0);
        expect(run.tokens_added).toBe(Number(stored.n));
        expect(Number(history.n)).toBe(Number(stored.n)); // one `created` each, none written twice
        expect(run.users_synced).toBe(40);
      } finally {
        await proxy.kill();
      }
      await expectWarehouseMatchesApi(t.db, server);
    }),
  );
});
