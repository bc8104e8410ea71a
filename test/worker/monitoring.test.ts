import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from '@jest/globals';
import { main } from '../../src/cli/main.js';
import { loadConfig } from '../../src/core/config.js';
import pg from 'pg';
import { ConfigError } from '../../src/core/errors.js';
import { createLogger } from '../../src/core/log.js';
import { RUN_LOCK_KEY } from '../../src/warehouse/run-lock.js';
import { formatStatus } from '../../src/status/format-status.js';
import { readStatus } from '../../src/status/read-status.js';
import { SYNC_JOB_NAME } from '../../src/jobs/sync.js';
import { FOLLOW_LOGS_TASK } from '../../src/worker/log-follower.js';
import { runWorker } from '../../src/worker/worker.js';
import { captureIo, cliDeps, itServer, loadUsers, TEST_TENANT, type TestDatabase } from '../helpers/db.js';
import { sharedDatabase, withFakeTenant, withTestDatabase } from '../helpers/fixtures.js';
import { envFor, generateTenant, type FakeAuth0 } from '../helpers/fake-auth0.js';
import { createTestScheduler } from '../helpers/scheduler.js';

const USERS = 20;
const tenant = generateTenant({ users: USERS, seed: 11 });

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Poll `check` until it returns a value (not undefined), at most ~15 s. */
async function until<T>(what: string, check: () => T | undefined | Promise<T | undefined>): Promise<T> {
  for (let i = 0; i < 300; i++) {
    const value = await check();
    if (value !== undefined) return value;
    await sleep(50);
  }
  throw new Error(`timed out waiting for ${what}`);
}

/** What a test works with: its emptied database, its fake tenant with the users, and helpers bound to both. */
function world(t: TestDatabase, fake: FakeAuth0) {
  function startWorker(extra: Record<string, string>, runOptions = {}, scheduler = createTestScheduler()) {
    const lines: Record<string, unknown>[] = [];
    const stop = new AbortController();
    const config = loadConfig(envFor(fake, t.url, { METRICS_PORT: '0', ...extra }));
    const logger = createLogger({ level: 'info', write: (line) => lines.push(JSON.parse(line) as Record<string, unknown>) });
    const done = runWorker({
      configs: [config],
      db: t.db,
      logger,
      stopSignal: stop.signal,
      runOptions: { ownsDatabase: t.embedded, ...runOptions },
      notify: { retryDelayMs: 20 },
      scheduler,
    });
    const log = (msg: string) => until(`log "${msg}"`, () => lines.find((l) => l.msg === msg));
    const url = log('monitoring server listening').then((l) => String(l.url));
    const stopAndWait = async () => {
      stop.abort();
      await done;
    };
    /** One tick of SYNC_SCHEDULE; resolves once its run is done (and its notice sent). */
    const tick = () => scheduler.tick(SYNC_JOB_NAME);
    return { lines, log, url, done, scheduler, tick, stop: stopAndWait };
  }

  /** The tenant's tokens in the warehouse (one manual run, outside the worker), then no run, change or user state left. */
  async function synced() {
    const out = captureIo();
    expect(await main(['sync'], envFor(fake, t.url), out.io, cliDeps(t))).toBe(0);
    await t.db.deleteFrom('auth0.user_sync_state').execute();
    await t.db.updateTable('auth0.refresh_tokens').set({ first_seen_run_id: null, last_changed_run_id: null }).execute();
    await t.db.deleteFrom('auth0.refresh_token_changes').execute();
    await t.db.deleteFrom('auth0.sync_runs').execute();
  }

  return { t, fake, startWorker, synced };
}

