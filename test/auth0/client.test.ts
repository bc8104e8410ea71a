import { describe, expect, it } from '@jest/globals';
import { createAuth0Client, type Auth0Client } from '../../src/auth0/client.js';
import { Auth0Error } from '../../src/auth0/errors.js';
import { configFor, fastClock, makeToken, skippingClock, startFakeAuth0, type FakeAuth0 } from '../helpers/fake-auth0.js';
import { withFakeTenant } from '../helpers/fixtures.js';

const LIST = '/api/v2/refresh-tokens';

async function errorOf(promise: Promise<unknown>): Promise<Auth0Error> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(Auth0Error);
  return error as Auth0Error;
}

/** A fake tenant holding one user, and `clientFor` to make clients of it: all closed after `use`. */
function withTenant(use: (w: { fake: FakeAuth0; clientFor: (env?: Record<string, string>, options?: object) => Auth0Client }) => Promise<void>): Promise<void> {
  return withFakeTenant(async (fake) => {
    fake.setUser('auth0|a', [makeToken('auth0|a', 1)]);
    const clients: Auth0Client[] = [];
    const clientFor = (env: Record<string, string> = {}, options = {}): Auth0Client => {
      const client = createAuth0Client(configFor(fake, 'postgres://unused/db', env).auth0, { clock: fastClock, ...options });
      clients.push(client);
      return client;
    };
    try {
      await use({ fake, clientFor });
    } finally {
      for (const client of clients) client.close();
    }
  });
}

