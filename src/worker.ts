import type { Kysely } from 'kysely';
import cron from 'node-cron';
import { syncRefreshTokensJob } from '../jobs/sync-refresh-tokens.js';
import type { Config } from './config.js';
import type { Database } from './database.js';
import { errorCode, toError } from './errors.js';
import type { Logger } from './log.js';
import { RunLockedError } from './run-lock.js';
import type { SyncJobOptions } from './sync/run.js';
import { createTokensEndpointChoice } from './sync/tokens-endpoint.js';
import { startLogFollower } from './worker-logs.js';

export interface WorkerOptions {
  config: Config;
  db: Kysely<Database>;
  logger: Logger;
  /** Aborting it stops the schedule and lets a run in progress stop gracefully. */
  stopSignal: AbortSignal;
  /** Passed to every run (tests use it for an exclusive embedded database or fast backoff). */
  runOptions?: Partial<SyncJobOptions>;
}

/**
 * The long-lived scheduler: runs the sync job on `SYNC_SCHEDULE` in `SYNC_TIMEZONE` (and once at
 * start with `SYNC_RUN_ON_START`) until `stopSignal` aborts, then waits for the run in progress
 * to stop gracefully. Every tick goes through the same run lock as a manual `sync`: a tick that
 * finds another run active is skipped and logged, as is a tick while this worker's own run is
 * still going. A failed run is logged and the schedule goes on.
 */
export async function runWorker(options: WorkerOptions): Promise<void> {
  const { config, db, logger, stopSignal } = options;
  const { schedule, timezone, runOnStart } = config.worker;
  let current: Promise<void> | undefined;
  // One route choice for the worker's life: with `auto`, the switch happens (and is logged) once.
  const tokensEndpoint = createTokensEndpointChoice(config.auth0.tokensEndpoint, logger);

  const task = cron.createTask(schedule, () => tick('schedule'), {
    timezone,
    name: syncRefreshTokensJob.name,
    logger: { info: () => {}, debug: () => {}, warn: (m) => logger.warn(String(m)), error: (m) => logger.error(String(m)) },
  });

  const logNext = () => logger.info('next run', { at: task.getNextRun()?.toISOString(), schedule, timezone });

  function tick(reason: 'schedule' | 'start'): Promise<void> {
    if (stopSignal.aborted) return Promise.resolve();
    if (current) {
      logger.warn('tick skipped: the previous run is still going', { reason });
      return Promise.resolve();
    }
    current = (async () => {
      try {
        await logs?.beforePass();
        const result = await syncRefreshTokensJob.run({
          config,
          db,
          logger,
          trigger: 'schedule',
          stopSignal,
          tokensEndpoint,
          ...options.runOptions,
          ...logs?.runOptions,
        });
        logger.info('scheduled run done', { runId: result.runId, status: result.status, code: result.errorCode });
      } catch (error) {
        if (error instanceof RunLockedError) logger.warn('tick skipped: another run is active', { reason: error.message });
        else logger.error('scheduled run failed', { code: errorCode(error), error: toError(error).message });
      } finally {
        logs?.afterPass();
        current = undefined;
        if (!stopSignal.aborted) logNext();
      }
    })();
    return current;
  }

  // The log follower (SYNC_LOGS_SCHEDULE) hands its users to the pass in progress (issue #10).
  const logs = await startLogFollower({ config, db, logger, stopSignal, runOptions: options.runOptions });
  await task.start();
  logger.info('worker started', { job: syncRefreshTokensJob.name, schedule, timezone, runOnStart });
  if (runOnStart) void tick('start');
  else logNext();

  await new Promise<void>((resolve) => {
    if (stopSignal.aborted) resolve();
    else stopSignal.addEventListener('abort', () => resolve(), { once: true });
  });
  logger.info('worker stopping', { runInProgress: Boolean(current) });
  await task.destroy();
  await Promise.all([current, logs?.stop()]);
  logger.info('worker stopped');
}
