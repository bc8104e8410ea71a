import type { Kysely } from 'kysely';
import { createAuth0Client, type Auth0ClientOptions } from '../auth0/client.js';
import type { TokensEndpoint } from '../auth0/refresh-tokens.js';
import type { Config } from '../core/config.js';
import type { Database, RunStatus, RunTrigger } from '../warehouse/schema.js';
import { errorCode, toError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import { assertMigrated } from '../warehouse/migrate.js';
import { RunLockLostError, withRunLock, type RunLease } from '../warehouse/run-lock.js';
import { emptyCounts, finishRun, readUnexplainedSinceFullPass, recordRunProgress, startRun, type RunCounts } from '../warehouse/run-records.js';
import { systemClock } from '../core/clock.js';
import { selectUsers, type RunBudget, type UserSelection } from '../source/select-users.js';
import { assertCanWriteWarehouse } from '../warehouse/privileges.js';
import { describeCrossing, MassDeleteError, type DeleteGuard } from '../pipeline/delete-guard.js';
import { measureLive } from '../pipeline/write-batch.js';
import type { LogEvidence } from '../pipeline/log-evidence.js';
import { syncUsers } from '../pipeline/pipeline.js';
import type { PriorityLane } from '../pipeline/priority-lane.js';
import { createTokensEndpointChoice, type TokensEndpointChoice } from '../pipeline/tokens-endpoint.js';
import { createSessionsSwitch } from '../pipeline/sessions-switch.js';
import { SESSIONS_SCOPE } from '../auth0/sessions.js';

/** Where a run stands; `etaSeconds` is null until the rate and the total are known. */
export interface RunProgress {
  done: number;
  total: number | undefined;
  usersPerSecond: number;
  etaSeconds: number | null;
}

/** A live view of the run for people (the CLI's progress bar on a terminal). */
export interface ProgressDisplay {
  update(progress: RunProgress): void;
  stop(): void;
}

/** The job's name, as schedulers and logs know it. */
export const SYNC_JOB_NAME = 'sync-refresh-tokens';

export interface SyncJobOptions {
  config: Config;
  db: Kysely<Database>;
  logger: Logger;
  trigger: RunTrigger;
  /** Which users; default every user of the source table. */
  selection?: UserSelection;
  /** Default from SYNC_MAX_USERS / SYNC_MAX_DURATION. */
  budget?: RunBudget;
  /** Fetch and compare only: no lock, no run row, no user state, no warehouse write. */
  dryRun?: boolean;
  /** This process owns the database (the embedded one, under its directory lock): no run lock needed. */
  ownsDatabase?: boolean;
  /** Confirmed by the operator (`--allow-mass-delete`): no deletion guard for this run. */
  allowMassDelete?: boolean;
  /** Recorded in sync_runs.args. */
  args?: Record<string, unknown>;
  stopSignal?: AbortSignal;
  stopGraceMs?: number;
  /** How often the run lock's connection is checked between writes, default 1 s. */
  lockCheckEveryMs?: number;
  /** Milliseconds between progress lines. */
  progressEveryMs?: number;
  /** Called with the run's counts so far at each progress line (the worker's metrics); must not throw. */
  onProgress?: (counts: Readonly<RunCounts>) => void;
  /**
   * Shown every second while the run goes (a terminal's progress bar); the `progress` log lines
   * then drop to debug level so they do not scroll the bar away.
   */
  progressDisplay?: ProgressDisplay;
  auth0?: Auth0ClientOptions;
  /**
   * The route choice to use, kept across runs by a long-lived process (the worker) so `auto`
   * switches once per process; default a new one from AUTH0_TOKENS_ENDPOINT for this run.
   */
  tokensEndpoint?: TokensEndpointChoice;
  /** Users handed over while the run goes (the worker's log follower): synced before the next source user. */
  lane?: PriorityLane;
  /** What the tenant's logs said about the run's users (a `logs` run); a lane brings its own. */
  evidence?: LogEvidence;
}

export interface SyncJobResult {
  /** Undefined for a dry run. */
  runId: number | undefined;
  status: Exclude<RunStatus, 'running'>;
  counts: RunCounts;
  usersTotal: number | undefined;
  /** A dry run that a real run's deletion guard would stop: what it would cross. */
  wouldStop?: string;
  /** The one sentence that says why a failed run stopped. */
  error?: string;
  errorCode?: string;
  /** The route tokens were listed through (`AUTH0_TOKENS_ENDPOINT`, or what `auto` chose). */
  tokensEndpoint?: TokensEndpoint;
}

/**
 * One complete sync run: refuse a database with pending migrations, take the run lock (or throw
 * RunLockedError), record a `sync_runs` row, sync every user (or the given ones), log progress
 * every few seconds, and record the outcome. Never throws for an error that belongs to the
 * run: it comes back as status `failed`.
 */
export async function runSyncJob(options: SyncJobOptions): Promise<SyncJobResult> {
  await assertMigrated(options.db);
  if (!options.dryRun) await assertCanWriteWarehouse(options.db);
  // A dry run writes nothing, not even the lock's bookkeeping, and can run beside a real one.
  return options.dryRun
    ? runOnce(options, undefined)
    : withRunLock(options.db, (lease) => runOnce(options, lease), {
        tenant: options.config.tenant,
        ownsDatabase: options.ownsDatabase,
        logger: options.logger,
        checkEveryMs: options.lockCheckEveryMs,
      });
}

async function runOnce(options: SyncJobOptions, lease: RunLease | undefined): Promise<SyncJobResult> {
  const { config, db, trigger } = options;
  const { tenant } = config;
  const clock = options.auth0?.clock ?? systemClock;
  const budget = options.budget ?? { maxUsers: config.sync.maxUsers, maxDurationMs: config.sync.maxDurationMs };
  const selection = options.selection ?? { kind: 'source' };
  const { ids: userIds, total: usersTotal } = await selectUsers(db, { tenant, source: config.source }, selection, budget, clock);
  // Every source user with no budget: the run that clears "full pass due" and the guard's window.
  const fullPass = selection.kind === 'source' && budget.maxUsers === undefined && budget.maxDurationMs === undefined;
  // A ratio of 1 allows everything. A dry run writes nothing, so nothing to stop: it only says
  // whether a real run would stop.
  const guard = options.allowMassDelete || config.sync.maxDeleteRatio >= 1 ? undefined : await readDeleteGuard(db, tenant, config.sync, fullPass);
  const deleteGuard = options.dryRun ? undefined : guard;
  const runId = options.dryRun
    ? undefined
    : await startRun(db, { tenant, trigger, args: options.args, usersTotal, maxDeleteRatio: deleteGuard?.maxRatio, fullPass });
  const logger = options.logger.child(runId === undefined ? { dryRun: true } : { runId });
  const counts = emptyCounts();
  // SYNC_SESSIONS=on: a token without read:sessions stops the run before the first listing.
  const requiredScopes = config.sync.sessions === 'on' ? ['read:refresh_tokens', SESSIONS_SCOPE] : undefined;
  const client = createAuth0Client(config.auth0, { maxSockets: config.sync.concurrency, requiredScopes, ...options.auth0 });
  const sessions = config.sync.sessions === 'off' ? undefined : createSessionsSwitch(config.sync.sessions, logger);
  const endpoints = options.tokensEndpoint ?? createTokensEndpointChoice(config.auth0.tokensEndpoint, logger);
  const started = Date.now();
  logger.info('sync started', {
    trigger,
    usersTotal,
    concurrency: config.sync.concurrency,
    tokensEndpoint: config.auth0.tokensEndpoint,
    sessions: config.sync.sessions,
    ...budget,
  });

  const snapshot = (): RunProgress => {
    const done = counts.usersSynced + counts.usersNotFound + counts.usersFailed;
    const rate = done / Math.max((Date.now() - started) / 1000, 0.001);
    const etaSeconds = usersTotal !== undefined && rate > 0 ? Math.max(0, Math.ceil((usersTotal - done) / rate)) : null;
    return { done, total: usersTotal, usersPerSecond: round(rate), etaSeconds };
  };
  const display = options.progressDisplay;
  const progress = setInterval(() => {
    counts.requests = client.requests;
    const { done, total, usersPerSecond, etaSeconds } = snapshot();
    logger[display ? 'debug' : 'info']('progress', { done, total, usersPerSecond, etaSeconds, ...counts });
    if (runId !== undefined) recordRunProgress(db, runId, counts).catch(() => {}); // best effort; the final write reports errors
    options.onProgress?.(counts);
  }, options.progressEveryMs ?? 5000);
  progress.unref();
  const ticker = display ? setInterval(() => display.update(snapshot()), 1000) : undefined;
  ticker?.unref();

  let error: Error | undefined;
  let interrupted = false;
  try {
    if (runId !== undefined) await lease?.claim(runId);
    const result = await syncUsers(
      {
        db,
        tenant,
        client,
        logger,
        runId,
        lease,
        options: config.sync,
        endpoints,
        counts,
        stopSignal: options.stopSignal,
        stopGraceMs: options.stopGraceMs,
        deleteGuard,
        lane: options.lane,
        evidence: options.evidence ?? options.lane?.evidence,
        sessions,
      },
      userIds,
    );
    error = result.failure;
    interrupted = result.interrupted;
  } catch (thrown) {
    // Reading the first page of user IDs failed, or similar: every user is doomed.
    error = toError(thrown);
  } finally {
    clearInterval(progress);
    clearInterval(ticker);
    display?.stop();
    client.close();
    counts.requests = client.requests;
  }

  const tokensEndpoint = endpoints.used();
  let status = toRunStatus(error, interrupted, counts);
  if (runId !== undefined) {
    const recorded = await finishRun(db, runId, {
      status,
      counts,
      error: error?.message,
      tokensEndpoint,
      deleteGuardTripped: error instanceof MassDeleteError,
    });
    if (recorded.status !== status) {
      // The next run took the lock (ours was lost) and already marked this one: keep its word.
      logger.warn('another run already recorded this run', { recorded: recorded.status, error: recorded.error });
      status = recorded.status === 'running' ? status : recorded.status;
      if (!(error instanceof RunLockLostError)) error = new RunLockLostError('another run took over and recorded this run as ' + recorded.status + '.');
    }
  }
  const seconds = round((Date.now() - started) / 1000);
  // Peak resident memory of this process so far: operators size containers by it.
  const peakRssMb = Math.round(process.resourceUsage().maxRSS / 1024);
  const summary = { status, usersTotal, seconds, peakRssMb, tokensEndpoint, sessions: sessions?.state ? 'on' : 'off', ...counts };
  if (error) logger.error('sync failed', { ...summary, code: errorCode(error), error: error.message });
  else logger.info('sync finished', summary);
  if (options.dryRun && guard) {
    await measureLive(db, tenant, guard, { tokens: counts.tokensUnexplained, sessions: counts.sessionsUnexplained });
  }
  const wouldStop = options.dryRun && guard ? describeCrossing(guard, counts) : undefined;
  return { runId, status, counts, usersTotal, error: error?.message, errorCode: error ? errorCode(error) : undefined, tokensEndpoint, wouldStop };
}

/**
 * The deletion guard for a run: a full pass is measured on its own; any other run together with
 * the runs since the last full pass (see delete-guard.ts).
 */
async function readDeleteGuard(db: Kysely<Database>, tenant: string, sync: Config['sync'], fullPass: boolean): Promise<DeleteGuard> {
  const guard = { maxRatio: sync.maxDeleteRatio, minUsers: sync.deleteGuardMinUsers };
  if (fullPass) return guard;
  return { ...guard, window: await readUnexplainedSinceFullPass(db, tenant) };
}

function toRunStatus(error: Error | undefined, interrupted: boolean, counts: RunCounts): SyncJobResult['status'] {
  // A run that lost the run lock wrote nothing after it found out: interrupted, not failed.
  if (error instanceof RunLockLostError) return 'interrupted';
  if (error) return 'failed';
  if (interrupted) return 'interrupted';
  return counts.usersFailed > 0 ? 'partial' : 'succeeded';
}

const round = (n: number) => Math.round(n * 10) / 10;
