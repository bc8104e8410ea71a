import { describe, expect, it } from '@jest/globals';
import { gunzipSync } from 'node:zlib';
import { makeToken, type Auth0TokenJson } from '../../sandbox/tenant.js';
import { DEFAULT_RATE_LIMIT, startFakeAuth0, type FakeAuth0 } from '../../sandbox/auth0-server.js';
import { withFakeTenant } from '../helpers/fixtures.js';

/** The sandbox speaks Auth0's wire format (issue #20): headers, include_totals, parameters, error bodies, the export's defaults. */

const USER = 'auth0|wire';
const usersRoute = `/api/v2/users/${encodeURIComponent(USER)}/refresh-tokens`;

/** A sandbox tenant (USER with 5 tokens, three without) and an access token for it, closed after `use`. */
function withTenant(use: (w: ReturnType<typeof world>) => Promise<void>): Promise<void> {
  return withFakeTenant(
    async (fake) => {
      fake.setUser(
        USER,
        Array.from({ length: 5 }, (_, n) => makeToken(USER, n)),
      );
      for (const id of ['auth0|x1', 'auth0|x2', 'auth0|x3']) fake.setUser(id, []);
      const res = await fetch(`${fake.url}/oauth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ grant_type: 'client_credentials', client_id: 'test-client', client_secret: 'test-secret', audience: `${fake.url}/api/v2/` }),
      });
      const auth = { authorization: `Bearer ${((await res.json()) as { access_token: string }).access_token}` };
      await use(world(fake, auth));
    },
    { usersExport: { pollsToComplete: 1 } },
  );
}

function world(fake: FakeAuth0, auth: Record<string, string>) {
  const get = (path: string, params: Record<string, string> = {}, headers = auth) => fetch(`${fake.url}${path}?${new URLSearchParams(params)}`, { headers });

  async function exportFile(body: Record<string, unknown>): Promise<{ job: Record<string, unknown>; text: string }> {
    const created = await fetch(`${fake.url}/api/v2/jobs/users-exports`, {
      method: 'POST',
      headers: { ...auth, 'content-type': 'application/json' },
      body: JSON.stringify(body),
    });
    expect(created.status).toBe(201);
    const { id } = (await created.json()) as { id: string };
    const job = (await (await fetch(`${fake.url}/api/v2/jobs/${id}`, { headers: auth })).json()) as Record<string, unknown>;
    const file = await fetch(String(job.location));
    expect(file.status).toBe(200);
    return { job, text: gunzipSync(Buffer.from(await file.arrayBuffer())).toString('utf8') };
  }

  return { fake, auth, get, exportFile };
}

async function expectError(res: Response, status: number, errorCode: string, message?: RegExp): Promise<void> {
  expect(res.status).toBe(status);
  const body = (await res.json()) as Record<string, unknown>;
  expect(Object.keys(body).sort()).toEqual(['error', 'errorCode', 'message', 'statusCode']);
  expect(body).toMatchObject({ statusCode: status, errorCode });
  if (message) expect(body.message).toMatch(message);
}

describe('the sandbox rate-limit headers', () => {
  it('are on every /api/v2 answer, errors included, with the generous default bucket', () =>
    withTenant(async ({ fake, get }) => {
      const answers = [
        await get('/api/v2/refresh-tokens', { user_id: USER }),
        await get(usersRoute),
        await get('/api/v2/logs', { from: '0' }),
        await get('/api/v2/nope'),
      ];
      answers.push(await get('/api/v2/refresh-tokens', { user_id: USER }, {}));
      expect(answers.map((r) => r.status)).toEqual([200, 200, 200, 404, 401]);
      for (const res of answers) {
        expect(res.headers.get('x-ratelimit-limit')).toBe(String(DEFAULT_RATE_LIMIT.burst));
        const remaining = Number(res.headers.get('x-ratelimit-remaining'));
        expect(remaining).toBeGreaterThan(DEFAULT_RATE_LIMIT.burst * 0.9);
        expect(remaining).toBeLessThan(DEFAULT_RATE_LIMIT.burst);
        expect(Number(res.headers.get('x-ratelimit-reset'))).toBeGreaterThanOrEqual(Math.floor(Date.now() / 1000));
      }
      expect(fake.stats.rateLimited).toBe(0);
    }));
});

describe('GET /api/v2/users/{user_id}/refresh-tokens and include_totals', () => {
  it('answers a bare array by default and for false, the object with next for true', () =>
    withTenant(async ({ fake, get }) => {
      const bare = (await (await get(usersRoute, { take: '2' })).json()) as Auth0TokenJson[];
      expect(bare).toEqual(fake.users.get(USER)!.slice(0, 2));
      expect(await (await get(usersRoute, { take: '2', include_totals: 'false' })).json()).toEqual(bare);
      const object = (await (await get(usersRoute, { take: '2', include_totals: 'true' })).json()) as { tokens: Auth0TokenJson[]; next: string };
      expect(object.tokens).toEqual(bare);
      expect(object.next).toEqual(expect.any(String));
    }));

  it('pages a bare array with the last token id as from', () =>
    withTenant(async ({ fake, get }) => {
      const ids: string[] = [];
      let from: string | undefined;
      for (let i = 0; i < 10; i++) {
        const page = (await (await get(usersRoute, { take: '2', ...(from ? { from } : {}) })).json()) as Auth0TokenJson[];
        if (page.length === 0) break;
        ids.push(...page.map((t) => String(t.id)));
        from = String(page.at(-1)!.id);
      }
      expect(ids).toEqual(fake.users.get(USER)!.map((t) => t.id));
    }));

  it('refuses include_totals that is not a boolean and parameters the route does not take', () =>
    withTenant(async ({ get }) => {
      await expectError(await get(usersRoute, { include_totals: 'yes' }), 400, 'invalid_query_string', /'include_totals' must be a boolean/);
      for (const name of ['fields', 'client_id', 'q']) {
        await expectError(await get(usersRoute, { [name]: 'x' }), 400, 'invalid_query_string', new RegExp(`Additional properties not allowed: ${name}`));
      }
    }));
});

describe('GET /api/v2/refresh-tokens parameters', () => {
  it('refuses include_totals (the route has none) and unknown parameters, with Auth0 400 body', () =>
    withTenant(async ({ get }) => {
      await expectError(await get('/api/v2/refresh-tokens', { user_id: USER, include_totals: 'true' }), 400, 'invalid_query_string', /include_totals/);
      await expectError(await get('/api/v2/refresh-tokens', { user_id: USER, page: '0' }), 400, 'invalid_query_string', /page/);
      await expectError(await get('/api/v2/refresh-tokens', {}), 400, 'invalid_query_string', /Missing required 'user_id'/);
    }));
});

describe('GET /api/v2/logs parameters', () => {
  /** The tenant with two log entries. */
  const withLogs = (use: (w: ReturnType<typeof world>) => Promise<void>) =>
    withTenant(async (w) => {
      w.fake.logs.append({ type: 'fertft', user_id: 'auth0|x1', client_id: 'c1', description: 'Failed exchange' });
      w.fake.logs.append({ type: 'fertft', user_id: 'auth0|x2', client_id: 'c1', description: 'Failed exchange' });
      await use(w);
    });

  it('in checkpoint mode ignores q, fields and include_totals, as Auth0 documents', () =>
    withLogs(async ({ get }) => {
      const plain = await (await get('/api/v2/logs', { from: '0', take: '100' })).json();
      const noisy = await (
        await get('/api/v2/logs', { from: '0', take: '100', q: 'type:fertft', fields: 'log_id', include_totals: 'true', sort: 'date:-1' })
      ).json();
      expect(noisy).toEqual(plain);
      expect(Array.isArray(plain)).toBe(true);
    }));

  it('in search mode filters by q, projects fields and wraps the page for include_totals=true', () =>
    withLogs(async ({ get }) => {
      const found = (await (await get('/api/v2/logs', { q: 'type:fertft AND user_id:"auth0|x2"', sort: 'date:1' })).json()) as Record<string, unknown>[];
      expect(found.map((e) => e.user_id)).toEqual(['auth0|x2']);
      const projected = (await (await get('/api/v2/logs', { q: 'type:fertft', fields: 'log_id,type', sort: 'date:1' })).json()) as Record<string, unknown>[];
      expect(projected.map((e) => Object.keys(e).sort())).toEqual([
        ['log_id', 'type'],
        ['log_id', 'type'],
      ]);
      const without = (await (await get('/api/v2/logs', { q: 'type:fertft', fields: 'details,description', include_fields: 'false' })).json()) as Record<
        string,
        unknown
      >[];
      expect(without.every((e) => !('description' in e) && 'type' in e)).toBe(true);
      const totals = (await (
        await get('/api/v2/logs', { q: 'type:fertft', per_page: '1', page: '1', include_totals: 'true', sort: 'date:1' })
      ).json()) as Record<string, unknown>;
      expect(totals).toMatchObject({ start: 1, limit: 1, length: 1, total: 2 });
      expect((totals.logs as Record<string, unknown>[]).map((e) => e.user_id)).toEqual(['auth0|x2']);
    }));

  it('refuses unknown parameters in either mode, a q it cannot read and a bad boolean', () =>
    withLogs(async ({ get }) => {
      await expectError(await get('/api/v2/logs', { from: '0', cursor: 'x' }), 400, 'invalid_query_string', /Additional properties not allowed: cursor/);
      await expectError(await get('/api/v2/logs', { per_page: '5', user_id: 'x' }), 400, 'invalid_query_string', /user_id/);
      await expectError(await get('/api/v2/logs', { q: 'type:(s OR f)' }), 400, 'invalid_query_string', /'q'/);
      await expectError(await get('/api/v2/logs', { include_totals: '1' }), 400, 'invalid_query_string', /boolean/);
    }));
});

describe('the sandbox error bodies', () => {
  it('carry statusCode, error, message and errorCode', () =>
    withTenant(async ({ get }) => {
      await expectError(await get(usersRoute, {}, { authorization: 'Bearer nope' }), 401, 'invalid_token', /^Invalid token\.$/);
      await expectError(await get('/api/v2/logs', { from: '0' }, {}), 401, 'invalid_token');
      await expectError(await get('/api/v2/refresh-tokens', { user_id: USER, from: 'garbage' }), 400, 'invalid_query_string', /checkpoint/);
      await expectError(await get('/api/v2/users/auth0%7Cnobody/refresh-tokens'), 404, 'inexistent_user', /The user does not exist/);
      await expectError(await get('/api/v2/refresh-tokens', { user_id: USER, take: '500' }), 400, 'invalid_query_string', /'take'/);
    }));

  it('but an unknown route answers the generic 404 Auth0 sends there, without errorCode', () =>
    withTenant(async ({ get }) => {
      const res = await get('/api/v2/nope');
      expect(res.status).toBe(404);
      expect(await res.json()).toEqual({ statusCode: 404, error: 'Not Found', message: 'Not Found' });
    }));

  it('answers 403 insufficient_scope and 429 too_many_requests in the full shape', () =>
    withTenant(async () => {
      const small = await startFakeAuth0({ rateLimit: { perSecond: 0.5, burst: 1 }, scope: 'read:users' });
      try {
        const res = await fetch(`${small.url}/oauth/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ grant_type: 'client_credentials', client_id: 'test-client', client_secret: 'test-secret', audience: `${small.url}/api/v2/` }),
        });
        const headers = { authorization: `Bearer ${((await res.json()) as { access_token: string }).access_token}` };
        const first = await fetch(`${small.url}/api/v2/refresh-tokens?user_id=x`, { headers });
        await expectError(first, 403, 'insufficient_scope', /read:refresh_tokens/);
        const second = await fetch(`${small.url}/api/v2/refresh-tokens?user_id=x`, { headers });
        await expectError(second, 429, 'too_many_requests', /Global limit/);
        expect(second.headers.get('x-ratelimit-limit')).toBe('1');
        expect(second.headers.get('x-ratelimit-remaining')).toBe('0');
      } finally {
        await small.close();
      }
    }));
});

