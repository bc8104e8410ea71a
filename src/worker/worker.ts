import type { Kysely } from 'kysely';
import type { Config } from '../core/config.js';
import type { Database } from '../warehouse/schema.js';
import { errorCode, toError } from '../core/errors.js';
import { combineHealth, scheduleIntervalMs, toHealth, type HealthInput } from './health.js';
import type { Logger } from '../core/log.js';
import { createMetricsRegistry, type MetricsRegistry, type WorkerMetrics } from './metrics.js';
import { watchFullPassDue, type FullPassWatch } from './full-pass-due.js';
import { readLogCheckpoint } from '../warehouse/log-checkpoint.js';
import { readRecentDeletions } from '../status/read-status.js';
import { assertMigrated } from '../warehouse/migrate.js';
import { startMonitorServer, type MonitorServer } from './monitor-server.js';
import { createReportPage } from './report-page.js';
import { createNotifier, type Notifier, type NotifierOptions, type RunOutcome } from './notify.js';
import { RunLockedError } from '../warehouse/run-lock.js';
import { emptyCounts, readFirstUserError, readLastRuns } from '../warehouse/run-records.js';
import { cronScheduler, type CronTask, type Scheduler } from './scheduler.js';
import { runSyncJob, SYNC_JOB_NAME, type SyncJobOptions } from '../jobs/sync.js';
import { createTokensEndpointChoice, type TokensEndpointChoice } from '../pipeline/tokens-endpoint.js';
import { toSafeText } from '../core/upstream-text.js';
import { pruneHistory } from '../warehouse/history-retention.js';
import { FOLLOW_LOGS_TASK, startLogFollower, type LogFollower } from './log-follower.js';
import { assertJobQueueInstalled } from '../warehouse/job-queue-schema.js';
import { startJobEngine, type JobEngine, type JobEngineTimings } from './job-engine.js';
import { tickKey, type TenantJob, type TenantJobKind } from './tenant-jobs.js';

export interface WorkerOptions {
  /** One per tenant (issue #23): each gets its schedules, follower, health and metrics; they share the rest. */
  configs: readonly Config[];
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
  /**
   * On a server database: the job engine the replicas share (issue #23). Without it the worker
   * runs its ticks itself, the single-process path (the embedded database, which one process owns).
   */
  engine?: WorkerEngineOptions;
}

export interface WorkerEngineOptions {
  databaseUrl: string;
  /** Jobs this replica runs at once (WORKER_CONCURRENCY). */
  concurrency: number;
  /** Tests shorten the engine's timings; production keeps the defaults. */
  timings?: Partial<JobEngineTimings>;
  /** Crash-only exit (tests replace it); default `process.exit(1)`. */
  exit?: (reason: string) => void;
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
  // Pending migrations would fail every tick: refuse at start, with one sentence (exit 1).
  await assertMigrated(options.db);
  if (options.engine) await assertJobQueueInstalled(options.db);
  const metrics = createMetricsRegistry();
  const workers = new Map<string, Worker>();
  const engine = options.engine && (await startEngine(options, options.engine, workers));
  let server: MonitorServer | undefined;
  try {
    for (const config of options.configs) {
      const tenantOptions = { ...options, logger: options.configs.length > 1 ? options.logger.child({ tenant: config.tenant }) : options.logger };
      workers.set(config.tenant, await createWorker(tenantOptions, config, metrics, engine));
    }
    const all = [...workers.values()];
    server = await startMonitoring(all, metrics, options);
    for (const worker of all) await startSchedules(worker, options);
    engine?.start();
    await untilAborted(options.stopSignal);
    options.logger.info('worker stopping', { runInProgress: all.some((w) => w.current !== undefined), jobs: engine?.running() });
    // Stop fetching at once, let the running jobs finish (bounded), then stop the engine.
    const engineStopped = engine?.stop(STOP_JOBS_MS);
    await Promise.all(all.map((worker) => stopSchedules(worker)));
    await engineStopped;
  } finally {
    await engine?.stop(0);
    await server?.close();
  }
  options.logger.info('worker stopped');
}

