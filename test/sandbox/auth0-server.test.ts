import { describe, expect, it } from '@jest/globals';
import { generateTenant, makeToken, type Auth0TokenJson } from '../../sandbox/tenant.js';
import { startFakeAuth0, type FakeAuth0, type FakeAuth0Options } from '../../sandbox/auth0-server.js';
import { withFakeTenant } from '../helpers/fixtures.js';

const USER = 'auth0|alice';

interface Page {
  refresh_tokens: Auth0TokenJson[];
  next?: string;
}

async function getToken(fake: FakeAuth0, secret = 'test-secret'): Promise<Response> {
  return fetch(`${fake.url}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      grant_type: 'client_credentials',
      client_id: 'test-client',
      client_secret: secret,
      audience: `${fake.url}/api/v2/`,
    }),
  });
}

async function accessToken(fake: FakeAuth0): Promise<string> {
  const res = await getToken(fake);
  expect(res.status).toBe(200);
  return ((await res.json()) as { access_token: string }).access_token;
}

function list(fake: FakeAuth0, token: string, params: Record<string, string>): Promise<Response> {
  const query = new URLSearchParams(params);
  return fetch(`${fake.url}/api/v2/refresh-tokens?${query}`, { headers: { authorization: `Bearer ${token}` } });
}

describe('fake Auth0 server', () => {
  /**
   * A tenant with USER's 5 tokens and an access token for it, and `start` for the other servers a
   * test needs: all closed after `use`, even when the test fails.
   */
  const withTenant = (use: (w: { fake: FakeAuth0; token: string; start: (options?: FakeAuth0Options) => Promise<FakeAuth0> }) => Promise<void>) =>
    withFakeTenant(async (fake) => {
      fake.setUser(
        USER,
        Array.from({ length: 5 }, (_, n) => makeToken(USER, n)),
      );
      const started: FakeAuth0[] = [];
      const start = async (options?: FakeAuth0Options) => {
        const other = await startFakeAuth0(options);
        started.push(other);
        return other;
      };
      try {
        await use({ fake, token: await accessToken(fake), start });
      } finally {
        await Promise.all(started.map((f) => f.close()));
      }
    });

  it('issues an access token for the right credentials and refuses a wrong secret', () =>
    withTenant(async ({ fake }) => {
      const ok = await getToken(fake);
      expect(ok.status).toBe(200);
      expect(await ok.json()).toEqual({
        access_token: expect.any(String),
        token_type: 'Bearer',
        expires_in: 86400,
        scope: 'read:refresh_tokens read:users read:logs',
      });

      const form = await fetch(`${fake.url}/oauth/token`, {
        method: 'POST',
        body: new URLSearchParams({
          grant_type: 'client_credentials',
          client_id: 'test-client',
          client_secret: 'test-secret',
          audience: `${fake.url}/api/v2/`,
        }),
      });
      expect(form.status).toBe(200);

      const wrong = await getToken(fake, 'nope');
      expect(wrong.status).toBe(401);
      expect(await wrong.json()).toEqual({ error: 'access_denied', error_description: 'Unauthorized' });
    }));

  it('pages with take=2 over 5 tokens, keeps next on the last page, then answers an empty page', () =>
    withTenant(async ({ fake, token }) => {
      const ids: string[] = [];
      const pages: Page[] = [];
      let from: string | undefined;
      for (let i = 0; i < 10; i++) {
        const res = await list(fake, token, { user_id: USER, take: '2', ...(from ? { from } : {}) });
        expect(res.status).toBe(200);
        expect(res.headers.get('content-type')).toBe('application/json; charset=utf-8');
        const page = (await res.json()) as Page;
        pages.push(page);
        ids.push(...page.refresh_tokens.map((t) => t.id as string));
        if (!page.next || page.refresh_tokens.length === 0) break;
        from = page.next;
      }
      expect(pages.map((p) => p.refresh_tokens.length)).toEqual([2, 2, 1, 0]);
      expect(pages[2]?.next).toEqual(expect.any(String)); // the Auth0 quirk
      expect(pages[3]).toEqual({ refresh_tokens: [] });
      expect(ids).toEqual([...ids].sort());
      expect(new Set(ids).size).toBe(5);
      expect(pages[0]?.refresh_tokens[0]).toEqual(fake.users.get(USER)?.[0]);
    }));

  it('serves the same tokens and cursors at GET /api/v2/users/{user_id}/refresh-tokens, under tokens', () =>
    withTenant(async ({ fake, token }) => {
      const listUser = (userId: string, params: Record<string, string>) =>
        fetch(`${fake.url}/api/v2/users/${encodeURIComponent(userId)}/refresh-tokens?${new URLSearchParams(params)}`, {
          headers: { authorization: `Bearer ${token}` },
        });
      const pages: { tokens: Auth0TokenJson[]; next?: string }[] = [];
      let from: string | undefined;
      for (let i = 0; i < 10; i++) {
        const res = await listUser(USER, { include_totals: 'true', take: '2', ...(from ? { from } : {}) });
        expect(res.status).toBe(200);
        const page = (await res.json()) as { tokens: Auth0TokenJson[]; next?: string };
        pages.push(page);
        if (!page.next || page.tokens.length === 0) break;
        from = page.next;
      }
      expect(pages.map((p) => p.tokens.length)).toEqual([2, 2, 1, 0]);
      expect(pages[2]?.next).toEqual(expect.any(String));
      expect(pages.flatMap((p) => p.tokens)).toEqual(fake.users.get(USER));
      // A cursor from one route pages the other: they are one listing.
      const viaQuery = (await (await list(fake, token, { user_id: USER, take: '2', from: pages[0]!.next! })).json()) as Page;
      expect(viaQuery.refresh_tokens).toEqual(pages[1]!.tokens);

      const missing = await listUser('auth0|nobody', {});
      expect(missing.status).toBe(404);
      expect(((await missing.json()) as { errorCode: string }).errorCode).toBe('inexistent_user');
    }));

  it('answers the Early Access route as an unknown one once it is switched off', () =>
    withTenant(async ({ fake, start }) => {
      const off = await start({ earlyAccess: false });
      off.setUser(USER, fake.users.get(USER)!);
      const offToken = await accessToken(off);
      const res = await list(off, offToken, { user_id: USER });
      expect(res.status).toBe(404);
      expect(await res.json()).toEqual({ statusCode: 404, error: 'Not Found', message: 'Not Found' });
      const users = await fetch(`${off.url}/api/v2/users/${encodeURIComponent(USER)}/refresh-tokens?include_totals=true`, {
        headers: { authorization: `Bearer ${offToken}` },
      });
      expect(((await users.json()) as { tokens: unknown[] }).tokens).toHaveLength(5);
      expect(off.stats).toMatchObject({ listRequests: 2, userListRequests: 1 });
      off.setEarlyAccess(true);
      expect((await list(off, offToken, { user_id: USER })).status).toBe(200);
    }));

  it('continues a keyset cursor across a token deleted between pages', () =>
    withTenant(async ({ fake, token }) => {
      const first = (await (await list(fake, token, { user_id: USER, take: '2' })).json()) as Page;
      const tokens = fake.users.get(USER)!;
      const removed = tokens.splice(2, 1)[0]!;
      try {
        const second = (await (await list(fake, token, { user_id: USER, take: '2', from: first.next! })).json()) as Page;
        expect(second.refresh_tokens.map((t) => t.id)).toEqual([tokens[2]!.id, tokens[3]!.id]);
      } finally {
        tokens.splice(2, 0, removed);
      }
    }));

  it('answers 404 for an unknown user and 400 without user_id or with a bad take', () =>
    withTenant(async ({ fake, token }) => {
      const missing = await list(fake, token, { user_id: 'auth0|nobody' });
      expect(missing.status).toBe(404);
      expect(await missing.json()).toEqual({
        statusCode: 404,
        error: 'Not Found',
        message: 'The user does not exist.',
        errorCode: 'inexistent_user',
      });

      const noUser = await list(fake, token, {});
      expect(noUser.status).toBe(400);
      expect(((await noUser.json()) as { message: string }).message).toBe("Missing required 'user_id' parameter.");

      for (const take of ['0', '101', '2.5', 'x']) {
        expect((await list(fake, token, { user_id: USER, take })).status).toBe(400);
      }
    }));

  it('rejects a cursor issued before expireCursors()', () =>
    withTenant(async ({ fake, token }) => {
      const page = (await (await list(fake, token, { user_id: USER, take: '2' })).json()) as Page;
      fake.expireCursors();
      const res = await list(fake, token, { user_id: USER, take: '2', from: page.next! });
      expect(res.status).toBe(400);
      expect(await res.json()).toEqual({
        statusCode: 400,
        error: 'Bad Request',
        message: "The checkpoint ID provided in the 'from' parameter has expired or is invalid, please remove the checkpoint ID and try again",
        errorCode: 'invalid_query_string',
      });
      expect((await list(fake, token, { user_id: USER, from: 'garbage' })).status).toBe(400);
    }));

  it('projects fields, and excludes them with include_fields=false', () =>
    withTenant(async ({ fake, token }) => {
      const only = (await (await list(fake, token, { user_id: USER, fields: 'id,client_id' })).json()) as Page;
      for (const t of only.refresh_tokens) expect(Object.keys(t).sort()).toEqual(['client_id', 'id']);

      const without = (await (await list(fake, token, { user_id: USER, fields: 'device,user_id', include_fields: 'false' })).json()) as Page;
      expect(without.refresh_tokens).toHaveLength(5);
      for (const t of without.refresh_tokens) {
        expect(t).not.toHaveProperty('device');
        expect(t).not.toHaveProperty('user_id');
        expect(t).toHaveProperty('id');
      }
    }));

  it('answers 401 for a missing or revoked access token', () =>
    withTenant(async ({ fake }) => {
      const res = await fetch(`${fake.url}/api/v2/refresh-tokens?user_id=${encodeURIComponent(USER)}`);
      expect(res.status).toBe(401);
      expect(((await res.json()) as { message: string }).message).toBe('Invalid token.');

      const own = await accessToken(fake);
      fake.revokeAccessTokens();
      expect((await list(fake, own, { user_id: USER })).status).toBe(401);
    }));

  it('answers 401 "Expired token" once the access token has lived its tokenLifetimeSeconds', () =>
    withTenant(async ({ start }) => {
      // Short, but long enough for the first call under load: the expiry is real time, waited out.
      const short = await start({ tokenLifetimeSeconds: 0.3 });
      short.setUser(USER, [makeToken(USER, 0)]);
      const t = await accessToken(short);
      expect((await list(short, t, { user_id: USER })).status).toBe(200);
      await new Promise((resolve) => setTimeout(resolve, 350));
      const res = await list(short, t, { user_id: USER });
      expect(res.status).toBe(401);
      expect(await res.json()).toEqual({
        statusCode: 401,
        error: 'Unauthorized',
        message: 'Expired token received for JSON Web Token validation',
        errorCode: 'invalid_token',
      });
    }));

  it('answers 403 when the granted scope lacks read:refresh_tokens', () =>
    withTenant(async ({ start }) => {
      const narrow = await start({ scope: 'read:users' });
      narrow.setUser(USER, []);
      const { access_token, scope } = (await (await getToken(narrow)).json()) as { access_token: string; scope: string };
      expect(scope).toBe('read:users');
      const res = await list(narrow, access_token, { user_id: USER });
      expect(res.status).toBe(403);
      expect(await res.json()).toEqual({
        statusCode: 403,
        error: 'Forbidden',
        message: 'Insufficient scope, expected any of: read:refresh_tokens',
        errorCode: 'insufficient_scope',
      });
    }));

  it('sends rate-limit headers and a 429 without Retry-After once the burst is used up', () =>
    withTenant(async ({ start }) => {
      const limited = await start({ rateLimit: { perSecond: 1, burst: 3 } });
      limited.setUser(USER, [makeToken(USER, 0)]);
      const t = await accessToken(limited);
      const before = Math.floor(Date.now() / 1000);

      const remaining: string[] = [];
      for (let i = 0; i < 3; i++) {
        const res = await list(limited, t, { user_id: USER });
        expect(res.status).toBe(200);
        expect(res.headers.get('x-ratelimit-limit')).toBe('3');
        remaining.push(res.headers.get('x-ratelimit-remaining')!);
      }
      expect(remaining).toEqual(['2', '1', '0']);

      const res = await list(limited, t, { user_id: USER });
      expect(res.status).toBe(429);
      expect(await res.json()).toEqual({
        statusCode: 429,
        error: 'Too Many Requests',
        message: 'Global limit has been reached',
        errorCode: 'too_many_requests',
      });
      expect(res.headers.get('retry-after')).toBeNull();
      expect(res.headers.get('x-ratelimit-remaining')).toBe('0');
      const reset = Number(res.headers.get('x-ratelimit-reset'));
      expect(Number.isInteger(reset)).toBe(true);
      expect(reset).toBeGreaterThanOrEqual(before);
      expect(reset).toBeLessThanOrEqual(before + 2);
      expect(limited.stats.rateLimited).toBe(1);
      expect(limited.stats.byStatus[429]).toBe(1);
    }));

  it('answers scripted faults from intercept: a socket reset, then a status', () =>
    withTenant(async ({ fake, token }) => {
      fake.intercept(({ path, count }) => {
        if (path !== '/api/v2/refresh-tokens') return undefined;
        return count % 2 === 0 ? { reset: true } : { status: 503, body: 'down' };
      });
      try {
        const results = await Promise.allSettled([list(fake, token, { user_id: USER }), list(fake, token, { user_id: USER })]);
        const statuses = await Promise.all(results.map(async (r) => (r.status === 'fulfilled' ? `${r.value.status} ${await r.value.text()}` : 'reset')));
        expect(statuses.sort()).toEqual(['503 down', 'reset']);
      } finally {
        fake.intercept(undefined);
      }
      expect((await list(fake, token, { user_id: USER })).status).toBe(200);
    }));

  it('injects seeded transient faults at faultRate', () =>
    withTenant(async ({ start }) => {
      const flaky = await start({ faultRate: 1, seed: 42 });
      flaky.setUser(USER, [makeToken(USER, 0)]);
      const t = await accessToken(flaky);
      const outcomes: string[] = [];
      for (let i = 0; i < 6; i++) {
        try {
          const res = await list(flaky, t, { user_id: USER });
          const body = await res.text();
          outcomes.push(`${res.status}:${body.startsWith('{"statusCode"') ? 'json' : body}`);
        } catch {
          outcomes.push('reset');
        }
      }
      expect(outcomes.sort()).toEqual(
        ['503:<html>Service Unavailable</html>', '500:json', '408:json', 'reset', '200:{"refresh_tokens":[{"id":"rt_', '200:not json'].sort(),
      );
      expect(flaky.stats.faults).toBe(6);
    }));
});

describe('makeToken and generateTenant', () => {
  it('is deterministic and realistic', () => {
    expect(makeToken('auth0|x', 3)).toEqual(makeToken('auth0|x', 3));
    const t = makeToken('auth0|x', 3, { rotating: false });
    expect(t.id).toMatch(/^rt_[0-9a-f]{16}$/);
    expect(t.rotating).toBe(false);
    expect(t.created_at).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);

    const tenant = generateTenant({ users: 30, seed: 3, manyTokensEvery: 10 });
    expect(tenant).toEqual(generateTenant({ users: 30, seed: 3, manyTokensEvery: 10 }));
    const all = [...tenant.values()].flat();
    const withDevice = all.filter((x) => 'device' in x).length;
    expect(withDevice).toBeGreaterThan(all.length * 0.3);
    expect(withDevice).toBeLessThan(all.length * 0.7);
    for (const [userId, tokens] of tenant) {
      const ids = tokens.map((x) => x.id as string);
      expect(ids).toEqual([...ids].sort());
      if (userId.endsWith('10') || userId.endsWith('20') || userId.endsWith('30')) {
        expect(tokens.length).toBeGreaterThanOrEqual(120);
      } else {
        expect(tokens.length).toBeLessThanOrEqual(5);
      }
    }
  });
});
