import { describe, expect, it } from '@jest/globals';
import { errorForStatus } from '../../src/auth0/errors.js';
import { main } from '../../src/cli/main.js';
import { silentLogger } from '../../src/core/log.js';
import { createTokensEndpointChoice } from '../../src/pipeline/tokens-endpoint.js';
import { captureIo, cliDeps, loadUsers, type TestDatabase } from '../helpers/db.js';
import { sharedDatabase } from '../helpers/fixtures.js';
import { envFor, generateTenant, type FakeAuth0, type FakeAuth0Options } from '../helpers/fake-auth0.js';
import { expectWarehouseMatchesApi } from '../helpers/warehouse.js';

// Issue #12: the Early Access GET /api/v2/refresh-tokens may be missing on a tenant; the job
// then lists through GET /api/v2/users/{user_id}/refresh-tokens, by itself with `auto`.

/** What an end-to-end test works with: its emptied database, its sandbox tenant, and helpers bound to both. */
function world(t: TestDatabase, fake: FakeAuth0) {
  async function sync(extra: Record<string, string> = {}) {
    const out = captureIo();
    const env = envFor(fake, t.url, { SYNC_PAGE_SIZE: '50', SYNC_CONCURRENCY: '4', LOG_LEVEL: 'info', ...extra });
    const code = await main(['sync'], env, out.io, cliDeps(t));
    const switches = out.logs().filter((l) => String(l.msg).includes('is not available on this tenant'));
    return { code, stderr: out.stderr, logs: out.logs, switches };
  }

  const lastRun = () => t.db.selectFrom('auth0.sync_runs').selectAll().orderBy('id', 'desc').executeTakeFirstOrThrow();
  const deletedTokens = async () => (await t.db.selectFrom('auth0.refresh_tokens').select('id').where('deleted_at', 'is not', null).execute()).length;
  const multiPageUser = () => [...fake.users.entries()].find(([, tokens]) => tokens.length > 100)!;

  return { t, fake, sync, lastRun, deletedTokens, multiPageUser };
}

// Each end-to-end test gets an emptied database (one clone for the file) and a sandbox tenant of its own.
const { withEmptyDatabaseAndTenant } = sharedDatabase();

/** 24 users, every 12th with 120-260 tokens (several pages of 50); `next` stays on last pages. */
function withTenant(options: FakeAuth0Options, use: (w: ReturnType<typeof world>) => Promise<void>): Promise<void> {
  return withEmptyDatabaseAndTenant(async (t, fake) => {
    for (const [userId, tokens] of generateTenant({ users: 24, seed: 12, manyTokensEvery: 12 })) fake.setUser(userId, tokens);
    await loadUsers(t.db, fake.users.keys());
    await use(world(t, fake));
  }, options);
}

const NO_SCOPE_403 = { status: 403, body: '{"statusCode":403,"error":"Forbidden","message":"Forbidden"}' };
const EA = '/api/v2/refresh-tokens';