/** How long a stopping replica waits for its running jobs: a job left running is retried by another replica after its expiry. */
const STOP_JOBS_MS = 15_000;

/**
 * The job engine (issue #23): each fetched job runs the tenant's pass or follow, the same code
 * the single-process worker runs on a tick.
 */
function startEngine(options: WorkerOptions, engine: WorkerEngineOptions, workers: ReadonlyMap<string, Worker>): Promise<JobEngine> {
  return startJobEngine({
    databaseUrl: engine.databaseUrl,
    tenants: options.configs.map((c) => c.tenant),
    concurrency: engine.concurrency,
    logger: options.logger,
    timings: engine.timings,
    exit: engine.exit,
    run: async (job) => {
      const worker = workers.get(job.tenant);
      if (!worker) throw new Error(`No tenant ${job.tenant} in this replica's configuration`);
      await runJob(worker, job);
    },
  });
}

/** A job of the tenant's queue: its pass (why: the job's tick) or its follow. */
async function runJob(worker: Worker, job: TenantJob): Promise<void> {
  // Fetched as the replica began to stop: failed, so another replica retries it, rather than skipped.
  if (worker.stopSignal.aborted) throw new Error('The replica is stopping');
  if (job.kind === 'follow') await worker.handlers.get('follow')?.();
  else await tick(worker, job.tick.startsWith('start') ? 'start' : job.tick.startsWith('history') ? 'history' : 'schedule', job.args);
  // A run the stop interrupted (SIGTERM stops it gracefully): failed, so another replica runs it
  // again at once instead of leaving the rest to the next tick.
  if (worker.stopSignal.aborted) throw new Error('The replica stopped during the job');
}

/** Why a pass starts: its schedule, SYNC_RUN_ON_START, or a full pass due after lost log history. */
type PassReason = 'schedule' | 'start' | 'history';

/** What every pass runs with but its `args` and progress hook. */
type PassOptions = Omit<SyncJobOptions, 'args' | 'onProgress'>;

/** The worker for its life: what its steps share, and the few things that change between passes. */
interface Worker {
  readonly config: Config;
  readonly db: Kysely<Database>;
  readonly logger: Logger;
  readonly stopSignal: AbortSignal;
  readonly startedAt: Date;
  readonly metrics: WorkerMetrics;
  /** A full pass due after lost log history (issue #18): shown by health and metrics, and started. */
  readonly fullPass: FullPassWatch;
  /** With NOTIFY_WEBHOOK_URL: notices of failed and partial runs, and of the recovery. */
  readonly notifier: Notifier | undefined;
  /** The SYNC_SCHEDULE task; created stopped, started by `startSchedules`. */
  readonly task: CronTask;
  /** The schedule's interval, for health's "overdue". */
  readonly intervalMs: number;
  /** Which route lists tokens, for the worker's life: with `auto`, the switch happens (and is logged) once. */
  readonly tokensEndpoint: TokensEndpointChoice;
  /** What every pass runs with (`toPassOptions`): set again once the log follower is up. */
  passOptions: PassOptions;
  logs: LogFollower | undefined;
  /** The pass in progress. */
  current: Promise<void> | undefined;
  /** With the job engine: where the tenant's ticks, start pass and due full pass go, as jobs. */
  readonly engine: JobEngine | undefined;
  /** With the job engine: what a fetched job of each kind runs (the schedules' own tick functions). */
  readonly handlers: Map<TenantJobKind, () => Promise<void>>;
  /** The schedules' scheduler: the caller's, or (with the engine) one that turns ticks into jobs. */
  readonly scheduler: Scheduler | undefined;
  lastSuccessAt: Date | undefined;
  lastRun: HealthInput['lastRun'];
}

