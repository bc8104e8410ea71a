import { describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { loadConfig } from '../../src/core/config.js';
import { createLogger } from '../../src/core/log.js';
import { followLogs } from '../../src/jobs/follow-logs.js';
import { RUN_LOCK_KEY } from '../../src/warehouse/run-lock.js';
import { runSyncJob, SYNC_JOB_NAME } from '../../src/jobs/sync.js';
import { FOLLOW_LOGS_TASK } from '../../src/worker/log-follower.js';
import { runWorker } from '../../src/worker/worker.js';
import { itServer, loadUsers, TEST_TENANT, type TestDatabase } from '../helpers/db.js';
import { withFakeTenant, withTestDatabase } from '../helpers/fixtures.js';
import { envFor, generateTenant, makeToken, type FakeAuth0 } from '../helpers/fake-auth0.js';
import { createTestScheduler } from '../helpers/scheduler.js';

const USERS = 40;
const tenant = generateTenant({ users: USERS, seed: 11, maxTokensPerUser: 3 });
const users = [...tenant.keys()].sort();

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function waitFor<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs = 10_000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > until) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

/** What a test works with: its database, its tenant, the setup's run (the tests look at the runs after it) and helpers bound to them. */
function world(t: TestDatabase, fake: FakeAuth0, setupRun: number) {
  function startWorker(extra: Record<string, string>) {
    const lines: Record<string, unknown>[] = [];
    const stop = new AbortController();
    const config = loadConfig(envFor(fake, t.url!, extra));
    const scheduler = createTestScheduler();
    const logger = createLogger({ level: 'info', write: (line) => lines.push(JSON.parse(line) as Record<string, unknown>) });
    const done = runWorker({
      configs: [config],
      db: t.db,
      logger,
      stopSignal: stop.signal,
      runOptions: { ownsDatabase: t.embedded, stopGraceMs: 2000 },
      scheduler,
    });
    return {
      lines,
      scheduler,
      /** One tick of SYNC_LOGS_SCHEDULE; resolves once the follow is done (at once when it had nothing to do). */
      follow: () => scheduler.tick(FOLLOW_LOGS_TASK),
      /** One tick of SYNC_SCHEDULE; resolves once the pass is done. */
      pass: () => scheduler.tick(SYNC_JOB_NAME),
      stop: () => stop.abort(),
      done,
    };
  }

  const runs = () => t.db.selectFrom('auth0.sync_runs').selectAll().where('id', '>', setupRun).orderBy('id').execute();
  const checkpoint = () => t.db.selectFrom('auth0.log_checkpoint').selectAll().executeTakeFirstOrThrow();

  /**
   * A pass whose last user is slow, so it goes on writing after it closed its intake, and a follow
   * that ticks either while the pass takes hand-offs (its read of the logs outlasting the intake)
   * or once the intake is closed. The follow must not run its own run beside the pass (on the
   * embedded database nothing else stops it) nor be dropped: it follows once the pass has ended.
   */
  async function followsAfterPass(early: boolean) {
    const listed = new Set<string>();
    let lastStarted!: () => void;
    const intakeClosing = new Promise<void>((resolve) => (lastStarted = resolve));
    fake.intercept((ctx) => {
      if (ctx.path.startsWith('/api/v2/logs')) return early ? { delayMs: 2000 } : undefined;
      if (!ctx.userId || listed.has(ctx.userId) || listed.size >= USERS) return undefined;
      listed.add(ctx.userId);
      if (listed.size < USERS) return undefined;
      lastStarted();
      return { delayMs: 4000 };
    });
    const changed = users[9]!;
    const worker = startWorker({ SYNC_SCHEDULE: '0 0 1 1 *', SYNC_LOGS_SCHEDULE: '* * * * * *', SYNC_CONCURRENCY: '2', SYNC_DELETE_GUARD_MIN: '5' });
    let pass: Promise<void> | undefined;
    try {
      pass = worker.pass();
      if (early) await waitFor('the pass to list a user', async () => (listed.size > 0 ? true : undefined));
      else {
        await intakeClosing;
        await sleep(200); // the pass takes the source's end: its intake closes
      }
      fake.setUser(changed, fake.users.get(changed)!.slice(1));
      await worker.follow();
      await pass;
      expect((await checkpoint()).log_id).toBe(fake.logs.newestId());
    } finally {
      worker.stop();
      await Promise.allSettled([pass]);
      await worker.done;
    }
    const all = await runs();
    expect(all.map((r) => [r.trigger, r.status])).toEqual([
      ['schedule', 'succeeded'],
      ['logs', 'succeeded'],
    ]);
    expect(all[1]!.started_at.getTime()).toBeGreaterThanOrEqual(all[0]!.finished_at!.getTime());
    const msgs = worker.lines.map((l) => String(l.msg));
    expect(msgs.filter((m) => m.includes('skipped'))).toEqual([]);
    // Early, its own run met the pass's lock (on the embedded database, the process's); late, it waited before reading.
    if (early) expect(msgs).toContain('follow waits for the pass: it holds the run lock');
    else expect(worker.lines.find((l) => l.msg === 'follow waits for the pass')).toMatchObject({ pass: 'finishing' });
    const live = await t.db.selectFrom('auth0.refresh_tokens').select('id').where('user_id', '=', changed).where('deleted_at', 'is', null).execute();
    expect(live).toHaveLength(fake.users.get(changed)!.length);
  }

  return { t, fake, setupRun, startWorker, runs, checkpoint, followsAfterPass };
}