describe('AUTH0_TOKENS_ENDPOINT=auto (the default)', () => {
  it('switches once to the users route on a tenant without the Early Access one, and the warehouse matches the API', () =>
    withTenant({ earlyAccess: false }, async ({ t, fake, sync, lastRun, deletedTokens, multiPageUser }) => {
      const first = await sync();
      expect(first.stderr).toEqual([]);
      expect(first.code).toBe(0);
      expect(first.switches).toHaveLength(1);
      expect(first.switches[0]).toMatchObject({
        level: 'warn',
        msg: 'GET /api/v2/refresh-tokens is not available on this tenant (Early Access); listing tokens through GET /api/v2/users/{user_id}/refresh-tokens from now on',
        tokensEndpoint: 'users',
      });
      // Only the users in flight when the first answers came back asked the Early Access route.
      expect(fake.stats.listRequests - fake.stats.userListRequests).toBeLessThanOrEqual(4);
      await expectWarehouseMatchesApi(t.db, fake);
      const run = await lastRun();
      expect(run).toMatchObject({ status: 'succeeded', tokens_endpoint: 'users', users_synced: 24, users_not_found: 0, tokens_deleted: 0 });
      const [manyId, many] = multiPageUser();
      const state = await t.db.selectFrom('auth0.user_sync_state').selectAll().where('user_id', '=', manyId).executeTakeFirstOrThrow();
      expect(state).toMatchObject({ status: 'synced', token_count: many.length });
      expect(first.logs().at(-1)).toMatchObject({ msg: 'sync finished', tokensEndpoint: 'users' });

      // A user deleted in Auth0 answers the users route's 404 "The user does not exist.": its tokens are deleted.
      const [goneId, gone] = [...fake.users.entries()].find(([, tokens]) => tokens.length >= 2)!;
      fake.deleteUser(goneId);
      const second = await sync();
      expect(second.code).toBe(0);
      expect(second.switches).toHaveLength(1);
      expect(await lastRun()).toMatchObject({ tokens_endpoint: 'users', users_not_found: 1, tokens_deleted: gone.length });
      expect(await deletedTokens()).toBe(gone.length);
      await expectWarehouseMatchesApi(t.db, fake);
    }));

  it('marks nothing deleted when a tenant loses the Early Access route between runs', () =>
    withTenant({}, async ({ t, fake, sync, lastRun, deletedTokens }) => {
      expect((await sync()).code).toBe(0);
      expect(await lastRun()).toMatchObject({ tokens_endpoint: 'refresh-tokens' });
      fake.setEarlyAccess(false);
      const { code, switches } = await sync();
      expect(code).toBe(0);
      expect(switches).toHaveLength(1);
      expect(await lastRun()).toMatchObject({ tokens_endpoint: 'users', users_synced: 24, users_not_found: 0, tokens_deleted: 0 });
      expect(await deletedTokens()).toBe(0);
      await expectWarehouseMatchesApi(t.db, fake);
    }));

  it('never switches when the Early Access route works, even if its first answers are "the user does not exist"', () =>
    withTenant({}, async ({ fake, sync, lastRun }) => {
      // The first two listings answer as for deleted users; the route is there, so no switch.
      fake.intercept((ctx) =>
        ctx.path === EA && ctx.count <= 3
          ? { status: 404, body: '{"statusCode":404,"error":"Not Found","message":"The user does not exist.","errorCode":"inexistent_user"}' }
          : undefined,
      );
      const { code, switches } = await sync({ SYNC_CONCURRENCY: '2' });
      expect(code).toBe(0);
      expect(switches).toEqual([]);
      expect(fake.stats.userListRequests).toBe(0);
      expect(await lastRun()).toMatchObject({ tokens_endpoint: 'refresh-tokens', users_not_found: 2, users_synced: 22 });
    }));

  it('switches on a 403 that names no scope and on a 400 saying the feature is unknown', () =>
    withTenant({}, async ({ t, fake, sync, lastRun }) => {
      fake.intercept((ctx) => (ctx.path === EA ? NO_SCOPE_403 : undefined));
      const forbidden = await sync();
      expect(forbidden.code).toBe(0);
      expect(forbidden.switches).toHaveLength(1);
      expect(forbidden.switches[0]!.answer).toBe('GET /api/v2/refresh-tokens answered 403: Forbidden');
      await expectWarehouseMatchesApi(t.db, fake);

      const unknownFeature = '{"statusCode":400,"error":"Bad Request","message":"This feature is not enabled for this tenant."}';
      fake.intercept((ctx) => (ctx.path === EA ? { status: 400, body: unknownFeature } : undefined));
      const badRequest = await sync();
      expect(badRequest.code).toBe(0);
      expect(badRequest.switches).toHaveLength(1);
      expect(await lastRun()).toMatchObject({ status: 'succeeded', tokens_endpoint: 'users', users_synced: 24 });
    }));

  it('still stops on a missing scope, which no route can cure', () =>
    withTenant({ earlyAccess: false }, async ({ fake, sync }) => {
      // The listing routes only: the token endpoint speaks OAuth, and only its status and `error` are read.
      fake.intercept((ctx) =>
        ctx.path.startsWith('/api/v2/')
          ? {
              status: 403,
              body: '{"statusCode":403,"error":"Forbidden","message":"Insufficient scope, expected any of: read:refresh_tokens","errorCode":"insufficient_scope"}',
            }
          : undefined,
      );
      const { code, switches, stderr } = await sync();
      expect(code).toBe(1);
      expect(switches).toEqual([]);
      expect(stderr.join('\n')).toContain('grant the read:refresh_tokens scope');
    }));

  it('stops with one sentence when neither route is served, marking nothing', () =>
    withTenant({ earlyAccess: false }, async ({ fake, sync, lastRun }) => {
      fake.intercept((ctx) =>
        ctx.path.startsWith('/api/v2/users/') ? { status: 404, body: '{"statusCode":404,"error":"Not Found","message":"Not Found"}' } : undefined,
      );
      const { code, stderr, switches } = await sync();
      expect(code).toBe(1);
      expect(switches).toHaveLength(1);
      expect(stderr.join('\n')).toMatch(
        /answered 404: Not Found: neither GET \/api\/v2\/refresh-tokens nor GET \/api\/v2\/users\/\{user_id\}\/refresh-tokens is available; check AUTH0_DOMAIN\.$/,
      );
      expect(await lastRun()).toMatchObject({ status: 'failed', users_not_found: 0, users_synced: 0, tokens_endpoint: 'users' });
    }));
});