/** The worker's state before its schedules start: last runs, metrics, notifier, the (stopped) schedule task. */
async function createWorker(options: WorkerOptions, config: Config, registry: MetricsRegistry, engine: JobEngine | undefined): Promise<Worker> {
  const { db, logger, stopSignal } = options;
  const previous = await readPreviousRuns(db, config.tenant);
  const fullPass = watchFullPassDue(db, { tenant: config.tenant, source: config.source });
  const handlers = new Map<TenantJobKind, () => Promise<void>>();
  const scheduler = engine ? engineScheduler(options.scheduler ?? cronScheduler, config.tenant, engine, handlers, () => worker) : options.scheduler;
  const metrics = registry.forTenant(config.tenant, {
    runInProgress: () => worker.current !== undefined,
    readLogLagSeconds: async () => (await readLogCheckpoint(db, config.tenant))?.lag_seconds ?? undefined,
    fullPassDue: () => fullPass.due !== undefined,
    readRecentDeletions: () => readRecentDeletions(db, config.tenant),
  });
  if (previous.lastSuccessAt) metrics.setLastSuccess(previous.lastSuccessAt);
  const task = createScheduleTask(scheduler ?? cronScheduler, config.worker, logger, {
    onTick: () => tick(worker, 'schedule'),
    onOverlap: () => skipOverlap(worker, 'schedule'),
  });
  // One route choice for the worker's life: with `auto`, the switch happens (and is logged) once.
  const tokensEndpoint = createTokensEndpointChoice(config.auth0.tokensEndpoint, logger);
  const webhook = config.monitoring.notifyWebhookUrl;
  const worker: Worker = {
    config,
    db,
    logger,
    stopSignal,
    startedAt: new Date(),
    metrics,
    fullPass,
    notifier: webhook
      ? createNotifier({
          url: webhook,
          logger,
          job: SYNC_JOB_NAME,
          tenant: new URL(config.auth0.baseUrl).hostname,
          stopSignal,
          alerting: previous.lastRun?.status === 'failed' || previous.lastRun?.status === 'partial',
          ...options.notify,
        })
      : undefined,
    task,
    intervalMs: scheduleIntervalMs(task.nextRuns(10)),
    tokensEndpoint,
    passOptions: toPassOptions({ config, db, logger, stopSignal, tokensEndpoint, metrics }, options.runOptions, undefined),
    logs: undefined,
    current: undefined,
    engine,
    handlers,
    scheduler,
    lastSuccessAt: previous.lastSuccessAt,
    lastRun: previous.lastRun,
  };
  return worker;
}

/**
 * With the job engine, a tenant's schedules tick into its queue: each tick sends one job whose
 * id comes from the tick's scheduled time, so the N replicas that see the tick make one job, and
 * the job runs the task's own function (`handlers`) on whichever replica fetches it. After each
 * tick the replica reads the tenant's last runs, which may have run elsewhere, for its health.
 */
function engineScheduler(
  base: Scheduler,
  tenant: string,
  engine: JobEngine,
  handlers: Map<TenantJobKind, () => Promise<void>>,
  worker: () => Worker,
): Scheduler {
  return {
    createTask(expression, run, options) {
      const kind: TenantJobKind = options.name === FOLLOW_LOGS_TASK ? 'follow' : 'pass';
      handlers.set(kind, run);
      return base.createTask(
        expression,
        async (at) => {
          // The replica running the tenant's pass follows the logs itself, handing the users they
          // name to that pass (issue #10), as the single-process worker does: a follow job would
          // wait behind the pass in the tenant's queue.
          if (kind === 'follow' && worker().current) return run(at);
          const tick = tickKey(at ?? new Date());
          // One job of a kind waiting is enough: a pass longer than the schedule queues one next
          // pass, not one per tick (the single-process worker skips them the same way).
          if (await engine.waiting({ kind, tenant, tick }).catch(() => false)) {
            worker().logger[kind === 'pass' ? 'warn' : 'debug']('tick skipped: one is already waiting in the queue', { kind, tick });
            worker().metrics.tickSkipped('overlap');
            return;
          }
          const made = await engine.send({ kind, tenant, tick }).catch((error: unknown) => {
            worker().logger.error('tick could not be sent', { kind, tick, code: errorCode(error), error: toSafeText(toError(error).message) });
            return undefined;
          });
          // Passes at info (one line per tick and replica); the follows' minute ticks at debug.
          if (made !== undefined) worker().logger[kind === 'pass' ? 'info' : 'debug'](made ? 'tick sent' : 'tick already sent', { kind, tick });
          if (kind === 'pass') await refreshLastRuns(worker());
        },
        { ...options, noOverlap: false },
      );
    },
  };
}

