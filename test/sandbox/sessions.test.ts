import { afterEach, describe, expect, it } from '@jest/globals';
import { createAuth0Client } from '../../src/auth0/client.js';
import { collectSessions, fetchSessionsPage } from '../../src/auth0/sessions.js';
import { loadConfig } from '../../src/core/config.js';
import { startFakeAuth0, type FakeAuth0, type FakeAuth0Options } from '../../sandbox/auth0-server.js';
import { makeToken } from '../../sandbox/tenant.js';
import { fastClock } from '../helpers/fake-auth0.js';

// Issue #22: the sandbox serves GET /api/v2/users/{user_id}/sessions in Auth0's wire format, and
// src/auth0/sessions.ts reads it through the one client, refusing hostile answers.

const USER = 'auth0|alice';
const started: FakeAuth0[] = [];
afterEach(async () => {
  for (const fake of started.splice(0)) await fake.close();
});

async function start(options: FakeAuth0Options = {}): Promise<FakeAuth0> {
  const fake = await startFakeAuth0({ scope: 'read:refresh_tokens read:sessions', ...options });
  started.push(fake);
  fake.setUser(
    USER,
    Array.from({ length: 6 }, (_, n) => makeToken(USER, n)),
  );
  return fake;
}

async function accessToken(fake: FakeAuth0): Promise<string> {
  const res = await fetch(`${fake.url}/oauth/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ grant_type: 'client_credentials', client_id: 'test-client', client_secret: 'test-secret', audience: `${fake.url}/api/v2/` }),
  });
  return ((await res.json()) as { access_token: string }).access_token;
}

const get = async (fake: FakeAuth0, path: string, token: string) => {
  const res = await fetch(`${fake.url}${path}`, { headers: { authorization: `Bearer ${token}` } });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
};

const clientFor = (fake: FakeAuth0) =>
  createAuth0Client(loadConfig({ AUTH0_DOMAIN: fake.url, AUTH0_CLIENT_ID: 'test-client', AUTH0_CLIENT_SECRET: 'test-secret' }).auth0, {
    clock: fastClock,
    maxRetries: 1,
  });

describe('the sandbox sessions route', () => {
  it('answers {sessions, next} with keyset cursors, and the same objects as sessionsOf', async () => {
    const fake = await start();
    const token = await accessToken(fake);
    const all = fake.sessionsOf(USER)!;
    expect(all.length).toBeGreaterThan(1);
    const first = await get(fake, `/api/v2/users/${encodeURIComponent(USER)}/sessions?take=1`, token);
    expect(first.status).toBe(200);
    expect(first.body.sessions).toEqual([all[0]]);
    expect(typeof first.body.next).toBe('string');
    const second = await get(fake, `/api/v2/users/${encodeURIComponent(USER)}/sessions?take=1&from=${String(first.body.next)}`, token);
    expect(second.body.sessions).toEqual([all[1]]);
    const session = all[0]!;
    expect(Object.keys(session).sort()).toEqual(
      [
        'authenticated_at',
        'authentication',
        'clients',
        'cookie',
        'created_at',
        'device',
        'expires_at',
        'id',
        'idle_expires_at',
        'last_interacted_at',
        'session_metadata',
        'updated_at',
        'user_id',
      ].sort(),
    );
    // Tokens name their session; a session can end before its tokens (not listed any more).
    const listed = new Set(all.map((s) => s.id));
    const named = fake.users
      .get(USER)!
      .map((t) => t.session_id)
      .filter(Boolean);
    expect(named.some((id) => listed.has(id))).toBe(true);
    expect(fake.stats.sessionListRequests).toBe(2);
    expect(fake.stats.listRequests).toBe(0);
  });

  it("refuses without read:sessions, answers an unknown user with Auth0's 404, and answers as a tenant without the route when set so", async () => {
    const fake = await start({ scope: 'read:refresh_tokens' });
    const path = `/api/v2/users/${encodeURIComponent(USER)}/sessions`;
    expect(await get(fake, path, await accessToken(fake))).toMatchObject({
      status: 403,
      body: { message: 'Insufficient scope, expected any of: read:sessions' },
    });
    fake.setScope('read:refresh_tokens read:sessions');
    const token = await accessToken(fake);
    expect(await get(fake, '/api/v2/users/auth0%7Cnobody/sessions', token)).toMatchObject({ status: 404, body: { errorCode: 'inexistent_user' } });
    fake.setSessionsEndpoint('absent');
    expect(await get(fake, path, token)).toMatchObject({ status: 404, body: { message: 'Not Found' } });
    fake.setSessionsEndpoint('forbidden');
    expect((await get(fake, path, token)).status).toBe(403);
  });
});

describe('listing sessions through the client', () => {
  it('collects every page, restarting once on an expired cursor', async () => {
    const fake = await start();
    const client = clientFor(fake);
    try {
      const many = Array.from({ length: 7 }, (_, i) => ({ id: `s${i}`, user_id: USER }));
      fake.setSessions(USER, many);
      let expired = false;
      fake.intercept((ctx) => {
        if (!expired && ctx.query.has('from')) {
          expired = true;
          fake.expireCursors();
        }
        return undefined;
      });
      expect(await collectSessions(client, USER, { pageSize: 3, maxPages: 10 })).toEqual(many);
      await expect(collectSessions(client, USER, { pageSize: 1, maxPages: 3 })).rejects.toMatchObject({ code: 'too_many_pages' });
    } finally {
      client.close();
    }
  });

  it('refuses hostile answers instead of taking them for "no sessions"', async () => {
    const fake = await start();
    const client = clientFor(fake);
    try {
      const answers = [
        ['{"sessions":{}}', 'answered without a sessions array'],
        ['{"tokens":[]}', 'answered without a sessions array'],
        ['[]', 'answered with JSON that is not an object'],
        ['{"sessions":[],"next":7}', 'answered with a next cursor that is not a string'],
      ];
      for (const [body, words] of answers) {
        fake.intercept((ctx) => (ctx.path.endsWith('/sessions') ? { status: 200, body } : undefined));
        await expect(fetchSessionsPage(client, USER, { take: 10 })).rejects.toMatchObject({ code: 'bad_response', message: expect.stringContaining(words!) });
      }
      fake.intercept((ctx) =>
        !ctx.path.endsWith('/sessions')
          ? undefined
          : {
              status: 404,
              body: '{"statusCode":404,"error":"Not Found","message":"The user does not exist.","errorCode":"inexistent_user"}',
            },
      );
      await expect(fetchSessionsPage(client, USER, { take: 10 })).rejects.toMatchObject({ code: 'user_not_found' });
    } finally {
      client.close();
    }
  });
});