describe('a forced endpoint', () => {
  it('AUTH0_TOKENS_ENDPOINT=users lists every user through the users route', () =>
    withTenant({}, async ({ t, fake, sync, lastRun }) => {
      const { code, switches } = await sync({ AUTH0_TOKENS_ENDPOINT: 'users' });
      expect(code).toBe(0);
      expect(switches).toEqual([]);
      expect(fake.stats.listRequests).toBe(fake.stats.userListRequests);
      expect(await lastRun()).toMatchObject({ status: 'succeeded', tokens_endpoint: 'users', users_synced: 24 });
      await expectWarehouseMatchesApi(t.db, fake);
    }));

  it('AUTH0_TOKENS_ENDPOINT=refresh-tokens fails clearly on a tenant without it, deleting nothing', () =>
    withTenant({}, async ({ t, fake, sync, lastRun, deletedTokens }) => {
      expect((await sync({ AUTH0_TOKENS_ENDPOINT: 'refresh-tokens' })).code).toBe(0);
      fake.setEarlyAccess(false);
      const { code, stderr, switches } = await sync({ AUTH0_TOKENS_ENDPOINT: 'refresh-tokens' });
      expect(code).toBe(1);
      expect(switches).toEqual([]);
      expect(stderr).toHaveLength(1);
      expect(stderr[0]).toMatch(
        /^Run \d+ failed: GET \/api\/v2\/refresh-tokens answered 404: Not Found: the Early Access endpoint GET \/api\/v2\/refresh-tokens is not available on this tenant; set AUTH0_TOKENS_ENDPOINT=users or AUTH0_TOKENS_ENDPOINT=auto\.$/,
      );
      expect(fake.stats.userListRequests).toBe(0);
      expect(await lastRun()).toMatchObject({ status: 'failed', users_not_found: 0, tokens_deleted: 0 });
      expect(await deletedTokens()).toBe(0);
      const notFound = await t.db.selectFrom('auth0.user_sync_state').select('user_id').where('status', '<>', 'synced').execute();
      expect(notFound).toEqual([]);
    }));

  it('AUTH0_TOKENS_ENDPOINT=refresh-tokens keeps a 403 without scope fatal as forbidden', () =>
    withTenant({}, async ({ fake, sync }) => {
      fake.intercept((ctx) => (ctx.path === EA ? NO_SCOPE_403 : undefined));
      const { code, stderr, logs } = await sync({ AUTH0_TOKENS_ENDPOINT: 'refresh-tokens' });
      expect(code).toBe(1);
      expect(stderr.join('\n')).toContain('answered 403: Forbidden');
      expect(logs().find((l) => l.msg === 'stopping the run')).toMatchObject({ code: 'forbidden' });
      expect(fake.stats.userListRequests).toBe(0);
    }));
});

