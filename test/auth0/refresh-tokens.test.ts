import { describe, expect, it } from '@jest/globals';
import { createAuth0Client, type Auth0Client } from '../../src/auth0/client.js';
import { fetchAllRefreshTokens, listRefreshTokens } from '../../src/auth0/refresh-tokens.js';
import { configFor, fastClock, makeToken, type FakeAuth0 } from '../helpers/fake-auth0.js';
import { withFakeTenant } from '../helpers/fixtures.js';

const tokensOf = (userId: string, n: number) => Array.from({ length: n }, (_, i) => makeToken(userId, i));

/** A fake tenant and a client of it whose access token is already fetched, closed after `use`. */
function withClient(use: (w: { fake: FakeAuth0; client: Auth0Client }) => Promise<void>): Promise<void> {
  return withFakeTenant(async (fake) => {
    const client = createAuth0Client(configFor(fake, 'postgres://x/y').auth0, { clock: fastClock });
    try {
      // The client fetches its access token now, so the test's intercept sees only the list calls
      // (an intercept that answers everything would otherwise answer /oauth/token).
      fake.setUser('warm-up', []);
      await client.getJson('/api/v2/refresh-tokens', { user_id: 'warm-up' });
      fake.resetStats();
      await use({ fake, client });
    } finally {
      client.close();
    }
  });
}

describe('listRefreshTokens', () => {
  it('follows next with from and stops on the empty page after a last page that still carries next', () =>
    withClient(async ({ fake, client }) => {
      fake.setUser('u1', tokensOf('u1', 5));
      const pages: string[][] = [];
      for await (const page of listRefreshTokens(client, 'u1', { pageSize: 2, maxPages: 10 })) {
        pages.push(page.map((t) => t.id as string));
      }
      expect(pages.map((p) => p.length)).toEqual([2, 2, 1]);
      expect(pages.flat()).toEqual([...fake.users.get('u1')!.map((t) => t.id)]);
      expect(fake.stats.listRequests).toBe(4); // the 4th answers an empty page without next
    }));

  it('stops when next is absent', () =>
    withClient(async ({ fake, client }) => {
      fake.setUser('u2', tokensOf('u2', 3));
      fake.intercept((ctx) => (ctx.query.get('user_id') === 'u2' ? { status: 200, body: JSON.stringify({ refresh_tokens: [{ id: 'x' }] }) } : undefined));
      const tokens = await fetchAllRefreshTokens(client, 'u2', { pageSize: 2, maxPages: 10 });
      expect(tokens).toEqual([{ id: 'x' }]);
    }));

  it('turns a cursor that never ends into a clear error', () =>
    withClient(async ({ fake, client }) => {
      let page = 0;
      fake.intercept(() => ({ status: 200, body: JSON.stringify({ refresh_tokens: [{ id: `t${page}` }], next: `again-${++page}` }) }));
      await expect(fetchAllRefreshTokens(client, 'u3', { pageSize: 1, maxPages: 5 })).rejects.toMatchObject({
        code: 'too_many_pages',
        message: expect.stringContaining('did not end after 5 pages (SYNC_MAX_PAGES_PER_USER)'),
      });
      expect(fake.stats.listRequests).toBe(6); // the 6th page holds tokens: more than 5 pages
    }));

  it('stops at once on a cursor that does not advance (a tenant ignoring from), not after maxPages', () =>
    withClient(async ({ fake, client }) => {
      fake.intercept(() => ({ status: 200, body: JSON.stringify({ refresh_tokens: [{ id: 'same' }], next: 'again' }) }));
      await expect(fetchAllRefreshTokens(client, 'u3', { pageSize: 1, maxPages: 5 })).rejects.toMatchObject({
        code: 'bad_response',
        message: expect.stringContaining('answered the same cursor twice'),
      });
      expect(fake.stats.listRequests).toBe(2);
    }));

  it('allows the empty page that confirms the end after exactly maxPages full pages', () =>
    withClient(async ({ fake, client }) => {
      fake.setUser('u6', tokensOf('u6', 4));
      const tokens = await fetchAllRefreshTokens(client, 'u6', { pageSize: 2, maxPages: 2 });
      expect(tokens).toHaveLength(4);
    }));

  it('refuses a 200 without a refresh_tokens array instead of reading it as "no tokens"', () =>
    withClient(async ({ fake, client }) => {
      fake.intercept(() => ({ status: 200, body: '{"tokens":[]}' }));
      await expect(fetchAllRefreshTokens(client, 'u1', { pageSize: 2, maxPages: 2 })).rejects.toMatchObject({ code: 'bad_response' });
    }));

  it('restarts a user from the first page, once, when the cursor expired', () =>
    withClient(async ({ fake, client }) => {
      fake.setUser('u4', tokensOf('u4', 5));
      let expired = false;
      fake.intercept((ctx) => {
        if (!expired && ctx.query.has('from')) {
          expired = true;
          fake.expireCursors();
        }
        return undefined;
      });
      const tokens = await fetchAllRefreshTokens(client, 'u4', { pageSize: 2, maxPages: 10 });
      expect(tokens.map((t) => t.id)).toEqual(fake.users.get('u4')!.map((t) => t.id));
    }));

  it('fails when the cursor expires again after the restart', () =>
    withClient(async ({ fake, client }) => {
      fake.setUser('u5', tokensOf('u5', 5));
      fake.intercept((ctx) => {
        if (ctx.query.has('from')) fake.expireCursors();
        return undefined;
      });
      await expect(fetchAllRefreshTokens(client, 'u5', { pageSize: 2, maxPages: 10 })).rejects.toMatchObject({ code: 'cursor_expired' });
    }));
});