describe('Auth0 client', () => {
  it('fetches one access token and shares it across concurrent callers', () =>
    withTenant(async ({ fake, clientFor }) => {
      const auth0 = clientFor();
      await Promise.all(Array.from({ length: 10 }, () => auth0.getJson(LIST, { user_id: 'auth0|a' })));
      expect(fake.stats.tokenRequests).toBe(1);
      expect(fake.stats.listRequests).toBe(10);
      expect(auth0.requests).toBe(11);
    }));

  it('retries 5xx, 408, resets and garbage bodies, then succeeds', () =>
    withTenant(async ({ fake, clientFor }) => {
      const script = [{ status: 503, body: '<html>down</html>' }, { status: 408 }, { reset: true }, { truncate: true }];
      fake.intercept((ctx) => (ctx.path === LIST ? script.shift() : undefined));
      const body = (await clientFor().getJson(LIST, { user_id: 'auth0|a' })) as { refresh_tokens: unknown[] };
      expect(body.refresh_tokens).toHaveLength(1);
      expect(fake.stats.listRequests).toBe(5);
    }));

  it('gives up after the retry budget with the last error', () =>
    withTenant(async ({ fake, clientFor }) => {
      fake.intercept((ctx) => (ctx.path === LIST ? { status: 502, body: 'bad gateway' } : undefined));
      const error = await errorOf(clientFor({}, { maxRetries: 2 }).getJson(LIST, { user_id: 'auth0|a' }));
      expect(error.code).toBe('server_error');
      expect(error.status).toBe(502);
      expect(error.message).toBe('GET /api/v2/refresh-tokens answered 502: bad gateway');
      expect(fake.stats.listRequests).toBe(3);
    }));

  it('renews the access token once on a 401 and retries', () =>
    withTenant(async ({ fake, clientFor }) => {
      const auth0 = clientFor();
      await auth0.getJson(LIST, { user_id: 'auth0|a' });
      fake.revokeAccessTokens();
      await auth0.getJson(LIST, { user_id: 'auth0|a' });
      expect(fake.stats.tokenRequests).toBe(2);
    }));

  it('renews an access token shortly before it expires', () =>
    withTenant(async () => {
      const shortLived = await startFakeAuth0({ tokenLifetimeSeconds: 1 });
      shortLived.setUser('u', []);
      // The client's clock is moved by hand: no real second passes (the fake's token stays valid).
      let now = Date.now();
      const clock = { now: () => now, sleep: fastClock.sleep };
      const auth0 = createAuth0Client(configFor(shortLived, 'postgres://x/y').auth0, { clock });
      try {
        await auth0.getJson(LIST, { user_id: 'u' });
        now += 800; // renewal is due 100 ms (a tenth of the lifetime) before expiry
        await auth0.getJson(LIST, { user_id: 'u' });
        expect(shortLived.stats.tokenRequests).toBe(1);
        now += 300;
        await auth0.getJson(LIST, { user_id: 'u' });
        expect(shortLived.stats.tokenRequests).toBe(2);
        expect(shortLived.stats.byStatus[401]).toBeUndefined();
      } finally {
        auth0.close();
        await shortLived.close();
      }
    }));

  it('says which credentials to check when the token endpoint refuses them, without the secret', () =>
    withTenant(async ({ fake, clientFor }) => {
      const error = await errorOf(clientFor({ AUTH0_CLIENT_SECRET: 'wrong-secret-42' }).getJson(LIST, { user_id: 'auth0|a' }));
      expect(error.code).toBe('invalid_credentials');
      expect(error.fatal).toBe(true);
      expect(error.message).toContain('AUTH0_CLIENT_SECRET');
      expect(error.message).not.toContain('wrong-secret');
      expect(fake.stats.listRequests).toBe(0);
    }));

  it('refuses a token without read:refresh_tokens before the first list call', () =>
    withTenant(async ({ fake, clientFor }) => {
      fake.setScope('read:users');
      const error = await errorOf(clientFor().getJson(LIST, { user_id: 'auth0|a' }));
      expect(error.code).toBe('missing_scope');
      expect(error.message).toContain('read:refresh_tokens');
      expect(fake.stats.listRequests).toBe(0);
    }));

  it('maps a 404 to user_not_found and never retries it', () =>
    withTenant(async ({ fake, clientFor }) => {
      const error = await errorOf(clientFor().getJson(LIST, { user_id: 'nobody' }));
      expect(error.code).toBe('user_not_found');
      expect(error.retryable).toBe(false);
      expect(fake.stats.listRequests).toBe(1);
    }));

  it('treats only Auth0\'s own "no such user" 404 as a deleted user', () =>
    withTenant(async ({ fake, clientFor }) => {
      fake.intercept((ctx) => (ctx.path === LIST ? { status: 404, body: '<html>Not Found</html>' } : undefined));
      const error = await errorOf(clientFor().getJson(LIST, { user_id: 'auth0|a' }));
      expect(error.code).toBe('bad_request');
      fake.intercept((ctx) => (ctx.path === LIST ? { status: 404, body: '{"statusCode":404,"message":"User not found"}' } : undefined));
      expect((await errorOf(clientFor().getJson(LIST, { user_id: 'auth0|a' }))).code).toBe('user_not_found');
    }));

  it('backs off a busy token endpoint, then stops the run with token_unavailable', () =>
    withTenant(async ({ fake, clientFor }) => {
      fake.intercept((ctx) => (ctx.path === '/oauth/token' ? { status: 429, body: '{"error":"too_many_requests"}' } : undefined));
      const error = await errorOf(clientFor({}, { maxRetries: 2 }).getJson(LIST, { user_id: 'auth0|a' }));
      expect(error.code).toBe('token_unavailable');
      expect(error.fatal).toBe(true);
      expect(fake.stats.tokenRequests).toBe(3);
    }));

  it('waits out a 429 without spending the retry budget', () =>
    withTenant(async ({ fake, clientFor }) => {
      let n = 0;
      fake.intercept((ctx) =>
        ctx.path === LIST && n++ < 3
          ? { status: 429, headers: { 'x-ratelimit-limit': '10', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': '0' } }
          : undefined,
      );
      // Each 429 holds callers for at least a second: on this clock the three holds pass in
      // milliseconds, and what was waited can be checked.
      const clock = skippingClock();
      const start = clock.now();
      const body = await clientFor({}, { maxRetries: 0, clock }).getJson(LIST, { user_id: 'auth0|a' });
      expect(body).toHaveProperty('refresh_tokens');
      expect(fake.stats.listRequests).toBe(4);
      expect(clock.now() - start).toBeGreaterThanOrEqual(3 * 1000);
    }));
});
