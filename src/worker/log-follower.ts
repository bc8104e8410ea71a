import type { Kysely } from 'kysely';
import { createTokenCache, type Auth0ClientOptions } from '../auth0/client.js';
import { createRateLimiter } from '../auth0/rate-limiter.js';
import { systemClock } from '../core/clock.js';
import type { Config } from '../core/config.js';
import type { Database } from '../warehouse/schema.js';
import { errorCode, toError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { TickSkipReason, WorkerMetrics } from './metrics.js';
import { RunLockedError } from '../warehouse/run-lock.js';
import { readRunSeconds } from '../warehouse/run-records.js';
import { cronScheduler, type Scheduler } from './scheduler.js';
import { followLogs, type FollowLogsResult } from '../jobs/follow-logs.js';
import { createPriorityLane, type PriorityLane } from '../pipeline/priority-lane.js';
import { toSafeText } from '../core/upstream-text.js';
import type { SyncJobOptions, SyncJobResult } from '../jobs/sync.js';

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
  /** The worker's metrics: skipped ticks (and the follower's runs and requests). */
  metrics: WorkerMetrics;
  /** After each follow (whatever became of it): the checkpoint may say history was lost. Must not throw. */
  onFollowed?: () => void;
}

export interface LogFollower {
  /** For the worker's passes: the priority lane the follower hands users to while a pass runs. */
  readonly lane: PriorityLane;
  /**
   * For the worker's passes: the Auth0 client options of the follows (the worker's own, with the
   * one rate limiter and access token of the process), shared by the passes and the follower.
   */
  readonly auth0: Auth0ClientOptions;
  /**
   * Before each of the worker's passes: waits for the follow in progress (its run may hold the
   * lock); follows ticking from now on wait until the pass takes hand-offs or has ended, so
   * neither locks the other out and no follow is dropped.
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
 * otherwise each follow syncs them in a run of its own (`trigger = 'logs'`).
 *
 * No tick is lost in silence (issue #18): a tick that meets a pass starting, or finishing after it
 * closed its intake, waits until the pass takes hand-offs or has ended, then follows; a follow
 * whose own run meets the run lock of this worker's pass waits for the pass and follows again. A
 * tick skipped (the previous follow still going, another process holding the run lock, the worker
 * stopping) is logged and counted in `auth0_sync_ticks_skipped_total`.
 * Returns undefined when `SYNC_LOGS_SCHEDULE=off`.
 */
export async function startLogFollower(options: LogFollowerOptions): Promise<LogFollower | undefined> {
  const { config, db, stopSignal, metrics } = options;
  const schedule = config.worker.logsSchedule;
  const logger = options.logger.child({ follower: 'logs' });
  if (schedule === 'off') {
    logger.info('log follower off', { schedule });
    return undefined;
  }
  /** The worker's pass, from `beforePass` to `afterPass`. */
  let pass: Pass | undefined;
  const lane = createPriorityLane({ onOpen: () => pass?.open() });
  const auth0: Auth0ClientOptions = { ...options.runOptions?.auth0 };
  auth0.limiter ??= createRateLimiter(auth0.clock ?? systemClock, { maxRps: config.auth0.maxRps });
  // One access token for every follow and the passes they share with, not one per follow (a
  // follow a minute would otherwise fetch some 1,440 tokens a day from the tenant's quota).
  auth0.tokens ??= createTokenCache();
  /** The follow in progress; `id` tells it apart from the pass's point of view. */
  let current: { id: object; done: Promise<void> } | undefined;

  const task = (options.scheduler ?? cronScheduler).createTask(schedule, () => tick(), {
    timezone: config.worker.timezone,
    name: FOLLOW_LOGS_TASK,
    logger: { warn: (m) => logger.warn(m), error: (m) => logger.error(m) },
  });

  function skip(reason: TickSkipReason, message: string, fields: Record<string, unknown> = {}): void {
    logger.warn(message, { reason, ...fields });
    metrics.tickSkipped(reason);
  }

  function tick(): Promise<void> {
    if (stopSignal.aborted) {
      skip('stopping', 'follow skipped: the worker is stopping');
      return Promise.resolve();
    }
    if (current) {
      skip('follow_overlap', 'follow skipped: the previous follow is still going');
      return Promise.resolve();
    }
    const id = {};
    const done = (async () => {
      try {
        await follow(id);
      } finally {
        current = undefined;
      }
      options.onFollowed?.();
    })();
    current = { id, done };
    return done;
  }

  /**
   * One follow, once the pass (if any) takes hand-offs or has ended; again after that pass when
   * the pass's run lock refused the follow's own run, or the pass ended before it wrote the users
   * handed to it (either way the entries were not consumed and the checkpoint stayed).
   */
  async function follow(id: object): Promise<void> {
    for (;;) {
      await untilFollowable(id);
      if (stopSignal.aborted) return skip('stopping', 'follow skipped: the worker is stopping');
      /** The pass this follow may hand its users to (one that waits for the follow will not take them). */
      const sharing = pass?.after === id ? undefined : pass;
      try {
        const result = await followOnce();
        // Stopped by a run of its own (failed, interrupted): the next tick reads the entries again.
        const ownRunStopped = result.runs.some((run) => run.status !== 'succeeded' && run.status !== 'partial');
        if (result.outcome !== 'stopped' || ownRunStopped || sharing === undefined || stopSignal.aborted) return;
        logger.info('follow waits for the pass: it ended before writing the users handed to it');
        await sharing.ended;
      } catch (error) {
        if (!(error instanceof RunLockedError)) {
          logger.error('follow failed', { code: errorCode(error), error: toSafeText(toError(error).message) });
          return;
        }
        // A pass that began during this follow waits for it, so only the pass that was there
        // when it began can be this process's holder of the lock: its intake closed while the
        // entries were read (it may have ended since). Follow again once it has ended.
        if (sharing === undefined) return skip('follow_locked', 'follow skipped: another run is active', { error: error.message });
        logger.info('follow waits for the pass: it holds the run lock', { error: error.message });
      }
    }
  }

  /** Resolves when no pass is starting or finishing, other than one that waits for this follow. */
  async function untilFollowable(id: object): Promise<void> {
    let waited = false;
    while (pass && pass.after !== id && !lane.accepting) {
      const waiting = pass;
      if (!waited) logger.info('follow waits for the pass', { pass: waiting.opened ? 'finishing' : 'starting' });
      waited = true;
      // A pass that already closed its intake takes no more hand-offs: only its end helps.
      await (waiting.opened ? waiting.ended : Promise.race([waiting.opening, waiting.ended]));
    }
  }

  /** One follow; its runs and requests count in the worker's metrics as the passes' do. */
  async function followOnce(): Promise<FollowLogsResult> {
    const started = Date.now();
    const result = await followLogs({
      config,
      db,
      logger,
      stopSignal,
      ownsDatabase: options.runOptions?.ownsDatabase,
      auth0: { ...auth0, onResponse: (status, pace) => metrics.observeResponse(status, pace) },
      lane,
    });
    await countRuns(result.runs);
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
    return result;
  }

  /** The follow's own runs (users handed to a pass count in the pass's run). */
  async function countRuns(runs: readonly SyncJobResult[]): Promise<void> {
    const ids = runs.flatMap((run) => (run.runId === undefined ? [] : [run.runId]));
    const seconds = await readRunSeconds(db, ids).catch(() => new Map<number, number>());
    for (const run of runs) {
      metrics.startRun().add(run.counts);
      metrics.finishRun(run.status, (run.runId === undefined ? undefined : seconds.get(run.runId)) ?? 0, { follow: true });
    }
  }

  await task.start();
  logger.info('log follower started', { schedule, timezone: config.worker.timezone });
  return {
    lane,
    auth0,
    async beforePass() {
      const follow = current;
      pass = createPass(follow?.id);
      await follow?.done;
    },
    afterPass() {
      const ended = pass;
      pass = undefined;
      ended?.end();
    },
    async stop() {
      await task.destroy();
      await current?.done;
    },
  };
}

/** A pass of the worker as the follower sees it. */
interface Pass {
  /** The follow this pass waits for before it starts (one that was going when the pass was due). */
  readonly after: object | undefined;
  /** The pass has opened its lane (it may have closed its intake since). */
  readonly opened: boolean;
  readonly opening: Promise<void>;
  readonly ended: Promise<void>;
  open(): void;
  end(): void;
}

function createPass(after: object | undefined): Pass {
  let open!: () => void;
  let end!: () => void;
  const opening = new Promise<void>((resolve) => (open = resolve));
  const ended = new Promise<void>((resolve) => (end = resolve));
  const pass = {
    after,
    opened: false,
    opening,
    ended,
    open() {
      pass.opened = true;
      open();
    },
    end,
  };
  return pass;
}
