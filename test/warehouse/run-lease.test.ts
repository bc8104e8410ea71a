import { describe, expect, it } from '@jest/globals';
import type { Kysely } from 'kysely';
import pg from 'pg';
import { main } from '../../src/cli/main.js';
import { createDb } from '../../src/warehouse/connection.js';
import type { Database, SyncRunRow } from '../../src/warehouse/schema.js';
import { createLogger } from '../../src/core/log.js';
import { RUN_LOCK_KEY, RunLockedError, withRunLock } from '../../src/warehouse/run-lock.js';
import { emptyCounts, finishRun, startRun } from '../../src/warehouse/run-records.js';
import { runSyncJob, type SyncJobOptions, type SyncJobResult } from '../../src/jobs/sync.js';
import { captureIo, describeServer, loadUsers, TEST_TENANT, type TestDatabase } from '../helpers/db.js';
import { withFakeTenant, withTestDatabase } from '../helpers/fixtures.js';
import { configFor, envFor, generateTenant, type FakeAuth0 } from '../helpers/fake-auth0.js';
import { expectWarehouseMatchesApi } from '../helpers/warehouse.js';

// Issue #13: the run lock is a session advisory lock, lost the moment PostgreSQL drops its
// connection. These tests drop connections under a running sync the way a failover, an
// idle-session killer or a proxy would (pg_terminate_backend) and check that two runs never write.

const sleep = (ms: number) => new Promise((wake) => setTimeout(wake, ms));

/** The session holding this database's run lock (pg_locks lists every database's locks). */
const LOCK_HOLDER = `select pid from pg_locks where locktype = 'advisory' and classid = ${RUN_LOCK_KEY.classId} and objid = hashtext('${TEST_TENANT}')::oid and granted
  and database = (select oid from pg_database where datname = current_database())`;

/** No two runs that both ended succeeded or partial were alive at the same time. */
function expectNoOverlappingSuccesses(rows: SyncRunRow[]): void {
  const good = rows.filter((r) => r.status === 'succeeded' || r.status === 'partial');
  for (const a of good) {
    for (const b of good) {
      if (a.id >= b.id) continue;
      const overlap = a.started_at < (b.finished_at as Date) && b.started_at < (a.finished_at as Date);
      expect({ a: a.id, b: b.id, overlap }).toEqual({ a: a.id, b: b.id, overlap: false });
    }
  }
}

/** What a test works with: its database, its tenant if it has one, and helpers bound to them; `opened` holds the pools it opened. */
function world(t: TestDatabase, fake: FakeAuth0 | undefined, opened: Kysely<Database>[]) {
  /** A pool of its own, as a second process would have. */
  function openDb(): Kysely<Database> {
    const db = createDb(t.url!, { poolSize: 5 });
    opened.push(db);
    return db;
  }

  function syncWith(db: Kysely<Database>, logs: string[] = [], extra: Partial<SyncJobOptions> = {}): Promise<SyncJobResult> {
    return runSyncJob({
      config: configFor(fake!, t.url),
      db,
      logger: createLogger({ level: 'warn', write: (line) => logs.push(line) }),
      trigger: 'manual',
      auth0: { backoffBaseMs: 10, backoffCapMs: 200 },
      ...extra,
    });
  }

  /** One statement from outside the job, on a connection of its own. */
  async function adminQuery<R extends pg.QueryResultRow>(text: string): Promise<R[]> {
    const client = new pg.Client({ connectionString: t.url, application_name: 'run-lease-test' });
    await client.connect();
    try {
      return (await client.query<R>(text)).rows;
    } finally {
      await client.end();
    }
  }

  const terminate = (where: string) =>
    adminQuery<{ pid: number }>(
      // Materialized first: the planner may otherwise call pg_terminate_backend before the filters.
      `with victims as materialized (select pid from pg_stat_activity where datname = current_database() and pid <> pg_backend_pid() and ${where})
       select pid from victims where pg_terminate_backend(pid, 5000)`,
    );

  async function runs(): Promise<SyncRunRow[]> {
    return t.db.selectFrom('auth0.sync_runs').selectAll().orderBy('id').execute();
  }

  async function expectNoDuplicateChanges(): Promise<void> {
    const duplicates = await t.db
      .selectFrom('auth0.refresh_token_changes')
      .select(['token_id', 'change', (eb) => eb.fn.countAll<number>().as('n')])
      .groupBy(['token_id', 'change'])
      .having((eb) => eb.fn.countAll(), '>', 1)
      .execute();
    expect(duplicates).toEqual([]);
  }

  /** Every row written by `runId` was written before `before` (a transaction's now()). */
  async function expectWrittenBefore(runId: number, before: Date): Promise<void> {
    const { changed } = await t.db
      .selectFrom('auth0.refresh_token_changes')
      .select((eb) => eb.fn.max('observed_at').as('changed'))
      .where('run_id', '=', runId)
      .executeTakeFirstOrThrow();
    const { seen } = await t.db
      .selectFrom('auth0.refresh_tokens')
      .select((eb) => eb.fn.max('first_seen_at').as('seen'))
      .where('first_seen_run_id', '=', runId)
      .executeTakeFirstOrThrow();
    for (const at of [changed, seen]) if (at) expect((at as Date).getTime()).toBeLessThanOrEqual(before.getTime());
  }

  return { t, server: fake!, openDb, syncWith, adminQuery, terminate, runs, expectNoDuplicateChanges, expectWrittenBefore };
}