/** The tenant's last runs as the database has them (another replica may have run them), for health and metrics. */
async function refreshLastRuns(worker: Worker): Promise<void> {
  try {
    const previous = await readPreviousRuns(worker.db, worker.config.tenant);
    if (previous.lastSuccessAt && (!worker.lastSuccessAt || previous.lastSuccessAt > worker.lastSuccessAt)) {
      worker.lastSuccessAt = previous.lastSuccessAt;
      worker.metrics.setLastSuccess(previous.lastSuccessAt);
    }
    if (previous.lastRun) worker.lastRun = previous.lastRun;
  } catch (error) {
    worker.logger.warn('last runs could not be read', { code: errorCode(error), error: toSafeText(toError(error).message) });
  }
}

/**
 * The SYNC_SCHEDULE task, stopped. noOverlap skips a scheduled tick while the previous scheduled
 * run is still going, and says so through onOverlap; the scheduler's own warnings go to debug.
 */
function createScheduleTask(
  scheduler: Scheduler,
  { schedule, timezone }: Config['worker'],
  logger: Logger,
  on: { onTick: () => Promise<void>; onOverlap: () => void },
): CronTask {
  return scheduler.createTask(schedule, on.onTick, {
    timezone,
    name: SYNC_JOB_NAME,
    noOverlap: true,
    onOverlap: on.onOverlap,
    onMissed: (at) => logger.warn('tick missed: the process was busy or asleep', { at: at.toISOString() }),
    logger: { warn: (m) => logger.debug(m), error: (m) => logger.error(m) },
  });
}

/**
 * What every pass runs with, one explicit object: the worker's own fields, then the caller's
 * `runOptions` (an embedded database, fast backoff), then the log follower's priority lane and
 * its Auth0 client parts shared with the follows (one rate limiter, one access token; they
 * already hold the caller's Auth0 options), with every answer counted in the metrics.
 */
function toPassOptions(
  worker: Pick<Worker, 'config' | 'db' | 'logger' | 'stopSignal' | 'tokensEndpoint' | 'metrics'>,
  runOptions: Partial<SyncJobOptions> | undefined,
  logs: LogFollower | undefined,
): PassOptions {
  const { config, db, logger, stopSignal, tokensEndpoint, metrics } = worker;
  return {
    config,
    db,
    logger,
    trigger: 'schedule',
    stopSignal,
    tokensEndpoint,
    ...runOptions,
    lane: logs?.lane ?? runOptions?.lane,
    auth0: { ...(logs?.auth0 ?? runOptions?.auth0), onResponse: (status, pace) => metrics.observeResponse(status, pace) },
  };
}

/** With METRICS_PORT: serves `/metrics`, `/healthz` and the report at `/` until closed; undefined without. */
async function startMonitoring(workers: readonly Worker[], metrics: MetricsRegistry, options: WorkerOptions): Promise<MonitorServer | undefined> {
  const { db, logger } = options;
  // Health and metrics say a full pass is due from their first answer; it is started (and a
  // failure to read it logged) once the schedule runs.
  for (const { fullPass } of workers) await fullPass.check().catch(() => undefined);
  // The monitoring settings are shared by every tenant (environment variables).
  const { metricsPort, metricsHost } = workers[0]!.config.monitoring;
  if (metricsPort === undefined) return undefined;
  const server = await startMonitorServer({
    host: metricsHost,
    port: metricsPort,
    registry: metrics.registry,
    logger,
    report: createReportPage(db),
    health: () =>
      combineHealth(
        workers.map((worker) => ({
          tenant: worker.config.tenant,
          report: toHealth({
            now: new Date(),
            scheduler: worker.task.status(),
            startedAt: worker.startedAt,
            lastSuccessAt: worker.lastSuccessAt,
            lastRun: worker.lastRun,
            intervalMs: worker.intervalMs,
            fullPassDue: worker.fullPass.due,
          }),
        })),
      ),
  });
  logger.info('monitoring server listening', { url: server.url, metrics: `${server.url}/metrics`, health: `${server.url}/healthz`, report: `${server.url}/` });
  return server;
}