describe('the sandbox users export', () => {
  it('defaults format to CSV, as Auth0 does: a header row, then one row a user', () =>
    withTenant(async ({ fake, exportFile }) => {
      const { job, text } = await exportFile({ fields: [{ name: 'user_id' }, { name: 'email', export_as: 'Email' }] });
      expect(job.format).toBe('csv');
      expect(String(job.location)).toMatch(/\.csv\.gz\?/);
      const rows = text.trim().split('\n');
      expect(rows[0]).toBe('user_id,Email');
      expect(rows).toContain('auth0|x1,x1@example.com');
      expect(rows).toHaveLength(1 + fake.users.size);
    }));

  it('honours limit, in JSON as in CSV', () =>
    withTenant(async ({ exportFile }) => {
      const json = await exportFile({ format: 'json', limit: 2, fields: [{ name: 'user_id' }] });
      expect(json.job).toMatchObject({ format: 'json', limit: 2 });
      expect(
        json.text
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as unknown),
      ).toHaveLength(2);
      const csv = await exportFile({ limit: 1, fields: [{ name: 'user_id' }] });
      expect(csv.text.trim().split('\n')).toHaveLength(2);
    }));

  it('refuses a format it does not know and a limit that is not a positive integer', () =>
    withTenant(async ({ fake, auth }) => {
      for (const body of [{ format: 'xml' }, { limit: 0 }, { limit: 'ten' }]) {
        const res = await fetch(`${fake.url}/api/v2/jobs/users-exports`, {
          method: 'POST',
          headers: { ...auth, 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
        await expectError(res, 400, 'invalid_body');
      }
    }));
});