describe('listRefreshTokens through GET /api/v2/users/{user_id}/refresh-tokens', () => {
  const users = { endpoint: 'users' as const };
  // A `|` and a `/` in the id: the path segment must be encoded, or the route is another one.
  const odd = 'samlp|corp|dept/alice';

  it('pages the same way, with the id encoded in the path and the array under tokens', () =>
    withClient(async ({ fake, client }) => {
      fake.setUser(odd, tokensOf(odd, 5));
      const paths: string[] = [];
      fake.intercept((ctx) => {
        paths.push(`${ctx.path}?${ctx.query}`);
        return undefined;
      });
      const pages: unknown[][] = [];
      for await (const page of listRefreshTokens(client, odd, { pageSize: 2, maxPages: 10, ...users })) pages.push(page);
      expect(pages.map((p) => p.length)).toEqual([2, 2, 1]);
      expect(pages.flat()).toEqual(fake.users.get(odd));
      expect(fake.stats).toMatchObject({ listRequests: 4, userListRequests: 4 });
      expect(paths[0]).toBe('/api/v2/users/samlp%7Ccorp%7Cdept%2Falice/refresh-tokens?include_totals=true&take=2');
      expect(paths[1]).toMatch(/^\/api\/v2\/users\/samlp%7Ccorp%7Cdept%2Falice\/refresh-tokens\?include_totals=true&take=2&from=/);
    }));

  it('stops when next is absent or empty, and keeps the objects as received', () =>
    withClient(async ({ fake, client }) => {
      const raw = { id: 'x', user_id: odd, added_later: { nested: true } };
      fake.intercept(() => ({ status: 200, body: JSON.stringify({ tokens: [raw], next: '' }) }));
      expect(await fetchAllRefreshTokens(client, odd, { pageSize: 2, maxPages: 10, ...users })).toEqual([raw]);
      expect(fake.stats.listRequests).toBe(1);
    }));

  it('refuses an answer without a tokens array, naming the route', () =>
    withClient(async ({ fake, client }) => {
      fake.intercept(() => ({ status: 200, body: '{"refresh_tokens":[]}' }));
      await expect(fetchAllRefreshTokens(client, odd, { pageSize: 2, maxPages: 2, ...users })).rejects.toMatchObject({
        code: 'bad_response',
        message: 'GET /api/v2/users/{user_id}/refresh-tokens answered without a tokens array',
      });
    }));

  it('restarts once on an expired cursor and caps the pages', () =>
    withClient(async ({ fake, client }) => {
      fake.setUser('u7', tokensOf('u7', 5));
      let expired = false;
      fake.intercept((ctx) => {
        if (!expired && ctx.query.has('from')) {
          expired = true;
          fake.expireCursors();
        }
        return undefined;
      });
      const tokens = await fetchAllRefreshTokens(client, 'u7', { pageSize: 2, maxPages: 10, ...users });
      expect(tokens.map((t) => t.id)).toEqual(fake.users.get('u7')!.map((t) => t.id));
      await expect(fetchAllRefreshTokens(client, 'u7', { pageSize: 1, maxPages: 2, ...users })).rejects.toMatchObject({ code: 'too_many_pages' });
    }));

  it("maps Auth0's 404 for a missing user to user_not_found", () =>
    withClient(async ({ client }) => {
      await expect(fetchAllRefreshTokens(client, 'auth0|nobody', { pageSize: 2, maxPages: 2, ...users })).rejects.toMatchObject({
        code: 'user_not_found',
        status: 404,
      });
    }));
});
