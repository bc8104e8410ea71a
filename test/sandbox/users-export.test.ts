import { describe, expect, it } from '@jest/globals';
import { gunzipSync } from 'node:zlib';
import { checkDownloadUrl } from '../../src/auth0/users-export.js';
import { toExportedUser } from '../../src/auth0/users-export-lines.js';
import { type FakeAuth0 } from '../../sandbox/auth0-server.js';
import { withFakeTenant } from '../helpers/fixtures.js';

/** A sandbox tenant of two users (export links living 200 ms) and an access token for it, closed after `use`. */
function withTenant(use: (w: ReturnType<typeof world>) => Promise<void>): Promise<void> {
  return withFakeTenant(
    async (fake) => {
      for (const id of ['auth0|a', 'auth0|b']) fake.setUser(id, []);
      const res = await fetch(`${fake.url}/oauth/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ grant_type: 'client_credentials', client_id: 'test-client', client_secret: 'test-secret', audience: `${fake.url}/api/v2/` }),
      });
      const headers = { authorization: `Bearer ${((await res.json()) as { access_token: string }).access_token}`, 'content-type': 'application/json' };
      await use(world(fake, headers));
    },
    { usersExport: { linkLifetimeMs: 200, pollsToComplete: 1 } },
  );
}

function world(fake: FakeAuth0, headers: Record<string, string>) {
  async function completedJob(): Promise<{ id: string; location: string }> {
    const created = await fetch(`${fake.url}/api/v2/jobs/users-exports`, {
      method: 'POST',
      headers,
      body: JSON.stringify({ format: 'json', fields: [{ name: 'user_id' }, { name: 'email' }] }),
    });
    expect(created.status).toBe(201);
    const job = (await created.json()) as { id: string; status: string };
    expect(job).toMatchObject({ type: 'users_export', status: 'pending' });
    const polled = (await (await fetch(`${fake.url}/api/v2/jobs/${job.id}`, { headers })).json()) as { status: string; location: string };
    expect(polled.status).toBe('completed');
    return { id: job.id, location: polled.location };
  }

  return { fake, headers, completedJob };
}

describe('the sandbox users export', () => {
  it('serves the file on a separate host as gzip NDJSON with only the fields asked for', () =>
    withTenant(async ({ fake, completedJob }) => {
      const { location } = await completedJob();
      expect(new URL(location).origin).toBe(fake.usersExport.downloadUrl);
      expect(fake.usersExport.downloadUrl).not.toBe(fake.url);
      const res = await fetch(location);
      expect(res.status).toBe(200);
      const lines = gunzipSync(Buffer.from(await res.arrayBuffer()))
        .toString('utf8')
        .trim()
        .split('\n')
        .map((l) => JSON.parse(l) as unknown);
      expect(lines).toEqual([
        { user_id: 'auth0|a', email: 'a@example.com' },
        { user_id: 'auth0|b', email: 'b@example.com' },
      ]);
    }));

  it('refuses a request carrying an Authorization header with 400, and counts it', () =>
    withTenant(async ({ fake, headers, completedJob }) => {
      const { location } = await completedJob();
      const before = fake.usersExport.stats.authorizationRefused;
      const res = await fetch(location, { headers: { authorization: headers.authorization! } });
      expect(res.status).toBe(400);
      expect(await res.text()).toContain('Only one auth mechanism allowed');
      expect(fake.usersExport.stats.authorizationRefused).toBe(before + 1);
    }));

  it('expires a link after its lifetime; asking for the job again gives a fresh one', () =>
    withTenant(async ({ fake, headers, completedJob }) => {
      const { id, location } = await completedJob();
      await new Promise((resolve) => setTimeout(resolve, 300));
      const expired = await fetch(location);
      expect(expired.status).toBe(403);
      expect(await expired.text()).toContain('Request has expired');
      const again = (await (await fetch(`${fake.url}/api/v2/jobs/${id}`, { headers })).json()) as { location: string };
      expect(again.location).not.toBe(location);
      expect((await fetch(again.location)).status).toBe(200);
    }));

  it('serves a bad day on script: lines inserted at their numbers, generated users, a gzip bomb', () =>
    withTenant(async ({ fake, completedJob }) => {
      const read = async () => gunzipSync(Buffer.from(await (await fetch((await completedJob()).location)).arrayBuffer()));
      try {
        fake.usersExport.script({ insert: { 2: 'not json', 9: '{"email":"x"}' } });
        expect((await read()).toString('utf8').trim().split('\n')).toEqual([
          '{"user_id":"auth0|a","email":"a@example.com"}',
          'not json',
          '{"user_id":"auth0|b","email":"b@example.com"}',
          '{"email":"x"}',
        ]);
        fake.usersExport.script({ generate: 3 });
        expect(
          (await read())
            .toString('utf8')
            .trim()
            .split('\n')
            .map((l) => (JSON.parse(l) as { user_id: string }).user_id),
        ).toEqual(['auth0|exp0000001', 'auth0|exp0000002', 'auth0|exp0000003']);
        fake.usersExport.script({ bomb: { unit: 'x', times: 10_000_000 } });
        const { location } = await completedJob();
        const compressed = Buffer.from(await (await fetch(location)).arrayBuffer());
        expect(compressed.length).toBeLessThan(100_000);
        expect(gunzipSync(compressed).length).toBe(10_000_000);
      } finally {
        fake.usersExport.script({});
      }
    }));

  it('refuses a job without read:users', () =>
    withTenant(async ({ fake, headers }) => {
      fake.setScope('read:refresh_tokens');
      try {
        const res = await fetch(`${fake.url}/oauth/token`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ grant_type: 'client_credentials', client_id: 'test-client', client_secret: 'test-secret', audience: `${fake.url}/api/v2/` }),
        });
        const token = ((await res.json()) as { access_token: string }).access_token;
        const created = await fetch(`${fake.url}/api/v2/jobs/users-exports`, {
          method: 'POST',
          headers: { ...headers, authorization: `Bearer ${token}` },
          body: '{"format":"json"}',
        });
        expect(created.status).toBe(403);
        expect(await created.text()).toContain('expected any of: read:users');
      } finally {
        fake.setScope('read:refresh_tokens read:users');
      }
    }));
});

describe('checkDownloadUrl', () => {
  it('accepts https, and plain http only on loopback', () => {
    expect(checkDownloadUrl('https://s3.amazonaws.com/x.json.gz?sig=1').host).toBe('s3.amazonaws.com');
    expect(checkDownloadUrl('http://127.0.0.1:9/x').hostname).toBe('127.0.0.1');
    expect(() => checkDownloadUrl('http://storage.example.com/x')).toThrow('only https:// (plain http only on loopback) without credentials is downloaded');
    expect(() => checkDownloadUrl('https://user:pw@storage.example.com/x')).toThrow('without credentials');
    expect(() => checkDownloadUrl('file:///etc/passwd')).toThrow('only https://');
  });
});

describe('toExportedUser', () => {
  it('maps a line, reading the connection from export_as or the identities', () => {
    expect(
      toExportedUser({ user_id: 'auth0|a', email: 'a@x', connection: 'db', created_at: '2024-01-01T00:00:00.000Z', last_login: '', blocked: false }),
    ).toEqual({
      userId: 'auth0|a',
      email: 'a@x',
      connection: 'db',
      createdAt: '2024-01-01T00:00:00.000Z',
      lastLogin: null,
      blocked: false,
    });
    expect(toExportedUser({ user_id: 'g|1', identities: [{ connection: 'google-oauth2' }] })?.connection).toBe('google-oauth2');
    expect(toExportedUser({ user_id: 'g|1', created_at: 'not a date' })?.createdAt).toBeNull();
    // Year 0 in UTC, which PostgreSQL refuses: no date rather than a failed batch.
    expect(toExportedUser({ user_id: 'g|1', created_at: '0001-01-01T00:00:00+01:00' })?.createdAt).toBeNull();
    // Control characters (a NUL would fail the batch) stripped, an unpaired surrogate replaced.
    expect(toExportedUser({ user_id: 'g|1', email: 'a\u0000b\u001b[31m@x\ud800', connection: '\u0007' })).toMatchObject({
      email: 'ab@x\ufffd',
      connection: null,
    });
    expect(toExportedUser({ email: 'no id' })).toBeUndefined();
    expect(toExportedUser(null)).toBeUndefined();
  });
});
