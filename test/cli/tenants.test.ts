import { readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect } from '@jest/globals';
import pg from 'pg';
import { runCli, startCli } from '../helpers/cli.js';
import { RUN_LOCK_KEY } from '../../src/warehouse/run-lock.js';
import { itServer, loadUsers, type TestDatabase } from '../helpers/db.js';
import { withFakeTenant, withTempDir, withTestDatabase } from '../helpers/fixtures.js';
import { makeToken, type FakeAuth0 } from '../helpers/fake-auth0.js';

/** Each fake tenant has credentials of its own: a request with the other's is refused. */
const SECRET_A = 'secret-of-tenant-a-41';
const SECRET_B = 'secret-of-tenant-b-42';

interface World {
  t: TestDatabase;
  a: FakeAuth0;
  b: FakeAuth0;
  /** A directory of the test's own. */
  dir: string;
  /** Writes TENANTS_FILE (the two tenants unless `tenants` is given) and returns the environment naming it. */
  envWith: (tenants?: unknown[]) => Promise<Record<string, string | undefined>>;
}

const entryOf = (name: string, fake: FakeAuth0) => ({ name, domain: fake.url, clientId: `client-${name}`, clientSecretEnv: `SECRET_${name.toUpperCase()}` });

/** Two fake tenants (a and b) holding the same user, a migrated database with that user loaded, and a directory for TENANTS_FILE. */
const withTwoTenants = (use: (w: World) => Promise<void>) =>
  withFakeTenant(
    (a) =>
      withFakeTenant(
        (b) =>
          withTestDatabase((t) =>
            withTempDir(async (dir) => {
              for (const fake of [a, b]) fake.setUser('auth0|1', [makeToken('auth0|1', 1)]);
              for (const tenant of ['a', 'b']) await loadUsers(t.db, ['auth0|1'], tenant);
              const file = path.join(dir, 'tenants.json');
              const envWith = async (tenants: unknown[] = [entryOf('a', a), entryOf('b', b)]) => {
                await writeFile(file, JSON.stringify({ tenants }));
                return { DATABASE_URL: t.url, TENANTS_FILE: file, SECRET_A, SECRET_B, LOG_LEVEL: 'warn' };
              };
              await use({ t, a, b, dir, envWith });
            }),
          ),
        { clientId: 'client-b', clientSecret: SECRET_B },
      ),
    { clientId: 'client-a', clientSecret: SECRET_A },
  );

function expectNoSecret(run: { stdout: string; stderr: string }): void {
  const all = run.stdout + run.stderr;
  expect(all).not.toContain(SECRET_A);
  expect(all).not.toContain(SECRET_B);
  expect(all).not.toMatch(/\n\s+at /);
}