/**
 * A tenant, a warehouse in sync with it and a log checkpoint at the newest entry, in a database of
 * its own (closed with the test: the worker's sessions and locks never outlive it).
 */
function withWorld(use: (w: ReturnType<typeof world>) => Promise<void>, options: { embedded?: boolean } = {}): Promise<void> {
  return withTestDatabase(
    (t) =>
      withFakeTenant(async (fake) => {
        for (const [userId, tokens] of tenant) fake.setUser(userId, tokens.length > 0 ? tokens : [makeToken(userId, 0)]);
        await loadUsers(t.db, users);
        // A warehouse in sync, and a log checkpoint at the newest entry.
        const config = loadConfig(envFor(fake, t.url));
        const logger = createLogger({ level: 'warn', write: () => {} });
        const setup = await runSyncJob({ config, db: t.db, logger, trigger: 'manual', ownsDatabase: t.embedded });
        expect(setup.status).toBe('succeeded');
        expect((await followLogs({ config, db: t.db, logger, ownsDatabase: t.embedded })).outcome).toBe('started');
        await t.db.deleteFrom('auth0.refresh_token_changes').execute();
        await use(world(t, fake, setup.runId!));
      }),
    options,
  );
}

describe('worker log follower', () => {
  it('hands the users of new log entries to the pass in progress, which syncs them while it still runs', () =>
    withWorld(async ({ t, fake, setupRun, startWorker, runs, checkpoint }) => {
      // Every listing takes 250 ms: with two at a time the pass over 40 users lasts 5 seconds or more.
      fake.intercept((ctx) => (ctx.userId ? { delayMs: 250 } : undefined));
      const startCheckpoint = (await checkpoint()).log_id;
      const login = makeToken(users.at(-1)!, 77);
      let revokedId: string | undefined;
      const worker = startWorker({
        SYNC_SCHEDULE: '0 0 1 1 *',
        SYNC_RUN_ON_START: 'true',
        SYNC_LOGS_SCHEDULE: '* * * * * *',
        SYNC_CONCURRENCY: '2',
        SYNC_DELETE_GUARD_MIN: '5',
      });
      try {
        const [early, late] = [users[0]!, users.at(-1)!];
        // Wait until the pass has written the first user: a change after that is missed by this pass.
        const pass = await waitFor('the pass to sync the first user', async () => {
          const row = await t.db.selectFrom('auth0.user_sync_state').select('last_run_id').where('user_id', '=', early).executeTakeFirst();
          return row?.last_run_id && row.last_run_id > setupRun ? row.last_run_id : undefined;
        });
        // A revocation for a user the pass already did, a new login for one it reaches last.
        const revoked = fake.users.get(early)![0]!;
        revokedId = String(revoked.id);
        fake.setUser(early, fake.users.get(early)!.slice(1));
        fake.setUser(late, [...fake.users.get(late)!, login]);
        const changedAt = Date.now();

        // One follow hands both users to the pass and moves the checkpoint once the pass wrote them.
        const followed = worker.follow();
        // Poll meanwhile: the checkpoint never moves before the change is in the warehouse.
        let seenWhileRunning = false;
        await waitFor('the revocation in the warehouse', async () => {
          const [cp, token, run] = await Promise.all([
            checkpoint(),
            t.db
              .selectFrom('auth0.refresh_tokens')
              .select(['deleted_at', 'last_changed_run_id'])
              .where('id', '=', String(revoked.id))
              .executeTakeFirstOrThrow(),
            t.db.selectFrom('auth0.sync_runs').select('status').where('id', '=', pass).executeTakeFirstOrThrow(),
          ]);
          if (cp.log_id !== startCheckpoint) expect(token.deleted_at).not.toBeNull();
          if (token.deleted_at === null) return undefined;
          seenWhileRunning = run.status === 'running';
          expect(token.last_changed_run_id).toBe(pass);
          return true;
        });
        const seconds = (Date.now() - changedAt) / 1000;
        expect(seenWhileRunning).toBe(true);
        expect(seconds).toBeLessThan(10); // a listing or two of 250 ms, loose for a busy machine

        // The checkpoint moves past both entries once the pass wrote both users, naming that run.
        await followed;
        const moved = await checkpoint();
        expect(moved.log_id).toBe(fake.logs.newestId());
        expect(moved.last_run_id).toBe(pass);
        const added = await t.db.selectFrom('auth0.refresh_tokens').select(['deleted_at']).where('id', '=', String(login.id)).executeTakeFirst();
        expect(added).toMatchObject({ deleted_at: null });
        expect(worker.lines.some((l) => l.msg === 'logs followed' && Number(l.handedOff) > 0)).toBe(true);
      } finally {
        worker.stop();
        await worker.done;
        if (process.env.DEBUG_WORKER_LOGS) console.log(worker.lines);
      }
      // One run (the pass), one lease holder; every change recorded once.
      const all = await runs();
      expect(all.map((r) => r.trigger)).toEqual(['schedule']);
      expect(['succeeded', 'interrupted']).toContain(all[0]!.status);
      const changes = await t.db.selectFrom('auth0.refresh_token_changes').select(['token_id', 'change']).execute();
      const keys = changes.map((c) => `${c.token_id} ${c.change}`);
      expect(new Set(keys).size).toBe(keys.length);
      expect(keys).toContain(`${String(login.id)} created`);
      // The pass recorded the revocation with the reason and log entry the follow handed over (issue #22).
      const srrt = fake.logs.entries.find((e) => e.type === 'srrt' && (e.details as { credential_id?: string }).credential_id === String(revokedId));
      const deletion = await t.db
        .selectFrom('auth0.refresh_token_changes')
        .select(['reason', 'reason_log_id'])
        .where('token_id', '=', String(revokedId))
        .where('change', '=', 'deleted')
        .executeTakeFirst();
      expect(deletion).toEqual({ reason: 'revoked_by_user', reason_log_id: srrt?.log_id });
    }));

  it('follows in a run of its own when no pass is running', () =>
    withWorld(async ({ fake, startWorker, runs, checkpoint }) => {
      const worker = startWorker({ SYNC_SCHEDULE: '0 0 1 1 *', SYNC_LOGS_SCHEDULE: '* * * * * *' });
      try {
        fake.setUser(users[3]!, fake.users.get(users[3]!)!.slice(1));
        await worker.follow();
        expect((await checkpoint()).log_id).toBe(fake.logs.newestId());
      } finally {
        worker.stop();
        await worker.done;
      }
      const all = await runs();
      expect(all.map((r) => [r.trigger, r.status, r.users_synced])).toEqual([['logs', 'succeeded', 1]]);
    }));

  it('fetches one access token for all its follows, not one per follow', () =>
    withWorld(async ({ fake, startWorker, runs }) => {
      const worker = startWorker({ SYNC_SCHEDULE: '0 0 1 1 *', SYNC_LOGS_SCHEDULE: '* * * * * *' });
      fake.resetStats();
      try {
        for (const user of users.slice(0, 3)) {
          fake.setUser(user, fake.users.get(user)!.slice(1));
          await worker.follow();
        }
      } finally {
        worker.stop();
        await worker.done;
      }
      expect((await runs()).map((r) => [r.trigger, r.status])).toEqual([0, 1, 2].map(() => ['logs', 'succeeded']));
      expect(fake.stats.tokenRequests).toBe(1);
    }));

  it('neither locks the other out: a pass due while a follow runs waits for it, and follows wait for a starting pass', () =>
    withWorld(async ({ t, fake, startWorker, runs, checkpoint }) => {
      const changed = users[5]!;
      const second = users[6]!;
      // The changed user's listing is slow, so a follow's own run and the pass overlap in time.
      fake.intercept((ctx) => (ctx.userId === changed ? { delayMs: 300 } : undefined));
      const worker = startWorker({ SYNC_SCHEDULE: '*/2 * * * * *', SYNC_LOGS_SCHEDULE: '* * * * * *' });
      try {
        fake.setUser(changed, fake.users.get(changed)!.slice(1));
        const follow = worker.follow();
        // The follow's own run holds the run lock when the pass is due.
        await waitFor('the follow to hold the lock', async () =>
          (await runs()).some((r) => r.trigger === 'logs' && r.status === 'running') ? true : undefined,
        );
        const pass = worker.pass();
        await follow;
        // A second change while the pass starts: the follow must neither race the pass for the lock
        // nor write beside it, nor be dropped (issue #18). It waits until the pass takes hand-offs
        // and hands its user over, or (the pass done with its users first) follows after it.
        fake.setUser(second, fake.users.get(second)!.slice(1));
        await worker.follow();
        expect((await checkpoint()).log_id).toBe(fake.logs.newestId());
        await pass;
      } finally {
        worker.stop();
        await worker.done;
      }
      const msgs = worker.lines.map((l) => String(l.msg));
      expect(msgs.filter((m) => m.includes('skipped'))).toEqual([]);
      expect(worker.lines.filter((l) => l.msg === 'logs followed').at(-1)).toMatchObject({ outcome: 'followed' });
      const all = await runs();
      expect(all.slice(0, 2).map((r) => [r.trigger, r.status])).toEqual([
        ['logs', 'succeeded'],
        ['schedule', 'succeeded'],
      ]);
      // At most one more: the follow after the pass, if the second change waited for it.
      expect(all.slice(2).map((r) => [r.trigger, r.status])).toEqual(all.length > 2 ? [['logs', 'succeeded']] : []);
      for (const [before, after] of all.slice(0, -1).map((r, i) => [r, all[i + 1]!] as const)) {
        expect(after.started_at.getTime()).toBeGreaterThanOrEqual(before.finished_at!.getTime());
      }
      const stored = await t.db.selectFrom('auth0.refresh_tokens').select('id').where('user_id', '=', second).where('deleted_at', 'is', null).execute();
      expect(stored).toHaveLength(fake.users.get(second)!.length);
    }));

  // A run lock held by the pass while it records its run: only a server can hold a table lock
  // from another session to keep the pass starting.
  itServer('a follow tick while the pass is starting waits for it and hands its users to it', () =>
    withWorld(async ({ t, fake, startWorker, runs, checkpoint }) => {
      fake.intercept((ctx) => (ctx.userId ? { delayMs: 100 } : undefined));
      const holder = new pg.Client({ connectionString: t.url });
      await holder.connect();
      const worker = startWorker({ SYNC_SCHEDULE: '0 0 1 1 *', SYNC_LOGS_SCHEDULE: '* * * * * *', SYNC_CONCURRENCY: '2' });
      let pass: Promise<void> | undefined;
      try {
        // The pass takes the run lock, then waits to record its run: it is starting.
        await holder.query('begin');
        await holder.query('lock table auth0.sync_runs in exclusive mode');
        pass = worker.pass();
        await waitFor('the pass to hold the run lock', async () => {
          const { rows } = await holder.query<{ n: number }>(
            "select count(*)::int as n from pg_locks where locktype = 'advisory' and classid = $1 and objid = hashtext($2)::oid and granted and database = (select oid from pg_database where datname = current_database())",
            [RUN_LOCK_KEY.classId, TEST_TENANT],
          );
          return rows[0]!.n > 0 ? true : undefined;
        });
        fake.setUser(users[7]!, fake.users.get(users[7]!)!.slice(1));
        const follow = worker.follow();
        await waitFor('the follow to wait', async () => worker.lines.find((l) => l.msg === 'follow waits for the pass'));
        await holder.query('commit');
        await follow;
        expect((await checkpoint()).log_id).toBe(fake.logs.newestId());
        await pass;
      } finally {
        await holder.query('rollback').catch(() => {});
        await holder.end();
        worker.stop();
        await Promise.allSettled([pass]);
        await worker.done;
      }
      expect(worker.lines.find((l) => l.msg === 'follow waits for the pass')).toMatchObject({ pass: 'starting' });
      expect(worker.lines.find((l) => l.msg === 'logs followed')).toMatchObject({ outcome: 'followed', users: 1, handedOff: 1 });
      expect(worker.lines.map((l) => String(l.msg)).filter((m) => m.includes('skipped'))).toEqual([]);
      expect((await runs()).map((r) => [r.trigger, r.status])).toEqual([['schedule', 'succeeded']]);
    }),
  );

  it.each(['while the pass takes hand-offs, its intake closing during the read', 'after the pass closed its intake'])(
    'a follow tick %s follows after the pass, never beside it',
    (when) => withWorld(({ followsAfterPass }) => followsAfterPass(when.startsWith('while'))),
  );

  it('does not follow the logs with SYNC_LOGS_SCHEDULE=off', () =>
    withWorld(async ({ fake, startWorker, runs }) => {
      const worker = startWorker({ SYNC_SCHEDULE: '0 0 1 1 *', SYNC_LOGS_SCHEDULE: 'off' });
      fake.setUser(users[3]!, fake.users.get(users[3]!)!.slice(1));
      fake.resetStats();
      worker.stop();
      await worker.done;
      expect(worker.lines.map((l) => l.msg)).toContain('log follower off');
      // No follow task to tick: only the passes are scheduled.
      expect([...worker.scheduler.tasks.keys()]).toEqual([SYNC_JOB_NAME]);
      expect(fake.stats.logRequests).toBe(0);
      expect(await runs()).toEqual([]);
    }));
});

describe('worker log follower on the embedded database (one writer, no run lock)', () => {
  it.each(['while the pass takes hand-offs, its intake closing during the read', 'after the pass closed its intake'])(
    'a follow tick %s follows after the pass, never beside it',
    (when) => withWorld(({ followsAfterPass }) => followsAfterPass(when.startsWith('while')), { embedded: true }),
    120_000, // a PGlite database of its own, synced and followed first
  );
});
