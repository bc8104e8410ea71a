import { describe, expect, it } from '@jest/globals';
import { createAuth0Client } from '../../src/auth0/client.js';
import { fetchAllRefreshTokens } from '../../src/auth0/refresh-tokens.js';
import { main } from '../../src/cli/main.js';
import { captureIo, cliDeps, loadUsers } from '../helpers/db.js';
import { withFakeTenant, withTestDatabase } from '../helpers/fixtures.js';
import { configFor, envFor, fastClock, generateTenant, makeToken, type FakeAuth0 } from '../helpers/fake-auth0.js';
import { expectWarehouseMatchesApi } from '../helpers/warehouse.js';

// Issue #20: the job asks GET /api/v2/users/{user_id}/refresh-tokens for include_totals=true and
// accepts both answer shapes, so a tenant whose route answers a bare array still syncs.

async function listThroughUsers(fake: FakeAuth0, userId: string, pageSize = 2) {
  const client = createAuth0Client(configFor(fake, 'postgres://x/y').auth0, { clock: fastClock, maxRetries: 1 });
  try {
    return await fetchAllRefreshTokens(client, userId, { pageSize, maxPages: 20, endpoint: 'users' });
  } finally {
    client.close();
  }
}

describe('the users route answering a bare array', () => {
  it('is paged with the last token id as from until an empty page', () =>
    withFakeTenant(
      async (fake) => {
        const user = 'samlp|corp|dept/alice';
        fake.setUser(
          user,
          Array.from({ length: 5 }, (_, i) => makeToken(user, i)),
        );
        const queries: string[] = [];
        fake.intercept((ctx) => {
          if (ctx.path !== '/oauth/token') queries.push(ctx.query.toString());
          return undefined;
        });
        expect(await listThroughUsers(fake, user)).toEqual(fake.users.get(user));
        const ids = fake.users.get(user)!.map((t) => String(t.id));
        expect(queries).toEqual([
          'include_totals=true&take=2',
          `include_totals=true&take=2&from=${encodeURIComponent(ids[1]!)}`,
          `include_totals=true&take=2&from=${encodeURIComponent(ids[3]!)}`,
          `include_totals=true&take=2&from=${encodeURIComponent(ids[4]!)}`,
        ]);
      },
      { usersRouteBareArray: true },
    ));

  it('refuses an array whose last token id is not a usable string, before sending it back', () =>
    withFakeTenant(async (fake) => {
      const answers = [
        ['[{"id":42}]', /last token's id is not a string/],
        ['[{"id":"rt_\\u001b[2J"}]', /last token's id contains a control character/],
        ['[{"id":""}]', /last token's id is empty/],
        [`[{"id":"${'x'.repeat(1025)}"}]`, /last token's id is longer than 1024 characters/],
        ['[7]', /last token's id is not a string/],
        ['"tokens"', /answered with JSON that is not an object/],
      ] as const;
      for (const [body, message] of answers) {
        fake.intercept((ctx) => (ctx.path === '/oauth/token' ? undefined : { status: 200, body }));
        await expect(listThroughUsers(fake, 'auth0|u')).rejects.toMatchObject({ code: 'bad_response', message: expect.stringMatching(message) });
      }
    }));

  it('still accepts the object shape with next', () =>
    withFakeTenant(async (fake) => {
      fake.intercept((ctx) => (ctx.path === '/oauth/token' ? undefined : { status: 200, body: '{"tokens":[{"id":"rt_1"}],"next":null}' }));
      expect(await listThroughUsers(fake, 'auth0|u')).toEqual([{ id: 'rt_1' }]);
    }));
});

describe('a sync against a tenant whose users route answers a bare array', () => {
  it('syncs every user through the users route (auto, without the Early Access route)', () =>
    withTestDatabase((t) =>
      withFakeTenant(
        async (fake) => {
          for (const [userId, tokens] of generateTenant({ users: 12, seed: 20, manyTokensEvery: 6 })) fake.setUser(userId, tokens);
          await loadUsers(t.db, fake.users.keys());
          const out = captureIo();
          const code = await main(['sync'], envFor(fake, t.url, { SYNC_PAGE_SIZE: '50', SYNC_CONCURRENCY: '4' }), out.io, cliDeps(t));
          expect({ code, stderr: out.stderr }).toEqual({ code: 0, stderr: [] });
          expect(fake.stats.userListRequests).toBeGreaterThan(12);
          const run = await t.db.selectFrom('auth0.sync_runs').selectAll().orderBy('id', 'desc').executeTakeFirstOrThrow();
          expect(run).toMatchObject({ status: 'succeeded', tokens_endpoint: 'users', users_synced: 12 });
          await expectWarehouseMatchesApi(t.db, fake);
        },
        { earlyAccess: false, usersRouteBareArray: true },
      ),
    ));
});
