import type { Kysely } from 'kysely';
import { createTokenCache } from './auth0/client.js';
import { createRateLimiter } from './auth0/rate-limiter.js';
import { systemClock } from './clock.js';
import type { Config } from './config.js';
import type { Database } from './database.js';
import { errorCode, toError } from './errors.js';
import type { Logger } from './log.js';
import { RunLockedError } from './run-lock.js';
import { cronScheduler, type Scheduler } from './scheduler.js';
import { followLogs } from './sync/follow-logs.js';
import { createPriorityLane } from './sync/priority-lane.js';
import type { SyncJobOptions } from './sync/job.js';

/** The follower's task name in the scheduler. */
export const FOLLOW_LOGS_TASK = 'follow-logs';

export interface LogFollowerOptions {
  config: Config;
  db: Kysely<Database>;
  logger: Logger;
  stopSignal: AbortSignal;
  /** The worker's options for every run (a database of its own, Auth0 client options). */
  runOptions?: Partial<SyncJobOptions>;
  /** Where the schedule ticks: node-cron unless a test fires the ticks by hand. */
  scheduler?: Scheduler;
}

export interface LogFollower {
  /**
   * For the worker's passes: the priority lane the follower hands users to while a pass runs, and
   * the one rate limiter of the process, shared by the passes and the follower.
   */
  readonly runOptions: Partial<SyncJobOptions>;
  /**
   * Before each of the worker's passes: waits for a follow running on its own (its run holds the
   * lock), and defers follows until the pass takes hand-offs, so neither locks the other out.
   */
  beforePass(): Promise<void>;
  /** After each pass (whatever became of it). */
  afterPass(): void;
  /** Stops the schedule and waits for a follow in progress. */
  stop(): Promise<void>;
}

/**
 * The worker's log follower (issue #10): follows the tenant logs on `SYNC_LOGS_SCHEDULE` beside the
 * passes on `SYNC_SCHEDULE`, neither blocking the other. While the worker's own pass runs, the
 * users the new entries name go to that pass through its priority lane (one run, one lease, one
 * writer per user, one rate budget) and the checkpoint moves once the pass has written them;
 * otherwise each follow syncs them in a run of its own (`trigger = 'logs'`). A tick while the
 * previous follow is still going is skipped, as is one while another process holds the run lock.
 * Returns undefined when `SYNC_LOGS_SCHEDULE=off`.
 */
export async function startLogFollower(options: LogFollowerOptions): Promise<LogFollower | undefined> {
  const { config, db, stopSignal } = options;
  const schedule = config.worker.logsSchedule;
  const logger = options.logger.child({ follower: 'logs' });
  if (schedule === 'off') {
    logger.info('log follower off', { schedule });
    return undefined;
  }
  const lane = createPriorityLane();
  const auth0 = { ...options.runOptions?.auth0 };
  auth0.limiter ??= createRateLimiter(auth0.clock ?? systemClock, { maxRps: config.auth0.maxRps });
  // One access token for every follow and the passes they share with, not one per follow (a
  // follow a minute would otherwise fetch some 1,440 tokens a day from the tenant's quota).
  auth0.tokens ??= createTokenCache();
  let current: Promise<void> | undefined;
  /** The worker's passes started or starting. */
  let passes = 0;

  const task = (options.scheduler ?? cronScheduler).createTask(schedule, () => tick(), {
    timezone: config.worker.timezone,
    name: FOLLOW_LOGS_TASK,
    logger: { warn: (m) => logger.warn(m), error: (m) => logger.error(m) },
  });

  function tick(): Promise<void> {
    if (stopSignal.aborted || current) return Promise.resolve();
    // A pass is starting (or finishing) and takes no hand-off: a run of our own would race it for the lock.
    if (passes > 0 && !lane.accepting) return Promise.resolve();
    current = (async () => {
      try {
        const started = Date.now();
        const result = await followLogs({ config, db, logger, stopSignal, ownsDatabase: options.runOptions?.ownsDatabase, auth0, lane });
        const level = result.outcome === 'stopped' || result.outcome === 'off' || result.outcome === 'restarted' ? 'warn' : 'info';
        logger[level]('logs followed', {
          outcome: result.outcome,
          entries: result.entriesRead,
          users: result.usersChanged,
          handedOff: result.usersHandedOff,
          runs: result.runs.map((r) => r.runId),
          ms: Date.now() - started,
          message: result.messages.join(' '),
        });
      } catch (error) {
        if (error instanceof RunLockedError) logger.info('follow skipped: another run is active', { reason: error.message });
        else logger.error('follow failed', { code: errorCode(error), error: toError(error).message });
      } finally {
        current = undefined;
      }
    })();
    return current;
  }

  await task.start();
  logger.info('log follower started', { schedule, timezone: config.worker.timezone });
  return {
    runOptions: { lane, auth0 },
    async beforePass() {
      passes += 1;
      await current;
    },
    afterPass() {
      passes = Math.max(0, passes - 1);
    },
    async stop() {
      await task.destroy();
      await current;
    },
  };
}