describe('createTokensEndpointChoice', () => {
  const what = 'GET /api/v2/refresh-tokens';
  const notFound = () => errorForStatus(404, '{"statusCode":404,"error":"Not Found","message":"Not Found"}', what);
  const userGone = () => errorForStatus(404, '{"statusCode":404,"message":"The user does not exist.","errorCode":"inexistent_user"}', what);
  const forbidden = () => errorForStatus(403, '{"statusCode":403,"message":"Forbidden"}', what);
  const badTake = () => errorForStatus(400, '{"statusCode":400,"message":"Query validation error: \'take\' must be an integer"}', what);
  const unknownParam = () => errorForStatus(400, '{"statusCode":400,"message":"Unknown query parameter: user_id"}', what);

  it('auto: switches on the first unavailable answer, once, and re-lists users still in flight', () => {
    const choice = createTokensEndpointChoice('auto', silentLogger);
    expect(choice.used()).toBeUndefined();
    expect(choice.current()).toBe('refresh-tokens');
    expect(choice.judge('refresh-tokens', notFound())).toEqual({ retry: true });
    expect(choice.current()).toBe('users');
    expect(choice.judge('refresh-tokens', forbidden())).toEqual({ retry: true }); // in flight before the switch
    expect(choice.judge('refresh-tokens', userGone())).toEqual({ retry: false, error: expect.objectContaining({ code: 'user_not_found' }) });
    expect(choice.used()).toBe('users');
  });

  it('auto: a 400 switches only when it says the parameter or feature is unknown', () => {
    const choice = createTokensEndpointChoice('auto', silentLogger);
    expect(choice.judge('refresh-tokens', badTake())).toEqual({ retry: false, error: expect.objectContaining({ code: 'bad_request' }) });
    expect(choice.current()).toBe('refresh-tokens');
    expect(choice.judge('refresh-tokens', unknownParam())).toEqual({ retry: true });
    expect(choice.current()).toBe('users');
  });

  it('auto: never switches once the Early Access route has answered', () => {
    const choice = createTokensEndpointChoice('auto', silentLogger);
    expect(choice.judge('refresh-tokens', userGone())).toMatchObject({ retry: false });
    choice.confirm('refresh-tokens');
    expect(choice.judge('refresh-tokens', notFound())).toEqual({ retry: false, error: expect.objectContaining({ code: 'bad_request' }) });
    expect(choice.judge('refresh-tokens', forbidden())).toEqual({ retry: false, error: expect.objectContaining({ code: 'forbidden' }) });
    expect(choice.current()).toBe('refresh-tokens');
  });

  it('forced: never switches; an unavailable route is fatal, a 403 stays forbidden', () => {
    const choice = createTokensEndpointChoice('refresh-tokens', silentLogger);
    const verdict = choice.judge('refresh-tokens', notFound());
    expect(verdict).toEqual({ retry: false, error: expect.objectContaining({ code: 'endpoint_unavailable', fatal: true }) });
    expect(choice.judge('refresh-tokens', forbidden())).toEqual({ retry: false, error: expect.objectContaining({ code: 'forbidden' }) });
    expect(choice.current()).toBe('refresh-tokens');
    const users = createTokensEndpointChoice('users', silentLogger);
    expect(users.current()).toBe('users');
    expect(users.judge('users', notFound())).toMatchObject({ retry: false, error: { code: 'endpoint_unavailable' } });
  });
});