describe('many tenants from TENANTS_FILE (issue #23)', () => {
  itServer('sync --tenant a lists users at tenant a only; sync without it visits both, each with its own credentials, output labelled', () =>
    withTwoTenants(async ({ a, b, dir, envWith }) => {
      const env = await envWith();
      const one = await runCli(['sync', '--tenant', 'a'], env);
      expect(one.stderr).toBe('');
      expect(one.code).toBe(0);
      expect(one.stdout).toMatch(/^Run \d+ succeeded/m);
      expect(a.stats.listRequests).toBeGreaterThan(0);
      expect(b.stats.requests).toBe(0);

      a.resetStats();
      const both = await runCli(['sync'], env);
      expect(both.stderr).toBe('');
      expect(both.code).toBe(0);
      expect(both.stdout).toMatch(/^\[a\] Run \d+ succeeded/m);
      expect(both.stdout).toMatch(/^\[b\] Run \d+ succeeded/m);
      expect(a.stats.listRequests).toBeGreaterThan(0);
      expect(b.stats.listRequests).toBeGreaterThan(0);
      expect(a.stats.byStatus[401] ?? 0).toBe(0);
      expect(b.stats.byStatus[401] ?? 0).toBe(0);
      expectNoSecret(both);

      // The report over both tenants, and over one.
      const out = path.join(dir, 'report.html');
      const report = await runCli(['report', '--out', out, '--tenant', 'b'], env);
      expect([report.code, report.stderr]).toEqual([0, '']);
      expect(await readFile(out, 'utf8')).toContain('Tenants <code>b</code> only.');
      expect((await runCli(['report', '--out', out, '--tenant', 'c'], env)).code).toBe(64);
    }),
  );

  itServer('a tenant that fails does not stop the others; the exit code is the worst', () =>
    withTwoTenants(async ({ a, b, envWith }) => {
      const env = await envWith();
      const run = await runCli(['sync'], { ...env, SECRET_A: 'a-wrong-secret-43' });
      expect(run.code).toBe(1);
      expect(run.stderr).toMatch(/^\[a\] /m);
      expect(run.stdout).toMatch(/^\[b\] Run \d+ succeeded/m);
      expect(a.stats.tokenRequests).toBeGreaterThan(0);
      expect(b.stats.listRequests).toBeGreaterThan(0);
      expect(run.stdout + run.stderr).not.toContain('a-wrong-secret-43');
      expectNoSecret(run);
    }),
  );

  itServer('npm run worker serves every tenant of the file through the job queue: a pass each on start, then SIGTERM exits 0', () =>
    withTwoTenants(async ({ t, a, b, envWith }) => {
      const env = await envWith();
      const worker = startCli(['worker'], { ...env, SYNC_RUN_ON_START: 'true', SYNC_LOGS_SCHEDULE: 'off', LOG_LEVEL: 'info' }, { timeoutMs: 60_000 });
      try {
        for (;;) {
          const runs = await t.db.selectFrom('auth0.sync_runs').select(['tenant', 'status']).where('status', '=', 'succeeded').execute();
          if (new Set(runs.map((r) => r.tenant)).size === 2) break;
          if (worker.child.exitCode !== null) throw new Error(`the worker exited: ${worker.stderr}`);
          await new Promise((resolve) => setTimeout(resolve, 200));
        }
      } finally {
        worker.child.kill('SIGTERM');
      }
      const run = await worker.done;
      expect(run).toMatchObject({ code: 0 });
      const stored = await t.db.selectFrom('auth0.refresh_tokens').select(['tenant', 'user_id']).orderBy('tenant').execute();
      expect(stored).toEqual([
        { tenant: 'a', user_id: 'auth0|1' },
        { tenant: 'b', user_id: 'auth0|1' },
      ]);
      expect(a.stats.listRequests).toBeGreaterThan(0);
      expect(b.stats.listRequests).toBeGreaterThan(0);
      expect(run.stdout).toMatch(/"msg":"job done".*"tenant":"a"|"tenant":"a".*"msg":"job done"/);
      expectNoSecret(run);
    }),
  );

  itServer('a tenant whose run lock is held elsewhere is skipped (exit 3) and the other tenant still runs', () =>
    withTwoTenants(async ({ t, a, b, envWith }) => {
      const env = await envWith();
      const holder = new pg.Client({ connectionString: t.url });
      await holder.connect();
      try {
        await holder.query('select pg_advisory_lock($1, hashtext($2))', [RUN_LOCK_KEY.classId, 'a']);
        const run = await runCli(['sync'], env);
        expect(run.code).toBe(3);
        expect(run.stdout).toMatch(/^\[b\] Run \d+ succeeded/m);
        expect(a.stats.listRequests).toBe(0);
        expect(b.stats.listRequests).toBeGreaterThan(0);
      } finally {
        await holder.end();
      }
    }),
  );

  itServer('a secret in the file exits 1 naming the tenant, never printing the secret, and asks no tenant anything', () =>
    withTwoTenants(async ({ a, b, envWith }) => {
      const env = await envWith([
        { ...entryOf('a', a), clientSecret: SECRET_A },
        { ...entryOf('b', b), clientSecretEnv: SECRET_B },
      ]);
      for (const command of [['sync'], ['import-users'], ['worker'], ['migrate'], ['status']]) {
        const run = await runCli(command, env);
        expect(run.code).toBe(command[0] === 'status' ? 5 : 1);
        expect(run.stderr).toContain('TENANTS_FILE: tenant "a": "clientSecret" looks like a secret');
        expect(run.stderr).toMatch(/TENANTS_FILE: tenant "b": clientSecretEnv must be the name of an environment variable/);
        expectNoSecret(run);
      }
      expect(a.stats.requests + b.stats.requests).toBe(0);
    }),
  );

  itServer('refuses an unknown --tenant, a --user without one tenant, and AUTH0_* beside TENANTS_FILE, with a sentence', () =>
    withTwoTenants(async ({ a, b, envWith }) => {
      const env = await envWith();
      const unknown = await runCli(['sync', '--tenant', 'c'], env);
      expect(unknown).toMatchObject({ code: 64, stdout: '' });
      expect(unknown.stderr).toContain('--tenant c: no such tenant; the configured tenants are a, b.');
      for (const command of [
        ['status', '--tenant', 'c'],
        ['migrate', '--tenant', 'c'],
        ['import-users', '--tenant', 'c'],
      ]) {
        expect((await runCli(command, env)).code).toBe(64);
      }
      expect((await runCli(['migrate', '--tenant', 'a', '--tenant', 'b'], env)).stderr).toContain('migrate takes one --tenant');

      const user = await runCli(['sync', '--user', 'auth0|1'], env);
      expect(user.code).toBe(64);
      expect(user.stderr).toContain('--user names something of one tenant, and 2 are chosen (a, b): add --tenant NAME.');
      expect((await runCli(['import-users', '--connection', 'con_1'], env)).stderr).toContain('add --tenant NAME');
      expect((await runCli(['sync', '--user', 'auth0|1', '--tenant', 'b'], env)).code).toBe(0);
      expect(a.stats.requests).toBe(0);
      expect(b.stats.listRequests).toBeGreaterThan(0);

      const both = await runCli(['sync'], { ...env, AUTH0_DOMAIN: a.url, AUTH0_CLIENT_SECRET: SECRET_A });
      expect(both.code).toBe(1);
      expect(both.stderr).toContain('TENANTS_FILE is set, so every tenant comes from that file: unset AUTH0_DOMAIN, AUTH0_CLIENT_SECRET');
      expectNoSecret(both);
    }),
  );

  itServer('status and migrate read the tenant names from the file without any secret set', () =>
    withTwoTenants(async ({ envWith }) => {
      const { SECRET_A: _a, SECRET_B: _b, ...env } = await envWith();
      const status = await runCli(['status', '--tenant', 'a'], env);
      expect(status.stderr).toBe('');
      expect(status.code).toBe(0);
      const migrate = await runCli(['migrate', '--tenant', 'b'], env);
      expect(migrate.code).toBe(0);
      expect(migrate.stdout).toContain('Nothing to migrate');
    }),
  );

  itServer('status shows a configured tenant the warehouse holds nothing of yet, as one tenant before its first sync', () =>
    withTwoTenants(async ({ a, b, envWith }) => {
      const env = await envWith([entryOf('a', a), entryOf('b', b), { name: 'c', domain: 'c.example.com', clientId: 'client-c', clientSecretEnv: 'SECRET_C' }]);
      const all = await runCli(['status'], env);
      expect([all.code, all.stderr]).toEqual([0, '']);
      expect(all.stdout).toMatch(/^Tenant c\b/m);
      const one = await runCli(['status', '--tenant', 'c', '--json'], env);
      expect([one.code, one.stderr]).toEqual([0, '']);
      expect((JSON.parse(one.stdout) as { tenants: { tenant: string; runs: unknown[] }[] }).tenants).toMatchObject([{ tenant: 'c', runs: [] }]);
    }),
  );
});
