import type { Kysely } from 'kysely';
import type { Config } from '../core/config.js';
import type { Database } from '../warehouse/schema.js';
import { errorCode, toError } from '../core/errors.js';
import { scheduleIntervalMs, toHealth, type HealthInput } from './health.js';
import type { Logger } from '../core/log.js';
import { createWorkerMetrics } from './metrics.js';
import { watchFullPassDue } from './full-pass-due.js';
import { readLogCheckpoint } from '../warehouse/log-checkpoint.js';
import { assertMigrated } from '../warehouse/migrate.js';
import { startMonitorServer, type MonitorServer } from './monitor-server.js';
import { createReportPage } from './report-page.js';
import { createNotifier, type NotifierOptions, type RunOutcome } from './notify.js';
import { RunLockedError } from '../warehouse/run-lock.js';
import { emptyCounts, readFirstUserError, readLastRuns } from '../warehouse/run-records.js';
import { cronScheduler, type Scheduler } from './scheduler.js';
import { runSyncJob, SYNC_JOB_NAME, type SyncJobOptions } from '../jobs/sync.js';
import { createTokensEndpointChoice } from '../pipeline/tokens-endpoint.js';
import { toSafeText } from '../core/upstream-text.js';
import { pruneHistory } from '../warehouse/history-retention.js';
import { startLogFollower, type LogFollower } from './log-follower.js';

export interface WorkerOptions {
  config: Config;
  db: Kysely<Database>;
  logger: Logger;
  /** Aborting it stops the schedule and lets a run in progress stop gracefully. */
  stopSignal: AbortSignal;
  /** Passed to every run (tests use it for an embedded database this process owns, or fast backoff). */
  runOptions?: Partial<SyncJobOptions>;
  /** Delivery settings of NOTIFY_WEBHOOK_URL notices (tests shorten the retry delay). */
  notify?: Pick<NotifierOptions, 'tries' | 'retryDelayMs' | 'timeoutMs'>;
  /** Where the schedules tick: node-cron unless a test fires the ticks by hand. */
  scheduler?: Scheduler;
}

/**
 * The long-lived scheduler: refuses a database with pending migrations, then runs the sync job
 * on `SYNC_SCHEDULE` in `SYNC_TIMEZONE` (and once at start with `SYNC_RUN_ON_START`) until
 * `stopSignal` aborts, then waits for the run in progress to stop gracefully. Every tick goes
 * through the same run lock as a manual `sync`: a tick that finds another run active is skipped
 * and logged, as is a tick while this worker's own run is still going. A failed run is logged
 * (and, with NOTIFY_WEBHOOK_URL, notified) and the schedule goes on. When the log checkpoint
 * says history was lost and no full pass has started since, it starts one pass at once (once per
 * loss, after the pass in progress) and reports the due pass in health and metrics (issue #18).
 * With METRICS_PORT it serves `/metrics`, `/healthz` and the report at `/` (see docs/operations.md "Monitoring and alerts").
 */
