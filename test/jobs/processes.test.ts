import { expect, it } from '@jest/globals';
import { runCli, startCli, type CliProcess } from '../helpers/cli.js';
import { describeServer, loadUsers, type TestDatabase } from '../helpers/db.js';
import { withFakeTenant, withTestDatabase } from '../helpers/fixtures.js';
import { envFor, generateTenant, type FakeAuth0 } from '../helpers/fake-auth0.js';
import { expectWarehouseMatchesApi } from '../helpers/warehouse.js';

const tenant = generateTenant({ users: 200, seed: 5 });

/** What a test works with: its database, its fake tenant, and helpers bound to both. */
function world(t: TestDatabase, fake: FakeAuth0) {
  const children: CliProcess[] = [];

  function start(extra: Record<string, string> = {}): CliProcess {
    const child = startCli(['sync'], envFor(fake, t.url, { LOG_LEVEL: 'info', SYNC_CONCURRENCY: '4', ...extra }));
    children.push(child);
    return child;
  }

  /** Wait until the running sync has written some users. */
  async function untilUsersWritten(n: number): Promise<void> {
    for (;;) {
      const { count } = await t.db
        .selectFrom('auth0.user_sync_state')
        .select((eb) => eb.fn.countAll<number>().as('count'))
        .executeTakeFirstOrThrow();
      if (count >= n) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }

  const runs = () => t.db.selectFrom('auth0.sync_runs').selectAll().orderBy('id').execute();

  return { t, fake, children, start, untilUsersWritten, runs };
}

/**
 * A database of its own (the processes' sessions and locks never outlive the test) and a tenant of
 * 200 users answering in 40 ms; the children a test starts are killed when it ends.
 */
function withTenant(use: (w: ReturnType<typeof world>) => Promise<void>): Promise<void> {
  return withTestDatabase((t) =>
    withFakeTenant(
      async (fake) => {
        for (const [userId, tokens] of tenant) fake.setUser(userId, tokens);
        await loadUsers(t.db, tenant.keys());
        const w = world(t, fake);
        try {
          await use(w);
        } finally {
          for (const child of w.children) child.child.kill('SIGKILL');
        }
      },
      { latencyMs: 40 },
    ),
  );
}

// Several processes on one database: only against a server.
describeServer('one run at a time, and runs that die', () => {
  it('a second sync exits 3 at once, naming the active run', () =>
    withTenant(async ({ t, fake, start }) => {
      const first = start();
      await first.waitFor('sync started');
      const started = Date.now();
      const second = await runCli(['sync'], envFor(fake, t.url));
      expect(second.code).toBe(3);
      expect(second.stderr.trim()).toMatch(/^Run 1 of tenant 127 \(manual, pid \d+ on .+, started .+\) is still running; not starting\.$/);
      expect(Date.now() - started).toBeLessThan(5000);
      first.child.kill('SIGKILL');
    }));

  it(
    'after kill -9 mid-run, the next run marks it interrupted and completes the warehouse',
    () =>
      withTenant(async ({ t, fake, start, untilUsersWritten, runs }) => {
        const doomed = start();
        await untilUsersWritten(20);
        doomed.child.kill('SIGKILL');
        await doomed.done;

        fake.intercept(undefined);
        const next = await runCli(['sync'], envFor(fake, t.url, { SYNC_CONCURRENCY: '16' }));
        expect(next.code).toBe(0);
        expect((await runs()).map((r) => r.status)).toEqual(['interrupted', 'succeeded']);
        await expectWarehouseMatchesApi(t.db, fake);
      }),
    30_000,
  );

  it('SIGTERM finishes the users in flight, records the run interrupted and exits promptly', () =>
    withTenant(async ({ t, start, untilUsersWritten, runs }) => {
      const child = start();
      await untilUsersWritten(10);
      const signalled = Date.now();
      child.child.kill('SIGTERM');
      const result = await child.done;
      expect(Date.now() - signalled).toBeLessThan(10_000);
      expect(result.code).toBe(4);
      expect(result.stdout).toContain('stop requested');
      expect(result.stderr).toContain('interrupted');
      const [run] = await runs();
      expect(run).toMatchObject({ status: 'interrupted', finished_at: expect.any(Date) });
      expect(run!.users_synced).toBeGreaterThanOrEqual(10);
      expect(run!.users_synced).toBeLessThan(200);
      const { count } = await t.db
        .selectFrom('auth0.user_sync_state')
        .select((eb) => eb.fn.countAll<number>().as('count'))
        .executeTakeFirstOrThrow();
      expect(count).toBe(run!.users_synced); // every user written is counted, and nothing half-done
    }));

  it('a second signal exits at once even while requests hang', () =>
    withTenant(async ({ fake, start }) => {
      fake.intercept(() => ({ delayMs: 15_000 }));
      const child = start();
      await child.waitFor('sync started');
      await new Promise((resolve) => setTimeout(resolve, 300));
      child.child.kill('SIGTERM');
      await child.waitFor('stop requested');
      const signalled = Date.now();
      child.child.kill('SIGTERM');
      const result = await child.done;
      expect(Date.now() - signalled).toBeLessThan(2000);
      expect(result.code).toBe(4);
    }));
});
