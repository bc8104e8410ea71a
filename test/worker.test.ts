import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { loadConfig } from '../src/config.js';
import { createLogger } from '../src/log.js';
import { RUN_LOCK_KEY } from '../src/run-lock.js';
import { runWorker } from '../src/worker.js';
import { startCli } from './helpers/cli.js';
import { createTestDatabase, itServer, loadUsers, type TestDatabase } from './helpers/db.js';
import { envFor, generateTenant, startFakeAuth0, type FakeAuth0 } from './helpers/fake-auth0.js';

let t: TestDatabase;
let fake: FakeAuth0;

beforeAll(async () => {
  t = await createTestDatabase();
  fake = await startFakeAuth0();
  for (const [userId, tokens] of generateTenant({ users: 30, seed: 9 })) fake.setUser(userId, tokens);
  await loadUsers(t.db, fake.users.keys());
});
afterAll(async () => {
  await fake.close();
  await t.drop();
});
beforeEach(async () => {
  await t.db.deleteFrom('auth0.user_sync_state').execute();
  await t.db.updateTable('auth0.refresh_tokens').set({ first_seen_run_id: null, last_changed_run_id: null }).execute();
  await t.db.deleteFrom('auth0.refresh_token_changes').execute();
  await t.db.deleteFrom('auth0.sync_runs').execute();
});

function startWorker(extra: Record<string, string>) {
  const lines: Record<string, unknown>[] = [];
  const stop = new AbortController();
  const config = loadConfig(envFor(fake, t.url!, extra));
  const logger = createLogger({ level: 'info', write: (line) => lines.push(JSON.parse(line) as Record<string, unknown>) });
  const done = runWorker({ config, db: t.db, logger, stopSignal: stop.signal, runOptions: { ownsDatabase: t.embedded } });
  const waitForLog = async (msg: string) => {
    for (let i = 0; i < 200 && !lines.some((l) => l.msg === msg); i++) await new Promise((r) => setTimeout(r, 50));
    expect(lines.map((l) => l.msg)).toContain(msg);
  };
  return { lines, stop: () => stop.abort(), done, waitForLog };
}

const runs = () => t.db.selectFrom('auth0.sync_runs').selectAll().orderBy('id').execute();

describe('worker', () => {
  it('runs the job on each tick of the schedule, logs the next run time, and stops cleanly', async () => {
    const worker = startWorker({ SYNC_SCHEDULE: '* * * * * *' });
    await worker.waitForLog('scheduled run done');
    worker.stop();
    await worker.done;
    const all = await runs();
    expect(all.length).toBeGreaterThanOrEqual(1);
    expect(all.every((r) => r.trigger === 'schedule' && r.status === 'succeeded')).toBe(true);
    const next = worker.lines.find((l) => l.msg === 'next run')!;
    expect(Date.parse(String(next.at))).toBeGreaterThan(Date.now() - 2000);
    expect(worker.lines.at(-1)).toMatchObject({ msg: 'worker stopped' });
  });

  it('with AUTH0_TOKENS_ENDPOINT=auto, switches routes once for its whole life on a tenant without the Early Access one', async () => {
    fake.setEarlyAccess(false);
    try {
      const worker = startWorker({ SYNC_SCHEDULE: '* * * * * *' });
      for (let i = 0; i < 200 && worker.lines.filter((l) => l.msg === 'scheduled run done').length < 2; i++) {
        await new Promise((r) => setTimeout(r, 50));
      }
      worker.stop();
      await worker.done;
      // A tick can start just as the worker stops: that last run is interrupted, nothing else.
      const all = (await runs()).filter((r, i, list) => !(i === list.length - 1 && r.status === 'interrupted'));
      expect(all.length).toBeGreaterThanOrEqual(2);
      expect(all.map((r) => [r.status, r.tokens_endpoint])).toEqual(all.map(() => ['succeeded', 'users']));
      expect(worker.lines.filter((l) => String(l.msg).includes('is not available on this tenant'))).toHaveLength(1);
    } finally {
      fake.setEarlyAccess(true);
    }
  });

  it('runs one sync at start with SYNC_RUN_ON_START, whatever the schedule', async () => {
    const worker = startWorker({ SYNC_SCHEDULE: '0 0 1 1 *', SYNC_RUN_ON_START: 'true' });
    await worker.waitForLog('scheduled run done');
    worker.stop();
    await worker.done;
    expect((await runs()).map((r) => r.status)).toEqual(['succeeded']);
    expect(worker.lines.find((l) => l.msg === 'next run')!.at).toMatch(/-01-01T00:00:00/);
  });

  // One process per embedded database: nothing else can hold its lock.
  itServer('skips a tick while another process holds the run lock', async () => {
    const holder = new pg.Client({ connectionString: t.url });
    await holder.connect();
    try {
      await holder.query('select pg_advisory_lock($1, $2)', [RUN_LOCK_KEY.classId, RUN_LOCK_KEY.objectId]);
      const worker = startWorker({ SYNC_SCHEDULE: '* * * * * *' });
      await worker.waitForLog('tick skipped: another run is active');
      worker.stop();
      await worker.done;
      expect(await runs()).toEqual([]);
    } finally {
      await holder.end();
    }
  });

  it('stops a run in progress gracefully when asked to stop', async () => {
    fake.intercept(() => ({ delayMs: 200 }));
    try {
      const worker = startWorker({ SYNC_SCHEDULE: '0 0 1 1 *', SYNC_RUN_ON_START: 'true', SYNC_CONCURRENCY: '2' });
      await worker.waitForLog('sync started');
      await new Promise((r) => setTimeout(r, 500));
      worker.stop();
      await worker.done;
      const [run] = await runs();
      expect(run).toMatchObject({ status: 'interrupted', trigger: 'schedule' });
      expect(run!.users_synced).toBeLessThan(30);
    } finally {
      fake.intercept(undefined);
    }
  });
});

describe('npm run worker', () => {
  // Needs a server: the test and the child would otherwise share one embedded database.
  itServer('runs as a process and exits 0 on SIGTERM', async () => {
    const child = startCli(['worker'], envFor(fake, t.url, { LOG_LEVEL: 'info', SYNC_RUN_ON_START: 'true' }));
    try {
      await child.waitFor('scheduled run done');
      child.child.kill('SIGTERM');
      const result = await child.done;
      expect(result.code).toBe(0);
      expect(result.stdout).toContain('"msg":"worker stopped"');
    } finally {
      child.child.kill('SIGKILL');
    }
  });
});