/** A database of its own (its connections are terminated on purpose), the pools the test opened destroyed after `use`. */
function withDatabase(use: (w: ReturnType<typeof world>) => Promise<void>, fake?: FakeAuth0): Promise<void> {
  return withTestDatabase(async (t) => {
    const opened: Kysely<Database>[] = [];
    try {
      if (fake) await loadUsers(t.db, fake.users.keys());
      await use(world(t, fake, opened));
    } finally {
      for (const db of opened) await db.destroy();
    }
  });
}

/** `withDatabase`, and a tenant of `users` users answering in `latencyMs`, all in the source table. */
function withTenant(users: number, latencyMs: number, use: (w: ReturnType<typeof world>) => Promise<void>): Promise<void> {
  return withFakeTenant(
    (fake) => {
      for (const [userId, tokens] of generateTenant({ users, seed: 13, manyTokensEvery: 0 })) fake.setUser(userId, tokens);
      return withDatabase(use, fake);
    },
    { latencyMs },
  );
}

describeServer('the run lease when PostgreSQL drops connections', () => {
  it('never lets two runs write when every connection is terminated and a second run starts at once', () =>
    withTenant(200, 25, async ({ t, server, openDb, syncWith, terminate, runs, expectNoDuplicateChanges, expectWrittenBefore }) => {
      let second: Promise<SyncJobResult | Error> | undefined;
      let stallUntil = 0;
      server.intercept((ctx) => {
        // Auth0 stalls for a moment, so the first run finds out only when it next writes (its
        // lock check between writes is slowed down here): the second run gets the lock first.
        if (Date.now() < stallUntil) return { delayMs: stallUntil - Date.now() };
        if (ctx.count === 120 && !second) {
          stallUntil = Date.now() + 1500;
          second = sleep(200)
            .then(() => terminate(`application_name = 'auth0-refresh-token-sync'`))
            .then(() => syncWith(openDb()).catch((error: Error) => error));
        }
        return undefined;
      });
      const firstResult = await syncWith(openDb(), [], { lockCheckEveryMs: 10_000 });
      const secondResult = await second!;

      const rows = await runs();
      if (secondResult instanceof Error) {
        // The first run took its lock back before the second asked for it: one run, complete.
        expect(secondResult).toBeInstanceOf(RunLockedError);
        expect(firstResult.status).toBe('succeeded');
        expect(rows.map((r) => r.status)).toEqual(['succeeded']);
      } else {
        expect(firstResult).toMatchObject({ status: 'interrupted', errorCode: 'run_lock_lost' });
        expect(secondResult.status).toBe('succeeded');
        const [old, next] = rows;
        expect(rows.map((r) => r.status)).toEqual(['interrupted', 'succeeded']);
        expect(old!.error).toMatch(/lost the run lock|connection holding the run lock was lost/);
        // The old run wrote nothing once the new one had started.
        await expectWrittenBefore(old!.id, next!.started_at);
        expect(old!.finished_at!.getTime()).toBeLessThanOrEqual(next!.started_at.getTime());
      }
      expectNoOverlappingSuccesses(rows);
      await expectNoDuplicateChanges();
      await expectWarehouseMatchesApi(t.db, server);
    }));

  it('stops a run at once, exit 1, once another holder has the lease, and writes nothing more', () =>
    withTenant(300, 20, async ({ t, server, adminQuery, runs, expectWrittenBefore }) => {
      let takeover: Promise<Date> | undefined;
      let requestsAtTakeover = 0;
      server.intercept((ctx) => {
        if (ctx.count === 150 && !takeover) {
          // What a second run does first once it has the lock: name a new holder. Then the lock
          // connection goes too, so the run cannot take its lock back and carry on.
          takeover = adminQuery<{ at: Date }>(`update auth0.run_lease set holder = gen_random_uuid(), run_id = null returning clock_timestamp() as at`).then(
            async ([row]) => {
              requestsAtTakeover = server.stats.listRequests;
              await adminQuery(`select pg_terminate_backend(pid, 5000) from (${LOCK_HOLDER}) l`);
              return row!.at;
            },
          );
        }
        return undefined;
      });
      const out = captureIo();
      const code = await main(['sync'], envFor(server, t.url), out.io);
      const at = await takeover!;
      expect(code).toBe(1);
      expect(out.stderr.join('\n')).toMatch(/^Run \d+ interrupted: The database connection holding the run lock was lost; .* this run stopped writing\.$/);
      const [run] = await runs();
      expect(run).toMatchObject({ status: 'interrupted', error: expect.stringContaining('The database connection holding the run lock was lost') });
      await expectWrittenBefore(run!.id, at);
      const states = await t.db
        .selectFrom('auth0.user_sync_state')
        .select((eb) => eb.fn.max('last_attempt_at').as('last'))
        .executeTakeFirstOrThrow();
      expect((states.last as Date).getTime()).toBeLessThanOrEqual(at.getTime());
      expect(server.stats.listRequests - requestsAtTakeover).toBeLessThan(60);
    }));

  it('takes its lock back when only the lock connection was dropped and no one else took it, and completes', () =>
    withTenant(200, 20, async ({ t, server, openDb, syncWith, adminQuery, runs, expectNoDuplicateChanges }) => {
      let dropped: Promise<unknown> | undefined;
      server.intercept((ctx) => {
        if (ctx.count === 120) dropped ??= adminQuery(`select pg_terminate_backend(pid, 5000) from (${LOCK_HOLDER}) l`);
        return undefined;
      });
      const logs: string[] = [];
      const result = await syncWith(openDb(), logs);
      expect(await dropped).toHaveLength(1);
      expect(result).toMatchObject({ status: 'succeeded', counts: { usersSynced: 200, usersFailed: 0 } });
      expect(logs.join('\n')).toContain('run lock taken back');
      expect((await runs()).map((r) => r.status)).toEqual(['succeeded']);
      await expectNoDuplicateChanges();
      await expectWarehouseMatchesApi(t.db, server);
    }));

  it('keeps going and completes when its pool connections (not the lock) are dropped, even mid-write', () =>
    withTenant(200, 20, async ({ t, server, openDb, syncWith, terminate, runs, expectNoDuplicateChanges }) => {
      let cutting: Promise<number> | undefined;
      let finished = false;
      // Cut the writer's connection while it is in a write transaction, a few times, until the run
      // has finished (polling on after it would only spend the 300 rounds, some 6 s).
      const cutWrites = async () => {
        let cut = 0;
        for (let i = 0; i < 300 && cut < 3 && !finished; i++) {
          const killed = await terminate(
            `application_name = 'auth0-refresh-token-sync' and pid not in (${LOCK_HOLDER}) and state <> 'idle'
           and (query like '%refresh_tokens%' or query like '%run_lease%')`,
          );
          cut += killed.length;
          // One cut per write: a write cut three times in a row does count the database as gone.
          await sleep(killed.length > 0 ? 300 : 5);
        }
        return cut;
      };
      server.intercept((ctx) => {
        if (ctx.count === 60) cutting ??= cutWrites();
        return undefined;
      });
      const logs: string[] = [];
      const result = await syncWith(openDb(), logs).finally(() => (finished = true));
      expect(await cutting).toBeGreaterThan(0);
      expect(logs.join('\n')).toContain('database connection lost during a write; retrying on a fresh one');
      expect(result).toMatchObject({ status: 'succeeded', error: undefined, counts: { usersSynced: 200, usersFailed: 0 } });
      expect((await runs()).map((r) => r.status)).toEqual(['succeeded']);
      await expectNoDuplicateChanges();
      await expectWarehouseMatchesApi(t.db, server);
    }));
});