/**
 * Starts the log follower (SYNC_LOGS_SCHEDULE: it hands its users to the pass in progress, issue
 * #10) and SYNC_SCHEDULE, runs the first pass with SYNC_RUN_ON_START, and starts a full pass due
 * after history lost before this worker started (a follow from the CLI, or before a restart).
 */
async function startSchedules(worker: Worker, options: WorkerOptions): Promise<void> {
  const { config, db, logger, stopSignal, metrics, task } = worker;
  const { schedule, timezone, runOnStart } = config.worker;
  worker.logs = await startLogFollower({
    config,
    db,
    logger,
    stopSignal,
    runOptions: options.runOptions,
    scheduler: worker.scheduler,
    metrics,
    onFollowed: () => void startFullPassIfDue(worker),
  });
  worker.passOptions = toPassOptions(worker, options.runOptions, worker.logs);
  await task.start();
  const webhook = config.monitoring.notifyWebhookUrl;
  logger.info('worker started', { job: SYNC_JOB_NAME, schedule, timezone, runOnStart, notify: webhook ? new URL(webhook.reveal()).origin : undefined });
  // With the engine, the replicas started in the same minute make one start pass.
  if (runOnStart && worker.engine) await sendPass(worker, `start:${tickKey(new Date(Math.floor(Date.now() / 60_000) * 60_000))}`);
  else if (runOnStart) void tick(worker, 'start');
  else logNextRun(worker);
  await startFullPassIfDue(worker);
}

/** Resolves once `signal` aborts. */
function untilAborted(signal: AbortSignal): Promise<void> {
  return new Promise<void>((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener('abort', () => resolve(), { once: true });
  });
}

/** Stops both schedules and waits for the pass and the follow in progress to stop gracefully. */
async function stopSchedules(worker: Worker): Promise<void> {
  await worker.task.destroy();
  await Promise.all([worker.current, worker.logs?.stop()]);
}

/** With the engine: a pass of the tenant as a job (`tick` names it: its id is made of it). */
async function sendPass(worker: Worker, tick: string, args?: Record<string, unknown>): Promise<void> {
  try {
    const made = await worker.engine!.send({ kind: 'pass', tenant: worker.config.tenant, tick, ...(args && { args }) });
    worker.logger.info(made ? 'pass queued' : 'pass already queued', { tick });
  } catch (error) {
    worker.logger.error('pass could not be queued', { tick, code: errorCode(error), error: toSafeText(toError(error).message) });
  }
}

/** Logs when SYNC_SCHEDULE ticks next. */
function logNextRun({ logger, task, config }: Worker): void {
  logger.info('next run', { at: task.nextRun()?.toISOString(), schedule: config.worker.schedule, timezone: config.worker.timezone });
}

/** A tick that meets the worker's own pass still going: logged and counted, never queued. */
function skipOverlap(worker: Worker, reason: PassReason): void {
  worker.logger.warn('tick skipped: the previous run is still going', { reason });
  worker.metrics.tickSkipped('overlap');
}

/**
 * One tick: a pass (unless the worker is stopping or a pass is going), its outcome recorded and
 * notified, SYNC_HISTORY_DAYS pruning, then a full pass if one fell due meanwhile.
 */
