import { existsSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { runCli, startCli, type CliRun } from '../helpers/cli.js';
import { describeServer, loadUsers, type TestDatabase } from '../helpers/db.js';
import { sharedDatabase, withTempDir } from '../helpers/fixtures.js';
import { envFor, makeToken, type FakeAuth0 } from '../helpers/fake-auth0.js';

// Issue #19: `cmd | head -1` closes the pipe early. Every command stops writing, finishes (or,
// when long-running, stops) its work cleanly, and exits with the code its work earned: no
// `Error: write EPIPE`, no stack trace, no exit 1 after a run that succeeded.

/** Nothing of the closed pipe reaches the other stream. */
function expectNoPipeError(run: CliRun): void {
  expect(run.stderr).not.toMatch(/EPIPE|Unhandled|\n\s+at /);
  expect(run.signal).toBeNull();
}

describe('a closed stdout (| head -1)', () => {
  it.each([
    [['--help'], 'stdout', 0],
    [['sync', '--help'], 'stdout', 0],
    [['--version'], 'stdout', 0],
    [['synk'], 'stderr', 64],
  ] as const)('%j with %s closed exits %d', async (argv, close, code) => {
    const run = await runCli([...argv], {}, { close });
    expectNoPipeError(run);
    expect(run.code).toBe(code);
  });

  it(
    'demo finishes its report and exits 0; db on its database keeps serving after its psql line found no reader, and SIGTERM stops it with 0',
    () =>
      withTempDir(async (dir) => {
        const dataDir = path.join(dir, 'demo');
        const demo = await runCli([], { DEMO_DATA_DIR: dataDir }, { close: 'stdout', timeoutMs: 150_000, script: 'sandbox/demo.ts' });
        expectNoPipeError(demo);
        expect(demo.code).toBe(0);

        const db = startCli(['db', '--port', '0'], { PGLITE_DATA_DIR: dataDir }, { close: 'stdout', timeoutMs: 60_000 });
        for (let i = 0; i < 600 && !db.stderr.includes('Serving the embedded database') && db.child.exitCode === null; i++)
          await new Promise((r) => setTimeout(r, 50));
        expect(db.stderr).toContain('Serving the embedded database');
        db.child.kill('SIGTERM');
        const run = await db.done;
        expectNoPipeError(run);
        expect(run.code).toBe(0);
        expect(existsSync(`${dataDir}.lock`)).toBe(false);
      }, 'rt-closed-output-'),
    240_000,
  );

  describeServer('on a database', () => {
    // An emptied database per test (one for the block) and a tenant of one user, in the source table.
    const { withEmptyDatabaseAndTenant } = sharedDatabase();
    const withTenant = (use: (t: TestDatabase, fake: FakeAuth0) => Promise<void>) =>
      withEmptyDatabaseAndTenant(async (t, fake) => {
        fake.setUser('auth0|1', [makeToken('auth0|1', 1)]);
        await loadUsers(t.db, ['auth0|1']);
        await use(t, fake);
      });

    it(
      'migrate --list, status and sync exit with the code their work earned; the run is recorded succeeded',
      () =>
        withTenant(async (t, fake) => {
          const env = envFor(fake, t.url, { LOG_LEVEL: 'info' });
          const list = await runCli(['migrate', '--list'], env, { close: 'stdout' });
          expectNoPipeError(list);
          expect(list.code).toBe(0);

          const sync = await runCli(['sync'], env, { close: 'stdout' });
          expectNoPipeError(sync);
          expect(sync.code).toBe(0);
          const runs = await t.db.selectFrom('auth0.sync_runs').select(['status']).execute();
          expect(runs).toEqual([{ status: 'succeeded' }]);

          const status = await runCli(['status'], env, { close: 'stdout' });
          expectNoPipeError(status);
          expect(status.code).toBe(0);
          const migrate = await runCli(['migrate'], env, { close: 'stdout' });
          expectNoPipeError(migrate);
          expect(migrate.code).toBe(0);
        }),
      60_000,
    );

    it(
      'import-users finishes its import and exits 0',
      () =>
        withTenant(async (t, fake) => {
          const run = await runCli(['import-users'], envFor(fake, t.url, { LOG_LEVEL: 'info' }), { close: 'stdout', timeoutMs: 30_000 });
          expectNoPipeError(run);
          expect(run.code).toBe(0);
          expect(await t.db.selectFrom('auth0.users').select('user_id').where('user_id', '=', 'auth0|1').execute()).toHaveLength(1);
        }),
      40_000,
    );

    it(
      'a closed stderr does not stop a sync either',
      () =>
        withTenant(async (t, fake) => {
          const run = await runCli(['sync', '--user', 'auth0|1', '--user', 'auth0|nobody'], envFor(fake, t.url), { close: 'stderr' });
          expect(run.signal).toBeNull();
          expect(run.code).toBe(0);
        }),
      30_000,
    );

    it(
      'the worker stops as on SIGTERM once nobody reads its log (exit 0, the lock released)',
      () =>
        withTenant(async (t, fake) => {
          const worker = startCli(['worker'], envFor(fake, t.url, { LOG_LEVEL: 'info', SYNC_SCHEDULE: '0 0 1 1 *' }), { close: 'stdout', timeoutMs: 30_000 });
          const run = await worker.done;
          expectNoPipeError(run);
          expect(run.code).toBe(0);
        }),
      40_000,
    );
  });
});