describe('a run status someone else wrote', () => {
  it('is never overwritten by the run finishing late', () =>
    withDatabase(async ({ t, runs }) => {
      const runId = await startRun(t.db, { tenant: TEST_TENANT, trigger: 'manual' });
      // What the next run does to a run left `running` once it holds the lock.
      await t.db.updateTable('auth0.sync_runs').set({ status: 'interrupted', error: 'marked by the next run', finished_at: new Date() }).execute();
      const recorded = await finishRun(t.db, runId, { status: 'succeeded', counts: emptyCounts() });
      expect(recorded).toEqual({ status: 'interrupted', error: 'marked by the next run' });
      expect(await runs()).toMatchObject([{ id: runId, status: 'interrupted', error: 'marked by the next run' }]);
    }));
});

describe('the run lock on a database this process owns', () => {
  it('admits one run of the process at a time: a second one throws RunLockedError and leaves the first running', () =>
    withDatabase(async ({ t }) => {
      let release!: () => void;
      const held = new Promise<void>((resolve) => (release = resolve));
      const first = withRunLock(
        t.db,
        async () => {
          const runId = await startRun(t.db, { tenant: TEST_TENANT, trigger: 'schedule' });
          await held;
          return runId;
        },
        { tenant: TEST_TENANT, ownsDatabase: true },
      );
      await sleep(100);
      await expect(withRunLock(t.db, async () => 'second', { tenant: TEST_TENANT, ownsDatabase: true })).rejects.toBeInstanceOf(RunLockedError);
      // Another tenant's run is admitted beside it (issue #23), and does not take it for abandoned.
      await expect(withRunLock(t.db, async () => 'other tenant', { tenant: 'other', ownsDatabase: true })).resolves.toBe('other tenant');
      release();
      const runId = await first;
      // The second attempt did not take the first run for an abandoned one.
      const row = await t.db.selectFrom('auth0.sync_runs').select('status').where('id', '=', runId).executeTakeFirstOrThrow();
      expect(row.status).toBe('running');
      // Once the first is over, the next run is admitted.
      await expect(withRunLock(t.db, async () => 'next', { tenant: TEST_TENANT, ownsDatabase: true })).resolves.toBe('next');
    }));
});