function tick(worker: Worker, reason: PassReason, args?: Record<string, unknown>): Promise<void> {
  const { logger, metrics, stopSignal, config, db } = worker;
  if (stopSignal.aborted) {
    logger.warn('tick skipped: the worker is stopping', { reason });
    metrics.tickSkipped('stopping');
    return Promise.resolve();
  }
  // The scheduler does not know about the run at start (it runs outside the schedule), so a
  // scheduled tick during that one is skipped here.
  if (worker.current) {
    skipOverlap(worker, reason);
    return Promise.resolve();
  }
  worker.current = (async () => {
    try {
      await worker.logs?.beforePass();
      const outcome = await runPass(worker, args);
      if (outcome) await recordOutcome(worker, outcome);
      if (config.worker.historyDays !== undefined) await pruneHistoryLogged(db, config.worker.historyDays, logger);
    } finally {
      worker.logs?.afterPass();
      worker.current = undefined;
      if (!stopSignal.aborted) logNextRun(worker);
    }
    // A pass is what clears a full pass due, and one due while this pass ran starts now.
    await startFullPassIfDue(worker);
  })();
  return worker.current;
}

/**
 * Start the full pass due after lost log history, right away rather than at the next tick of
 * SYNC_SCHEDULE: once per loss (its history_lost_at), never beside a pass (one going now was
 * started before the loss was seen; this is called again when it ends). Never throws.
 */
async function startFullPassIfDue(worker: Worker): Promise<void> {
  const { fullPass, logger, stopSignal } = worker;
  try {
    await fullPass.check();
    if (worker.current || stopSignal.aborted) return;
    const due = fullPass.claim();
    if (!due) return;
    logger.warn('full pass started: tenant log history was lost', { historyLostAt: due.historyLostAt.toISOString(), reason: due.reason });
    const args = { fullPassDue: { historyLostAt: due.historyLostAt.toISOString() } };
    // With the engine, one job per loss whichever replicas see it.
    if (worker.engine) await sendPass(worker, `history:${due.historyLostAt.toISOString()}`, args);
    else void tick(worker, 'history', args);
  } catch (error) {
    logger.error('full pass check failed', { code: errorCode(error), error: toSafeText(toError(error).message) });
  }
}

/** One pass (`args` recorded in sync_runs.args); undefined when it was skipped for the run lock. */
async function runPass(worker: Worker, args: Record<string, unknown> | undefined): Promise<RunOutcome | undefined> {
  const { logger, metrics } = worker;
  const tally = metrics.startRun();
  const started = Date.now();
  const seconds = () => (Date.now() - started) / 1000;
  try {
    const result = await runSyncJob({ ...worker.passOptions, args, onProgress: (counts) => tally.add(counts) });
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

/** A pass's outcome into metrics and health, and (with NOTIFY_WEBHOOK_URL) a notice when it calls for one. */
async function recordOutcome(worker: Worker, outcome: RunOutcome): Promise<void> {
  const finishedAt = new Date();
  worker.metrics.finishRun(outcome.status, outcome.durationSeconds, { finishedAt });
  if (outcome.status === 'succeeded') worker.lastSuccessAt = finishedAt;
  worker.lastRun = { id: outcome.runId, status: outcome.status, durationMs: outcome.durationSeconds * 1000, errorCode: outcome.errorCode };
  if (!worker.notifier) return;
  if (outcome.status === 'partial' && outcome.error === undefined && outcome.runId !== undefined) {
    // A partial run has no run error: its first failed user's error says what went wrong.
    const first = await readFirstUserError(worker.db, outcome.runId).catch(() => undefined);
    if (first) Object.assign(outcome, first);
  }
  await worker.notifier.notifyRun(outcome);
}

/** The tenant's last success and last finished run as the database has them, for health. */
async function readPreviousRuns(db: Kysely<Database>, tenant: string): Promise<{ lastSuccessAt: Date | undefined; lastRun: HealthInput['lastRun'] }> {
  const { lastSuccessAt, lastFinished } = await readLastRuns(db, tenant);
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
    if (!result) return logger.debug('history not pruned: another process is pruning it', { days });
    logger.info('history pruned', {
      days,
      cutoff: result.cutoff.toISOString(),
      changesDeleted: result.changesDeleted,
      sessionChangesDeleted: result.sessionChangesDeleted,
      runsDeleted: result.runsDeleted,
    });
  } catch (error) {
    logger.error('history pruning failed', { code: errorCode(error), error: toSafeText(toError(error).message) });
  }
}