// Each test gets an emptied database (one clone for the file) and a fresh tenant with the users
// in the source table: an interceptor, a log entry or a checkpoint never outlives its test.
const { withEmptyDatabaseAndTenant } = sharedDatabase();
function withTenant(use: (w: ReturnType<typeof world>) => Promise<void>): Promise<void> {
  return withEmptyDatabaseAndTenant(async (t, fake) => {
    for (const [userId, tokens] of tenant) fake.setUser(userId, tokens);
    await loadUsers(t.db, tenant.keys());
    await use(world(t, fake));
  });
}

async function get(url: string) {
  const res = await fetch(url);
  return { status: res.status, type: res.headers.get('content-type'), text: await res.text() };
}

/**
 * The value of one sample in Prometheus text, e.g. `auth0_sync_runs_total{status="failed"}`; the
 * worker's one tenant's label (`tenant="…"`, issue #23) is left out of `series`.
 */
function sample(text: string, series: string): number | undefined {
  const withoutTenant = (l: string) =>
    l
      .replace(/,?tenant="[^"]*"/, '')
      .replace('{,', '{')
      .replace('{}', '');
  const line = text
    .split('\n')
    .map(withoutTenant)
    .find((l) => l.startsWith(series + ' '));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** A webhook receiver on loopback: records each request; `answer` picks the status. */
async function startReceiver(answer: (n: number) => number) {
  const received: { body: string; headers: http.IncomingHttpHeaders }[] = [];
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => {
      received.push({ body, headers: req.headers });
      res.writeHead(answer(received.length)).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/services/T000/B000/hook-credential`,
    received,
    notices: () => received.map((r) => JSON.parse(r.body) as Record<string, unknown>),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('worker metrics and health over HTTP', () => {
  it('serves /metrics with the run counts and /healthz 200 after a successful run, and closes on stop', () =>
    withTenant(async ({ t, startWorker }) => {
      const worker = startWorker({ SYNC_SCHEDULE: '0 0 1 1 *', SYNC_RUN_ON_START: 'true', AUTH0_MAX_RPS: '500' });
      const url = await worker.url;
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      await worker.log('scheduled run done');
      const [run] = await t.db.selectFrom('auth0.sync_runs').selectAll().execute();

      const metrics = await get(`${url}/metrics`);
      expect(metrics.status).toBe(200);
      expect(metrics.type).toContain('text/plain');
      const m = metrics.text;
      expect(sample(m, 'auth0_sync_runs_total{status="succeeded"}')).toBe(1);
      expect(sample(m, 'auth0_sync_runs_total{status="failed"}')).toBe(0);
      expect(sample(m, 'auth0_sync_run_duration_seconds_count{status="succeeded"}')).toBe(1);
      expect(sample(m, 'auth0_sync_users_total{outcome="synced"}')).toBe(USERS);
      expect(sample(m, 'auth0_sync_users_total{outcome="failed"}')).toBe(0);
      expect(sample(m, 'auth0_sync_tokens_total{change="seen"}')).toBe(run!.tokens_seen);
      expect(sample(m, 'auth0_sync_tokens_total{change="added"}')).toBe(run!.tokens_added);
      // Every request the run counted answered 200 (the token request included).
      expect(sample(m, 'auth0_sync_requests_total{status="200"}')).toBe(run!.requests);
      expect(sample(m, 'auth0_sync_rate_limited_total')).toBe(0);
      // The pace the limiter learned from the tenant's x-ratelimit-* headers, never above AUTH0_MAX_RPS.
      expect(sample(m, 'auth0_sync_limiter_pace_requests_per_second')).toBeGreaterThan(0);
      expect(sample(m, 'auth0_sync_limiter_pace_requests_per_second')).toBeLessThanOrEqual(500);
      expect(sample(m, 'auth0_sync_run_in_progress')).toBe(0);
      const lastSuccess = sample(m, 'auth0_sync_last_success_timestamp_seconds')!;
      expect(Math.abs(lastSuccess * 1000 - Date.now())).toBeLessThan(60_000);
      expect(m).toContain('process_cpu_seconds_total'); // Node's default metrics, in the worker's own registry
      // The job's own series come first, the process metrics after them.
      expect(m.indexOf('# HELP auth0_sync_')).toBe(0);
      expect(m.lastIndexOf('# HELP auth0_sync_')).toBeLessThan(m.indexOf('# HELP process_'));

      const health = await get(`${url}/healthz`);
      expect(health.status).toBe(200);
      expect(health.type).toBe('application/json');
      expect(JSON.parse(health.text)).toMatchObject({ status: 'ok', scheduler: 'idle', lastRun: { id: run!.id, status: 'succeeded' } });
      expect((await get(`${url}/other`)).status).toBe(404);
      expect((await fetch(`${url}/healthz`, { method: 'POST' })).status).toBe(405);

      await worker.stop();
      await expect(fetch(`${url}/healthz`)).rejects.toThrow();
    }));

  it('answers /healthz 503 with a JSON reason once failed runs leave no recent success, notifies each failure (retrying a 500), then once on recovery', () =>
    withTenant(async ({ fake, startWorker }) => {
      const receiver = await startReceiver((n) => (n === 1 ? 500 : 200));
      let failing = true;
      // The token endpoint refuses the client and echoes the secret it was sent: the notice must not carry it.
      fake.intercept((ctx) =>
        failing && ctx.path === '/oauth/token'
          ? { status: 401, body: JSON.stringify({ error: 'access_denied', error_description: 'Unauthorized client test-secret' }) }
          : undefined,
      );
      // Ticks half a second apart: the health rule allows two intervals (and the run) without a success.
      const worker = startWorker({ SYNC_SCHEDULE: '* * * * * *', NOTIFY_WEBHOOK_URL: receiver.url }, {}, createTestScheduler({ intervalMs: 500 }));
      try {
        const url = await worker.url;
        // The first notice is refused with a 500 and sent again before the tick is done.
        await worker.tick();
        expect(receiver.received).toHaveLength(2);
        expect(receiver.received[1]!.body).toBe(receiver.received[0]!.body);
        expect(worker.lines.some((l) => l.msg === 'notification retry')).toBe(true);

        const unhealthy = await until('/healthz 503', async () => {
          const health = await get(`${url}/healthz`);
          return health.status === 503 ? health : undefined;
        });
        const body = JSON.parse(unhealthy.text) as Record<string, unknown>;
        expect(body).toMatchObject({ status: 'unhealthy', lastSuccessAt: null, lastRun: { status: 'failed', errorCode: 'invalid_credentials' } });
        expect(body.reason).toMatch(
          /^No successful run since the worker started at .*; one was due by .*\. The last run \(#\d+\) failed \(invalid_credentials\)\.$/,
        );

        const metrics = (await get(`${url}/metrics`)).text;
        expect(sample(metrics, 'auth0_sync_runs_total{status="failed"}')).toBe(1);
        expect(sample(metrics, 'auth0_sync_requests_total{status="401"}')).toBeGreaterThanOrEqual(1);
        expect(sample(metrics, 'auth0_sync_last_success_timestamp_seconds')).toBe(0);

        await worker.tick(); // fails again: notified again
        failing = false;
        await worker.tick(); // the recovery
        expect((await get(`${url}/healthz`)).status).toBe(200);
        await worker.tick(); // another successful run: no notice
        expect(worker.lines.filter((l) => l.msg === 'scheduled run done' && l.status === 'succeeded')).toHaveLength(2);
      } finally {
        await worker.stop();
        await receiver.close();
      }

      const notices = receiver.notices();
      const failed = notices.filter((n) => n.event === 'run_failed');
      expect(failed).toHaveLength(3); // the first one twice (500, then 200), then the second
      expect(failed[0]).toMatchObject({
        job: 'sync-refresh-tokens',
        tenant: '127.0.0.1',
        status: 'failed',
        errorCode: 'invalid_credentials',
        runId: expect.any(Number),
        counts: expect.objectContaining({ usersSynced: 0, usersFailed: 0 }),
      });
      expect(failed[0]!.error).toContain('[redacted]'); // the echoed secret, scrubbed from the notice
      expect(failed[0]!.text).toMatch(/^sync-refresh-tokens on 127\.0\.0\.1: Run #\d+ failed \[invalid_credentials\]: .*Check AUTH0_CLIENT_ID/);
      // Once on recovery, never for the successful runs after it.
      expect(notices.filter((n) => n.event === 'recovered')).toHaveLength(1);
      expect(notices.at(-1)).toMatchObject({ event: 'recovered', status: 'succeeded', error: null });
      expect(notices.at(-1)!.text).toMatch(/recovered: Run #\d+ succeeded \(20 synced, 0 not found, 0 failed of 20\)\.$/);
      for (const { body, headers } of receiver.received) {
        expect(headers['content-type']).toBe('application/json');
        expect(body).not.toContain('test-secret');
        expect(body).not.toContain('hook-credential');
      }
      // The webhook's path (a credential for Slack) never reaches a log line.
      expect(JSON.stringify(worker.lines)).not.toContain('hook-credential');
    }));

  it('logs a notification it cannot deliver after 3 tries and goes on', () =>
    withTenant(async ({ fake, startWorker }) => {
      const receiver = await startReceiver(() => 503);
      fake.intercept((ctx) => (ctx.path === '/oauth/token' ? { status: 401 } : undefined));
      const worker = startWorker({ SYNC_SCHEDULE: '0 0 1 1 *', SYNC_RUN_ON_START: 'true', NOTIFY_WEBHOOK_URL: receiver.url });
      try {
        const failure = await worker.log('notification failed');
        expect(failure).toMatchObject({ level: 'error', target: new URL(receiver.url).origin, event: 'run_failed', tries: 3, reason: 'HTTP 503' });
        expect(receiver.received).toHaveLength(3);
        await worker.log('next run');
        const health = JSON.parse((await get(`${await worker.url}/healthz`)).text) as Record<string, unknown>;
        expect(health.scheduler).toBe('idle'); // the schedule goes on
      } finally {
        await worker.stop();
        await receiver.close();
      }
      expect(worker.lines.at(-1)).toMatchObject({ msg: 'worker stopped' });
    }));

  it('shows a running run live: metrics move and `status` reads its progress counts', () =>
    withTenant(async ({ t, fake, startWorker }) => {
      fake.intercept((ctx) => (ctx.path === '/oauth/token' ? undefined : { delayMs: 150 }));
      const worker = startWorker(
        // No deletion guard: with it, nothing is written before SYNC_DELETE_GUARD_MIN users are in.
        { SYNC_SCHEDULE: '0 0 1 1 *', SYNC_RUN_ON_START: 'true', SYNC_CONCURRENCY: '2', SYNC_MAX_DELETE_RATIO: '1' },
        { progressEveryMs: 100 },
      );
      try {
        const url = await worker.url;
        const live = await until('live metrics', async () => {
          const text = (await get(`${url}/metrics`)).text;
          return (sample(text, 'auth0_sync_users_total{outcome="synced"}') ?? 0) > 0 && sample(text, 'auth0_sync_run_in_progress') === 1 ? text : undefined;
        });
        expect(sample(live, 'auth0_sync_users_total{outcome="synced"}')).toBeLessThan(USERS);
        const report = await until('a running run with progress', async () => {
          const r = await readStatus(t.db, { table: ['auth0', 'users'], column: 'user_id' });
          const runs = r.tenants[0]?.runs ?? [];
          return runs[0]?.status === 'running' && runs[0].usersSynced > 0 ? { ...r, runs } : undefined;
        });
        const row = formatStatus(report).find((line) => line.includes('running for'));
        expect(row).toMatch(new RegExp(`schedule\\s+running\\s+.*running for .*\\s${report.runs[0]!.usersSynced}/0/0 of ${USERS}`));
        // Progress lines carry an ETA from the rate and the total (issue #11).
        const progress = worker.lines.filter((line) => line.msg === 'progress' && (line.done as number) > 0);
        expect(progress.at(-1)).toMatchObject({ total: USERS, usersPerSecond: expect.any(Number), etaSeconds: expect.any(Number) });
      } finally {
        await worker.stop();
      }
    }));

  it("exports the log follower's lag as the checkpoint's own, which stays 0 on a caught-up quiet tenant", () =>
    withTenant(async ({ t, startWorker }) => {
      const worker = startWorker({ SYNC_SCHEDULE: '0 0 1 1 *', SYNC_LOGS_SCHEDULE: '* * * * * *' });
      const lag = async () => sample((await get(`${await worker.url}/metrics`)).text, 'auth0_sync_log_follower_lag_seconds');
      try {
        await worker.scheduler.tick(FOLLOW_LOGS_TASK);
        const stored = (await t.db.selectFrom('auth0.log_checkpoint').select('lag_seconds').executeTakeFirstOrThrow()).lag_seconds;
        expect(await lag()).toBe(stored === null ? undefined : Math.max(0, stored));
        // What the follower stores is what is exported: caught up, an hour-old last entry is no lag.
        await t.db
          .updateTable('auth0.log_checkpoint')
          .set({ lag_seconds: 0, last_entry_date: new Date(Date.now() - 3_600_000) })
          .execute();
        expect(await lag()).toBe(0);
        await t.db.updateTable('auth0.log_checkpoint').set({ lag_seconds: 42.5 }).execute();
        expect(await lag()).toBe(42.5);
      } finally {
        await worker.stop();
      }
    }));

  it("counts the log follower's own runs in the run, user and token metrics, and its requests, but not as a pass's success", () =>
    withTenant(async ({ t, fake, startWorker, synced }) => {
      await synced(); // the warehouse in sync with the tenant: the follow's run sees the revocation as a deletion
      const worker = startWorker({ SYNC_SCHEDULE: '0 0 1 1 *', SYNC_LOGS_SCHEDULE: '* * * * * *' });
      try {
        const url = await worker.url;
        await worker.scheduler.tick(FOLLOW_LOGS_TASK); // a checkpoint at the newest entry
        await t.db.deleteFrom('auth0.sync_runs').execute();
        const before = (await get(`${url}/metrics`)).text;
        const [user, tokens] = [...fake.users].find(([, list]) => list.length > 1)!;
        fake.setUser(user, tokens.slice(1));
        fake.resetStats();
        await worker.scheduler.tick(FOLLOW_LOGS_TASK);
        const [run, ...others] = await t.db.selectFrom('auth0.sync_runs').selectAll().execute();
        expect(others).toEqual([]);
        expect(run).toMatchObject({ trigger: 'logs', status: 'succeeded', users_synced: 1, tokens_deleted: 1 });
        const after = (await get(`${url}/metrics`)).text;
        const grew = (series: string) => (sample(after, series) ?? 0) - (sample(before, series) ?? 0);
        expect(grew('auth0_sync_runs_total{status="succeeded"}')).toBe(1);
        expect(grew('auth0_sync_run_duration_seconds_count{status="succeeded"}')).toBe(1);
        expect(grew('auth0_sync_users_total{outcome="synced"}')).toBe(1);
        expect(grew('auth0_sync_tokens_total{change="seen"}')).toBe(run!.tokens_seen);
        expect(grew('auth0_sync_tokens_total{change="deleted"}')).toBe(1);
        // The deletion's reason (issue #22), read from the change history at the scrape.
        const [deletion] = await t.db
          .selectFrom('auth0.refresh_token_changes')
          .select('reason')
          .where('run_id', '=', run!.id)
          .where('change', '=', 'deleted')
          .execute();
        expect(['revoked_by_user', 'expired']).toContain(deletion!.reason);
        expect(grew(`auth0_sync_token_deletions_24h{reason="${deletion!.reason}"}`)).toBe(1);
        expect(sample(after, 'auth0_sync_token_deletions_24h{reason="unexplained"}')).toBe(
          sample(before, 'auth0_sync_token_deletions_24h{reason="unexplained"}'),
        );
        // Every request of the follow: its log reads and its run's listings (the token was fetched before).
        expect(grew('auth0_sync_requests_total{status="200"}')).toBe(fake.stats.requests);
        expect(fake.stats.logRequests).toBeGreaterThan(0);
        expect(sample(after, 'auth0_sync_last_success_timestamp_seconds')).toBe(0);
      } finally {
        await worker.stop();
      }
    }));

  it('counts every skipped tick by its reason, from zero series, and logs it', () =>
    withTenant(async ({ fake, startWorker }) => {
      // Reading the logs takes half a second: a second follow tick meets the first still going.
      fake.intercept((ctx) => (ctx.path.startsWith('/api/v2/logs') ? { delayMs: 500 } : undefined));
      const worker = startWorker({ SYNC_SCHEDULE: '0 0 1 1 *', SYNC_LOGS_SCHEDULE: '* * * * * *' });
      try {
        const url = await worker.url;
        const before = (await get(`${url}/metrics`)).text;
        for (const reason of ['overlap', 'locked', 'follow_overlap', 'follow_locked', 'stopping']) {
          expect(sample(before, `auth0_sync_ticks_skipped_total{reason="${reason}"}`)).toBe(0);
        }
        const first = worker.scheduler.tick(FOLLOW_LOGS_TASK);
        await worker.scheduler.tick(FOLLOW_LOGS_TASK);
        await first;
        const after = (await get(`${url}/metrics`)).text;
        expect(sample(after, 'auth0_sync_ticks_skipped_total{reason="follow_overlap"}')).toBe(1);
        expect(worker.lines.find((l) => l.msg === 'follow skipped: the previous follow is still going')).toMatchObject({
          level: 'warn',
          reason: 'follow_overlap',
        });
      } finally {
        await worker.stop();
      }
    }));

  itServer("counts a follow tick that meets another process's run lock as follow_locked", () =>
    withTenant(async ({ t, fake, startWorker }) => {
      const holder = new pg.Client({ connectionString: t.url });
      await holder.connect();
      const worker = startWorker({ SYNC_SCHEDULE: '0 0 1 1 *', SYNC_LOGS_SCHEDULE: '* * * * * *' });
      try {
        const url = await worker.url;
        await worker.scheduler.tick(FOLLOW_LOGS_TASK); // the checkpoint, at the newest entry
        await holder.query('select pg_advisory_lock($1, hashtext($2))', [RUN_LOCK_KEY.classId, TEST_TENANT]);
        const [user] = [...fake.users].find(([, tokens]) => tokens.length > 0)!;
        fake.setUser(user, fake.users.get(user)!.slice(1));
        await worker.scheduler.tick(FOLLOW_LOGS_TASK);
        const metrics = (await get(`${url}/metrics`)).text;
        expect(sample(metrics, 'auth0_sync_ticks_skipped_total{reason="follow_locked"}')).toBe(1);
        expect(worker.lines.find((l) => l.msg === 'follow skipped: another run is active')).toMatchObject({ level: 'warn', reason: 'follow_locked' });
      } finally {
        await holder.end();
        await worker.stop();
      }
    }),
  );

  itServer('starts the full pass due after lost log history itself, once per loss, and shows it in health and metrics until one has run', () =>
    withTenant(async ({ t, fake, startWorker }) => {
      const setLoss = async (at: Date) => {
        await t.db.deleteFrom('auth0.log_checkpoint').execute();
        await t.db
          .insertInto('auth0.log_checkpoint')
          .values({
            tenant: TEST_TENANT,
            log_id: fake.logs.newestId() ?? '0',
            updated_at: at,
            history_lost_at: at,
            history_lost_reason: 'the stored checkpoint was refused',
          })
          .execute();
      };
      const firstLoss = new Date(Date.now() - 60_000);
      await setLoss(firstLoss);
      // Another process holds the run lock: the pass the worker starts for the loss cannot run.
      const holder = new pg.Client({ connectionString: t.url });
      await holder.connect();
      await holder.query('select pg_advisory_lock($1, hashtext($2))', [RUN_LOCK_KEY.classId, TEST_TENANT]);
      const worker = startWorker({ SYNC_SCHEDULE: '0 0 1 1 *', SYNC_LOGS_SCHEDULE: '* * * * * *' });
      const started = () => worker.lines.filter((l) => l.msg === 'full pass started: tenant log history was lost');
      try {
        const url = await worker.url;
        await worker.log('tick skipped: another run is active');
        expect(started()).toEqual([
          expect.objectContaining({ level: 'warn', historyLostAt: firstLoss.toISOString(), reason: 'the stored checkpoint was refused' }),
        ]);

        const health = await get(`${url}/healthz`);
        expect(health.status).toBe(200);
        const body = JSON.parse(health.text) as Record<string, unknown>;
        expect(body).toMatchObject({ status: 'degraded', fullPassDue: true });
        expect(body.reason).toBe(
          `Tenant log history was lost at ${firstLoss.toISOString()} (the stored checkpoint was refused): changes since then may be missing until a full pass has started (the worker starts one; npm run sync also does).`,
        );
        expect(sample((await get(`${url}/metrics`)).text, 'auth0_sync_log_full_pass_due')).toBe(1);

        // Once per loss: follows after the lock is free start no second pass for the same loss.
        await holder.query('select pg_advisory_unlock($1, hashtext($2))', [RUN_LOCK_KEY.classId, TEST_TENANT]);
        await worker.scheduler.tick(FOLLOW_LOGS_TASK);
        await worker.scheduler.tick(FOLLOW_LOGS_TASK);
        expect(started()).toHaveLength(1);
        expect(await t.db.selectFrom('auth0.sync_runs').select('id').execute()).toEqual([]);

        // A new loss, seen after a follow: its pass starts at once, and once it has run nothing is due.
        const secondLoss = new Date();
        await setLoss(secondLoss);
        await worker.scheduler.tick(FOLLOW_LOGS_TASK);
        await worker.log('scheduled run done');
        expect(started()).toHaveLength(2);
        const runs = await t.db.selectFrom('auth0.sync_runs').selectAll().execute();
        expect(runs.map((r) => [r.trigger, r.status, r.args])).toEqual([
          ['schedule', 'succeeded', { fullPassDue: { historyLostAt: secondLoss.toISOString() } }],
        ]);
        expect(runs[0]!.started_at.getTime()).toBeGreaterThanOrEqual(secondLoss.getTime());
        const cleared = await until('the full pass no longer due', async () => {
          const text = (await get(`${url}/metrics`)).text;
          return sample(text, 'auth0_sync_log_full_pass_due') === 0 ? text : undefined;
        });
        expect(cleared).toBeDefined();
        expect(JSON.parse((await get(`${url}/healthz`)).text)).toMatchObject({ status: 'ok', fullPassDue: false });
      } finally {
        await holder.end();
        await worker.stop();
      }
    }),
  );

  it('refuses to bind a port in use: exit 1 with one sentence', () =>
    withTenant(async ({ t, fake }) => {
      const taken = http.createServer();
      await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
      const port = (taken.address() as AddressInfo).port;
      try {
        const out = captureIo();
        const code = await main(['worker'], envFor(fake, t.url, { METRICS_PORT: String(port) }), out.io, cliDeps(t));
        expect(code).toBe(1);
        expect(out.stderr).toEqual([
          `error [metrics_port_unusable]: METRICS_PORT ${port} on METRICS_HOST 127.0.0.1 cannot be used (EADDRINUSE); choose a free port or unset METRICS_PORT.`,
        ]);
        expect(await t.db.selectFrom('auth0.sync_runs').selectAll().execute()).toEqual([]);
      } finally {
        await new Promise((resolve) => taken.close(resolve));
      }
    }));
});

describe('worker start', () => {
  it('refuses a database with pending migrations: exit 1, one sentence, no run', () =>
    withTestDatabase(
      (empty) =>
        withFakeTenant(async (fake) => {
          const out = captureIo();
          const code = await main(['worker'], envFor(fake, empty.url, { SYNC_RUN_ON_START: 'true' }), out.io, cliDeps(empty));
          expect(code).toBe(1);
          expect(out.stderr).toHaveLength(1);
          expect(out.stderr[0]).toMatch(/^error \[pending_migrations\]: The database has \d+ pending migrations? \(.*\); run `npm run migrate` first\.$/);
          expect(out.logs().map((l) => l.msg)).not.toContain('worker started');
        }),
      { migrate: false },
    ));
});

describe('monitoring configuration', () => {
  const base = { AUTH0_DOMAIN: 'tenant.eu.auth0.com', AUTH0_CLIENT_ID: 'id', AUTH0_CLIENT_SECRET: 'secret' };
  const problems = (env: Record<string, string>) => {
    try {
      loadConfig({ ...base, ...env });
      return [];
    } catch (error) {
      return (error as ConfigError).problems;
    }
  };

  it('is off by default and reads METRICS_PORT, METRICS_HOST and NOTIFY_WEBHOOK_URL', () => {
    expect(loadConfig(base).monitoring).toEqual({ metricsPort: undefined, metricsHost: '127.0.0.1', notifyWebhookUrl: undefined });
    const config = loadConfig({ ...base, METRICS_PORT: '9464', METRICS_HOST: '0.0.0.0', NOTIFY_WEBHOOK_URL: 'https://hooks.slack.com/services/T/B/xyz' });
    expect(config.monitoring.metricsPort).toBe(9464);
    expect(config.monitoring.metricsHost).toBe('0.0.0.0');
    expect(config.monitoring.notifyWebhookUrl?.reveal()).toBe('https://hooks.slack.com/services/T/B/xyz');
    expect(JSON.stringify(config)).not.toContain('xyz'); // a webhook URL is a credential: redacted like the secret
    expect(loadConfig({ ...base, NOTIFY_WEBHOOK_URL: 'http://localhost:8080/hook' }).monitoring.notifyWebhookUrl?.reveal()).toBe('http://localhost:8080/hook');
  });

  it('names each wrong value without echoing a webhook URL', () => {
    expect(problems({ METRICS_PORT: '70000' })).toEqual(['METRICS_PORT must be a whole number from 0 to 65535 (got "70000")']);
    expect(problems({ METRICS_HOST: 'a b' })).toEqual(['METRICS_HOST must be an address or host name such as 127.0.0.1 or 0.0.0.0 (got "a b")']);
    const http = problems({ NOTIFY_WEBHOOK_URL: 'http://user:pw@hooks.example.com/T/B/token' });
    expect(http).toEqual(['NOTIFY_WEBHOOK_URL must use https:// (plain http:// is allowed only for 127.0.0.1, localhost and [::1])']);
    expect(problems({ NOTIFY_WEBHOOK_URL: 'not a url pw' })).toEqual(['NOTIFY_WEBHOOK_URL must be an https:// URL (the value given is not a valid URL)']);
    expect(problems({ NOTIFY_WEBHOOK_URL: 'ftp://x/y' })).toEqual(['NOTIFY_WEBHOOK_URL must be an https:// URL (got a "ftp:" URL)']);
  });
});