export async function runWorker(options: WorkerOptions): Promise<void> {
  const { config, db, logger, stopSignal } = options;
  const scheduler = options.scheduler ?? cronScheduler;
  const { schedule, timezone, runOnStart } = config.worker;
  const startedAt = new Date();
  // Pending migrations would fail every tick: refuse at start, with one sentence (exit 1).
  await assertMigrated(db);
  const previous = await readPreviousRuns(db);

  let current: Promise<void> | undefined;
  let lastSuccessAt = previous.lastSuccessAt;
  let lastRun: HealthInput['lastRun'] = previous.lastRun;
  // One route choice for the worker's life: with `auto`, the switch happens (and is logged) once.
  const tokensEndpoint = createTokensEndpointChoice(config.auth0.tokensEndpoint, logger);
  // A full pass due after lost log history (issue #18): shown by health and metrics, and started.
  const fullPass = watchFullPassDue(db, config.source);
  const metrics = createWorkerMetrics({
    runInProgress: () => current !== undefined,
    readLogLagSeconds: async () => (await readLogCheckpoint(db))?.lag_seconds ?? undefined,
    fullPassDue: () => fullPass.due !== undefined,
  });
  if (lastSuccessAt) metrics.setLastSuccess(lastSuccessAt);
  const webhook = config.monitoring.notifyWebhookUrl;
  const notifier = webhook
    ? createNotifier({
        url: webhook,
        logger,
        job: SYNC_JOB_NAME,
        tenant: new URL(config.auth0.baseUrl).hostname,
        stopSignal,
        alerting: previous.lastRun?.status === 'failed' || previous.lastRun?.status === 'partial',
        ...options.notify,
      })
    : undefined;

  // noOverlap skips a scheduled tick while the previous scheduled run is still going, and says
  // so through onOverlap; the scheduler's own warnings go to debug.
  const task = scheduler.createTask(schedule, () => tick('schedule'), {
    timezone,
    name: SYNC_JOB_NAME,
    noOverlap: true,
    onOverlap: () => skipOverlap('schedule'),
    onMissed: (at) => logger.warn('tick missed: the process was busy or asleep', { at: at.toISOString() }),
    logger: { warn: (m) => logger.debug(m), error: (m) => logger.error(m) },
  });
  const intervalMs = scheduleIntervalMs(task.nextRuns(10));

  const logNext = () => logger.info('next run', { at: task.nextRun()?.toISOString(), schedule, timezone });

  /** Why a pass starts: its schedule, SYNC_RUN_ON_START, or a full pass due after lost log history. */
  type PassReason = 'schedule' | 'start' | 'history';

  function skipOverlap(reason: PassReason) {
    logger.warn('tick skipped: the previous run is still going', { reason });
    metrics.tickSkipped('overlap');
  }

  function tick(reason: PassReason, args?: Record<string, unknown>): Promise<void> {
    if (stopSignal.aborted) {
      logger.warn('tick skipped: the worker is stopping', { reason });
      metrics.tickSkipped('stopping');
      return Promise.resolve();
    }
    // The scheduler does not know about the run at start (it runs outside the schedule), so a
    // scheduled tick during that one is skipped here.
    if (current) {
      skipOverlap(reason);
      return Promise.resolve();
    }
    current = (async () => {
      try {
        await logs?.beforePass();
        const outcome = await runOnce(args);
        if (outcome) await recordOutcome(outcome);
        if (config.worker.historyDays !== undefined) await pruneHistoryLogged(db, config.worker.historyDays, logger);
      } finally {
        logs?.afterPass();
        current = undefined;
        if (!stopSignal.aborted) logNext();
      }
      // A pass is what clears a full pass due, and one due while this pass ran starts now.
      await startFullPassIfDue();
    })();
    return current;
  }

  /**
   * Start the full pass due after lost log history, right away rather than at the next tick of
   * SYNC_SCHEDULE: once per loss (its history_lost_at), never beside a pass (one going now was
   * started before the loss was seen; this is called again when it ends). Never throws.
   */
  async function startFullPassIfDue(): Promise<void> {
    try {
      await fullPass.check();
      if (current || stopSignal.aborted) return;
      const due = fullPass.claim();
      if (!due) return;
      logger.warn('full pass started: tenant log history was lost', { historyLostAt: due.historyLostAt.toISOString(), reason: due.reason });
      void tick('history', { fullPassDue: { historyLostAt: due.historyLostAt.toISOString() } });
    } catch (error) {
      logger.error('full pass check failed', { code: errorCode(error), error: toSafeText(toError(error).message) });
    }
  }

  /** One run (`args` recorded in sync_runs.args); undefined when it was skipped for the run lock. */
  async function runOnce(args: Record<string, unknown> | undefined): Promise<RunOutcome | undefined> {
    const tally = metrics.startRun();
    const started = Date.now();
    const seconds = () => (Date.now() - started) / 1000;
    try {
      const result = await runSyncJob({
        config,
        db,
        logger,
        trigger: 'schedule',
        args,
        stopSignal,
        tokensEndpoint,
        ...options.runOptions,
        ...logs?.runOptions,
        onProgress: (counts) => tally.add(counts),
        auth0: { ...options.runOptions?.auth0, ...logs?.runOptions.auth0, onResponse: (status, pace) => metrics.observeResponse(status, pace) },
      });
      tally.add(result.counts);
      logger.info('scheduled run done', { runId: result.runId, status: result.status, code: result.errorCode });
      return { ...result, durationSeconds: seconds() };
    } catch (error) {
      if (error instanceof RunLockedError) {
        logger.warn('tick skipped: another run is active', { reason: error.message });
        metrics.tickSkipped('locked');
        return undefined;
      }
      // The run could not start (database gone, migrations pending): a failure to call for help about.
      const message = toSafeText(toError(error).message);
      logger.error('scheduled run failed', { code: errorCode(error), error: message });
      return {
        runId: undefined,
        status: 'failed',
        counts: emptyCounts(),
        usersTotal: undefined,
        durationSeconds: seconds(),
        error: message,
        errorCode: errorCode(error),
      };
    }
  }

  async function recordOutcome(outcome: RunOutcome): Promise<void> {
    const finishedAt = new Date();
    metrics.finishRun(outcome.status, outcome.durationSeconds, { finishedAt });
    if (outcome.status === 'succeeded') lastSuccessAt = finishedAt;
    lastRun = { id: outcome.runId, status: outcome.status, durationMs: outcome.durationSeconds * 1000, errorCode: outcome.errorCode };
    if (!notifier) return;
    if (outcome.status === 'partial' && outcome.error === undefined && outcome.runId !== undefined) {
      // A partial run has no run error: its first failed user's error says what went wrong.
      const first = await readFirstUserError(db, outcome.runId).catch(() => undefined);
      if (first) Object.assign(outcome, first);
    }
    await notifier.notifyRun(outcome);
  }

  let logs: LogFollower | undefined;
  let server: MonitorServer | undefined;
  // Health and metrics say a full pass is due from their first answer; it is started (and a
  // failure to read it logged) once the schedule runs, below.
  await fullPass.check().catch(() => undefined);
  const { metricsPort, metricsHost } = config.monitoring;
  if (metricsPort !== undefined) {
    server = await startMonitorServer({
      host: metricsHost,
      port: metricsPort,
      registry: metrics.registry,
      logger,
      report: createReportPage(db),
      health: () => toHealth({ now: new Date(), scheduler: task.status(), startedAt, lastSuccessAt, lastRun, intervalMs, fullPassDue: fullPass.due }),
    });
    logger.info('monitoring server listening', {
      url: server.url,
      metrics: `${server.url}/metrics`,
      health: `${server.url}/healthz`,
      report: `${server.url}/`,
    });
  }

  try {
    // The log follower (SYNC_LOGS_SCHEDULE) hands its users to the pass in progress (issue #10).
    logs = await startLogFollower({
      config,
      db,
      logger,
      stopSignal,
      runOptions: options.runOptions,
      scheduler,
      metrics,
      onFollowed: () => void startFullPassIfDue(),
    });
    await task.start();
    logger.info('worker started', {
      job: SYNC_JOB_NAME,
      schedule,
      timezone,
      runOnStart,
      notify: webhook ? new URL(webhook.reveal()).origin : undefined,
    });
    if (runOnStart) void tick('start');
    else logNext();
    // History lost before this worker started (a follow from the CLI, or before a restart).
    await startFullPassIfDue();

    await new Promise<void>((resolve) => {
      if (stopSignal.aborted) resolve();
      else stopSignal.addEventListener('abort', () => resolve(), { once: true });
    });
    logger.info('worker stopping', { runInProgress: Boolean(current) });
    await task.destroy();
    await Promise.all([current, logs?.stop()]);
  } finally {
    await server?.close();
  }
  logger.info('worker stopped');
}

/** The last success and the last finished run recorded before this worker started, for health. */
async function readPreviousRuns(db: Kysely<Database>): Promise<{ lastSuccessAt: Date | undefined; lastRun: HealthInput['lastRun'] }> {
  const { lastSuccessAt, lastFinished } = await readLastRuns(db);
  return {
    lastSuccessAt,
    lastRun: lastFinished && {
      id: lastFinished.id,
      status: lastFinished.status,
      durationMs: lastFinished.finished_at ? Math.max(0, lastFinished.finished_at.getTime() - lastFinished.started_at.getTime()) : 0,
    },
  };
}

/** SYNC_HISTORY_DAYS after a run: a failure is logged, never stops the schedule. */
async function pruneHistoryLogged(db: Kysely<Database>, days: number, logger: Logger): Promise<void> {
  try {
    const result = await pruneHistory(db, days);
    logger.info('history pruned', { days, cutoff: result.cutoff.toISOString(), changesDeleted: result.changesDeleted, runsDeleted: result.runsDeleted });
  } catch (error) {
    logger.error('history pruning failed', { code: errorCode(error), error: toSafeText(toError(error).message) });
  }
}
