import { describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { loadConfig } from '../../src/core/config.js';
import { createLogger } from '../../src/core/log.js';
import { RUN_LOCK_KEY } from '../../src/warehouse/run-lock.js';
import { cronScheduler, type CronTaskOptions } from '../../src/worker/scheduler.js';
import { SYNC_JOB_NAME } from '../../src/jobs/sync.js';
import { runWorker } from '../../src/worker/worker.js';
import { startCli } from '../helpers/cli.js';
import { itServer, loadUsers, TEST_TENANT, type TestDatabase } from '../helpers/db.js';
import { sharedDatabase } from '../helpers/fixtures.js';
import { envFor, generateTenant, type FakeAuth0 } from '../helpers/fake-auth0.js';
import { createTestScheduler } from '../helpers/scheduler.js';

const tenant = generateTenant({ users: 30, seed: 9 });

/** What a test works with: its emptied database, its fake tenant with the 30 users, and helpers bound to both. */
function world(t: TestDatabase, fake: FakeAuth0) {
  function startWorker(extra: Record<string, string>) {
    const lines: Record<string, unknown>[] = [];
    const stop = new AbortController();
    const scheduler = createTestScheduler();
    const config = loadConfig(envFor(fake, t.url!, extra));
    const logger = createLogger({ level: 'info', write: (line) => lines.push(JSON.parse(line) as Record<string, unknown>) });
    const done = runWorker({ configs: [config], db: t.db, logger, stopSignal: stop.signal, runOptions: { ownsDatabase: t.embedded }, scheduler });
    const waitForLog = async (msg: string) => {
      for (let i = 0; i < 200 && !lines.some((l) => l.msg === msg); i++) await new Promise((r) => setTimeout(r, 50));
      expect(lines.map((l) => l.msg)).toContain(msg);
    };
    /** One tick of SYNC_SCHEDULE; resolves once its run is done (at once when skipped). */
    const tick = () => scheduler.tick(SYNC_JOB_NAME);
    return { lines, scheduler, tick, stop: () => stop.abort(), done, waitForLog };
  }

  const runs = () => t.db.selectFrom('auth0.sync_runs').selectAll().orderBy('id').execute();
  return { t, fake, startWorker, runs };
}

// Each test gets an emptied database (one clone for the file) and a fresh tenant with the 30 users
// in the source table: a tenant setting or an interceptor never outlives its test.
const { withEmptyDatabaseAndTenant } = sharedDatabase();
function withTenant(use: (w: ReturnType<typeof world>) => Promise<void>): Promise<void> {
  return withEmptyDatabaseAndTenant(async (t, fake) => {
    for (const [userId, tokens] of tenant) fake.setUser(userId, tokens);
    await loadUsers(t.db, tenant.keys());
    await use(world(t, fake));
  });
}

const STILL_GOING = 'tick skipped: the previous run is still going';

describe('worker', () => {
  it('runs the job on each tick of the schedule, logs the next run time, and stops cleanly', () =>
    withTenant(async ({ startWorker, runs }) => {
      const worker = startWorker({ SYNC_SCHEDULE: '* * * * * *', SYNC_TIMEZONE: 'Europe/Paris' });
      await worker.tick();
      await worker.tick();
      worker.stop();
      await worker.done;
      expect((await runs()).map((r) => [r.trigger, r.status])).toEqual([
        ['schedule', 'succeeded'],
        ['schedule', 'succeeded'],
      ]);
      const task = worker.scheduler.tasks.get(SYNC_JOB_NAME)!;
      expect(task).toMatchObject({ expression: '* * * * * *', timezone: 'Europe/Paris' });
      expect(task.status()).toBe('destroyed');
      // At start and after each run: when the scheduler says the next tick is due.
      const next = worker.lines.filter((l) => l.msg === 'next run');
      expect(next).toHaveLength(3);
      expect(next.at(-1)).toMatchObject({ at: worker.scheduler.nextRun().toISOString(), schedule: '* * * * * *', timezone: 'Europe/Paris' });
      expect(worker.lines.at(-1)).toMatchObject({ msg: 'worker stopped' });
    }));

  it('with AUTH0_TOKENS_ENDPOINT=auto, switches routes once for its whole life on a tenant without the Early Access one', () =>
    withTenant(async ({ fake, startWorker, runs }) => {
      fake.setEarlyAccess(false);
      const worker = startWorker({ SYNC_SCHEDULE: '* * * * * *' });
      await worker.tick();
      await worker.tick();
      worker.stop();
      await worker.done;
      expect((await runs()).map((r) => [r.status, r.tokens_endpoint])).toEqual([
        ['succeeded', 'users'],
        ['succeeded', 'users'],
      ]);
      expect(worker.lines.filter((l) => String(l.msg).includes('is not available on this tenant'))).toHaveLength(1);
    }));

  it('runs one sync at start with SYNC_RUN_ON_START, whatever the schedule', () =>
    withTenant(async ({ startWorker, runs }) => {
      const worker = startWorker({ SYNC_SCHEDULE: '0 0 1 1 *', SYNC_RUN_ON_START: 'true' });
      await worker.waitForLog('scheduled run done');
      worker.stop();
      await worker.done;
      expect((await runs()).map((r) => [r.trigger, r.status])).toEqual([['schedule', 'succeeded']]);
      expect(worker.lines.find((l) => l.msg === 'next run')!.at).toBe(worker.scheduler.nextRun().toISOString());
    }));

  // One process per embedded database: nothing else can hold its lock.
  itServer('skips a tick while another process holds the run lock', () =>
    withTenant(async ({ t, startWorker, runs }) => {
      const holder = new pg.Client({ connectionString: t.url });
      await holder.connect();
      try {
        await holder.query('select pg_advisory_lock($1, hashtext($2))', [RUN_LOCK_KEY.classId, TEST_TENANT]);
        const worker = startWorker({ SYNC_SCHEDULE: '* * * * * *' });
        await worker.tick();
        worker.stop();
        await worker.done;
        expect(worker.lines.map((l) => l.msg)).toContain('tick skipped: another run is active');
        expect(await runs()).toEqual([]);
      } finally {
        await holder.end();
      }
    }),
  );

  it.each<[string, Record<string, string>]>([
    ['the previous scheduled run', { SYNC_SCHEDULE: '* * * * * *' }],
    ['the run at start', { SYNC_SCHEDULE: '0 0 1 1 *', SYNC_RUN_ON_START: 'true' }],
  ])('skips a tick while %s is still going', (_, env) =>
    withTenant(async ({ fake, startWorker, runs }) => {
      fake.intercept(() => ({ delayMs: 200 }));
      const worker = startWorker({ ...env, SYNC_CONCURRENCY: '2' });
      // Without SYNC_RUN_ON_START, a first tick starts the run.
      const first = env.SYNC_RUN_ON_START ? undefined : worker.tick();
      await worker.waitForLog('sync started');
      await worker.tick();
      expect(worker.lines.filter((l) => l.msg === STILL_GOING)).toEqual([expect.objectContaining({ level: 'warn', reason: 'schedule' })]);
      worker.stop();
      await Promise.all([first, worker.done]);
      expect((await runs()).map((r) => r.trigger)).toEqual(['schedule']);
    }),
  );

  it('stops a run in progress gracefully when asked to stop', () =>
    withTenant(async ({ fake, startWorker, runs }) => {
      fake.intercept(() => ({ delayMs: 200 }));
      const worker = startWorker({ SYNC_SCHEDULE: '0 0 1 1 *', SYNC_RUN_ON_START: 'true', SYNC_CONCURRENCY: '2' });
      await worker.waitForLog('sync started');
      await new Promise((r) => setTimeout(r, 500));
      worker.stop();
      await worker.done;
      const [run] = await runs();
      expect(run).toMatchObject({ status: 'interrupted', trigger: 'schedule' });
      expect(run!.users_synced).toBeLessThan(30);
    }));
});

describe('npm run worker', () => {
  // Needs a server: the test and the child would otherwise share one embedded database.
  itServer('runs as a process and exits 0 on SIGTERM', () =>
    withTenant(async ({ t, fake }) => {
      const child = startCli(['worker'], envFor(fake, t.url, { LOG_LEVEL: 'info', SYNC_RUN_ON_START: 'true' }));
      try {
        await child.waitFor('scheduled run done');
        child.child.kill('SIGTERM');
        const result = await child.done;
        expect(result.code).toBe(0);
        expect(result.stdout).toContain('"msg":"worker stopped"');
        // node-cron's next tick of the default schedule (hourly): on the hour.
        expect(result.stdout).toMatch(/"msg":"next run","at":"[^"]*T\d\d:00:00\.000Z"/);
      } finally {
        child.child.kill('SIGKILL');
      }
    }),
  );
});

// The production scheduler, the one path above that the test scheduler stands in for.
describe('cronScheduler (node-cron)', () => {
  const options = (extra: Partial<CronTaskOptions> = {}): CronTaskOptions => ({
    timezone: 'UTC',
    name: 'test',
    logger: { warn: () => {}, error: () => {} },
    ...extra,
  });

  it('reports the next runs of the expression in its time zone once started', async () => {
    const task = cronScheduler.createTask('0 0 1 1 *', async () => {}, options({ timezone: 'Europe/Paris' }));
    expect(task.status()).toBe('stopped');
    expect(task.nextRun()).toBeUndefined();
    await task.start();
    try {
      expect(task.status()).toBe('idle');
      const next = task.nextRun()!;
      expect(next.getTime()).toBeGreaterThan(Date.now());
      expect(next.toISOString()).toMatch(/-12-31T23:00:00\.000Z$/); // midnight on January 1st in Paris
      const [first, second] = task.nextRuns(2);
      expect(first).toEqual(next);
      expect(second!.getUTCFullYear() - first!.getUTCFullYear()).toBe(1);
    } finally {
      await task.destroy();
    }
    expect(task.status()).toBe('destroyed');
  });

  it('runs on a tick and, with noOverlap, skips the next tick while that run goes (about two real seconds)', async () => {
    let ran = 0;
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    let overlapped!: () => void;
    const overlap = new Promise<void>((resolve) => (overlapped = resolve));
    const task = cronScheduler.createTask(
      '* * * * * *',
      async () => {
        ran += 1;
        await held;
      },
      options({ noOverlap: true, onOverlap: () => overlapped() }),
    );
    await task.start();
    try {
      await overlap;
      expect(ran).toBe(1);
      expect(task.status()).toBe('running');
    } finally {
      release();
      await task.destroy();
    }
  });
});
