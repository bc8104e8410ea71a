import { describe, expect, it } from '@jest/globals';
import { runCli } from '../helpers/cli.js';
import { itServer, loadUsers, type TestDatabase } from '../helpers/db.js';
import { withFakeTenant, withTestDatabase } from '../helpers/fixtures.js';
import { envFor, makeToken, type FakeAuth0 } from '../helpers/fake-auth0.js';

const SECRET = 'test-secret';

/** A tenant with one user to sync (a sync of no users asks Auth0 nothing), closed after `use`. */
const withTenant = <T>(use: (fake: FakeAuth0) => Promise<T>) =>
  withFakeTenant((fake) => {
    fake.setUser('auth0|1', [makeToken('auth0|1', 1)]);
    return use(fake);
  });

/** That tenant and a fresh migrated database of its own with the user loaded, so no test depends on another having migrated or loaded it first. */
const withWorld = (use: (w: { t: TestDatabase; fake: FakeAuth0 }) => Promise<void>) =>
  withTenant((fake) =>
    withTestDatabase(async (t) => {
      await loadUsers(t.db, ['auth0|1']);
      await use({ t, fake });
    }),
  );

/** No stack traces, and never the client secret or an access token. */
function expectCleanOutput(run: { stdout: string; stderr: string }): void {
  const all = run.stdout + run.stderr;
  expect(all).not.toMatch(/\n\s+at /);
  expect(all).not.toContain(SECRET);
  expect(all).not.toMatch(/Bearer|access_token/);
}

describe('command line', () => {
  it('exits 1 naming every variable to fix', async () => {
    const run = await runCli(['sync'], { SYNC_PAGE_SIZE: '500' });
    expect(run.code).toBe(1);
    expect(run.stderr).toContain('AUTH0_DOMAIN is required');
    expect(run.stderr).toContain('AUTH0_CLIENT_SECRET is required');
    expect(run.stderr).toContain('SYNC_PAGE_SIZE must be a whole number from 1 to 100');
    expect(run.stderr.trim().split('\n').length).toBeLessThan(10);
    expectCleanOutput(run);
  });

  it('exits 1 with one line when the database is unreachable', async () => {
    const run = await runCli(['migrate'], { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/nope' });
    expect(run.code).toBe(1);
    expect(run.stderr.trim().split('\n')).toHaveLength(1);
    expect(run.stderr).toContain('database_unavailable');
    expectCleanOutput(run);
  });

  itServer('refuses to sync before migrations, then migrate prints what it applied', () =>
    withTenant((fake) =>
      withTestDatabase(
        async (empty) => {
          const refused = await runCli(['sync'], envFor(fake, empty.url));
          expect(refused.code).toBe(1);
          expect(refused.stderr).toMatch(/pending migration.*run `npm run migrate` first/);

          const migrated = await runCli(['migrate'], { DATABASE_URL: empty.url });
          expect(migrated.code).toBe(0);
          expect(migrated.stdout).toContain('applied: 2026_11_26_0900_create_warehouse');
          expect((await runCli(['migrate'], { DATABASE_URL: empty.url })).stdout).toContain('Nothing to migrate');
        },
        { migrate: false },
      ),
    ),
  );

  itServer('syncs and exits 0, logging JSON lines with the run id', () =>
    withWorld(async ({ t, fake }) => {
      await loadUsers(t.db, ['auth0|1', 'auth0|gone']);
      const run = await runCli(['sync'], envFor(fake, t.url, { LOG_LEVEL: 'info' }));
      expect(run.stderr).toBe('');
      expect(run.code).toBe(0);
      const [sentence, ...logged] = run.stdout.trim().split('\n').reverse();
      expect(sentence).toMatch(/^Run \d+ succeeded in [\d.]+ s: synced 1 user \(1 gone from Auth0, 0 failed\)/);
      const lines = logged.reverse().map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(lines.at(-1)).toMatchObject({ level: 'info', msg: 'sync finished', runId: expect.any(Number), usersSynced: 1, usersNotFound: 1 });
      expectCleanOutput(run);
    }),
  );

  itServer('exits 1 at once on wrong credentials, records the run failed, and never prints the secret', () =>
    withWorld(async ({ t, fake }) => {
      const run = await runCli(['sync'], envFor(fake, t.url, { AUTH0_CLIENT_SECRET: 'wrong-secret-value' }));
      expect(run.code).toBe(1);
      expect(run.stderr).toContain('Check AUTH0_CLIENT_ID, AUTH0_CLIENT_SECRET');
      expect(run.stdout + run.stderr).not.toContain('wrong-secret-value');
      expectCleanOutput(run);
      const last = await t.db.selectFrom('auth0.sync_runs').selectAll().orderBy('id', 'desc').executeTakeFirstOrThrow();
      expect(last).toMatchObject({ status: 'failed', users_synced: 0, error: expect.stringContaining('401') });
    }),
  );

  itServer('exits 1 on a missing scope, saying which scope to grant', () =>
    withWorld(async ({ t, fake }) => {
      fake.setScope('read:users');
      const run = await runCli(['sync'], envFor(fake, t.url));
      expect(run.code).toBe(1);
      expect(run.stderr).toContain('lacks the read:refresh_tokens scope');
    }),
  );

  itServer('rejects an unknown flag as a usage error (exit 64), suggesting the flag meant', () =>
    withWorld(async ({ t, fake }) => {
      const run = await runCli(['sync', '--usr', 'x'], envFor(fake, t.url));
      expect(run.code).toBe(64);
      expect(run.stderr).toBe("error: unknown option '--usr'\n(Did you mean --user?)\n");
    }),
  );
});
