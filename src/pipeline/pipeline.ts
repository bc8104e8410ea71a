import { setMaxListeners } from 'node:events';
import type { Kysely } from 'kysely';
import pLimit, { type LimitFunction } from 'p-limit';
import type { Auth0Client } from '../auth0/client.js';
import { Auth0Error } from '../auth0/errors.js';
import { fetchAllRefreshTokens } from '../auth0/refresh-tokens.js';
import { collectSessions } from '../auth0/sessions.js';
import type { Config } from '../core/config.js';
import type { Database } from '../warehouse/schema.js';
import { errorCode, isFatal, toError } from '../core/errors.js';
import type { Logger } from '../core/log.js';
import type { RunLease } from '../warehouse/run-lock.js';
import type { RunCounts } from '../warehouse/run-records.js';
import { checkUserId, describeUserId, invalidUserIdKey } from '../core/user-id.js';
import { createBatchWriter, type BatchWriter } from './batch-writer.js';
import type { DeleteGuard } from './delete-guard.js';
import { toWarehouseRows } from './normalize.js';
import { toSessionRecords } from './normalize-sessions.js';
import type { SessionsSwitch } from './sessions-switch.js';
import type { UserOutcome } from '../warehouse/model.js';
import type { LogEvidence } from './log-evidence.js';
import type { LaneTicket, PriorityLane } from './priority-lane.js';
import type { TokensEndpointChoice } from './tokens-endpoint.js';

export interface SyncDeps {
  db: Kysely<Database>;
  /** The tenant being synced: every row read and written is that tenant's (issue #23). */
  tenant: string;
  client: Auth0Client;
  logger: Logger;
  /** Undefined for a dry run: fetch and compare, write nothing. */
  runId: number | undefined;
  /** Fences the writes of a run holding the lock on a server (issue #13). */
  lease?: RunLease;
  options: Config['sync'];
  /** Which route lists tokens; shared by every user of the run (issue #12). */
  endpoints: TokensEndpointChoice;
  /** Updated in place as users are written, so a progress reporter can read it. */
  counts: RunCounts;
  /** Aborting it stops taking new users; users in flight get `stopGraceMs` to finish. */
  stopSignal?: AbortSignal;
  /** How long users in flight may take after a stop before they are abandoned, default 5 s. */
  stopGraceMs?: number;
  /** Bounds on deletions (see delete-guard.ts); undefined: none. */
  deleteGuard?: DeleteGuard;
  /**
   * Users handed over while the run goes (the worker's log follower, issue #10): taken before the
   * next source user. Only for a run with a run row.
   */
  lane?: PriorityLane;
  /** What the tenant's logs said about the run's users: explained deletions, removals. */
  evidence?: LogEvidence;
  /** Whether each user's sessions are listed too (SYNC_SESSIONS, issue #22); undefined: never. */
  sessions?: SessionsSwitch;
}

export interface SyncResult {
  /** Set when an error doomed every user and the run failed early. */
  failure?: Error;
  /** True when stopSignal ended the run before every user was synced. */
  interrupted: boolean;
}

/**
 * Sync every user `userIds` yields: fetch each user's complete listing (at most
 * `options.concurrency` users at a time, through p-limit), map it, and hand it to the group-
 * commit writer. IDs are pulled from the iterator only as slots free up, so a table of ten
 * million users is never queued at once. One user's failure is recorded and the run goes on;
 * a fatal error (credentials, scope, database) stops taking users and is returned.
 *
 * With a `lane`, users handed over are taken before the next source user, and the run takes them
 * until its source is exhausted and the lane is empty. A user is never synced twice at once: one
 * named again while it is being fetched or written waits for that to finish and is then fetched
 * again (the first fetch may predate the change); a source user already busy for the lane is
 * skipped (its lane fetch is as fresh).
 */
export async function syncUsers(deps: SyncDeps, userIds: AsyncIterable<string>): Promise<SyncResult> {
  const run = startPipeline(deps);
  const unwatch = watchStops(run);
  run.lane?.open(deps.runId!, () => wake(run));
  try {
    await takeUsers(run, userIds[Symbol.asyncIterator]());
  } catch (error) {
    fail(run, toError(error)); // the source went away: users in flight are abandoned, not written
  } finally {
    await finishPipeline(run, unwatch);
  }
  return { failure: run.failure, interrupted: run.interrupted };
}

/** One call of `syncUsers`: what its steps share. */
interface Pipeline {
  readonly deps: SyncDeps;
  /** Aborted by a failure, or when a graceful stop's grace period ends: every request in flight listens on it. */
  readonly abort: AbortController;
  /** At most `options.concurrency` users fetched at once. */
  readonly limit: LimitFunction;
  readonly writer: BatchWriter;
  /** The priority lane, for a run with a run row only. */
  readonly lane: PriorityLane | undefined;
  /** Users being fetched or waiting to be written, with their lane ticket if the lane sent them. */
  readonly busy: Map<string, LaneTicket | undefined>;
  readonly inFlight: Set<Promise<void>>;
  /** Set when an error doomed every user. */
  failure: Error | undefined;
  /** Set when a stop ended the run before every user was synced. */
  interrupted: boolean;
  /** Resumes `takeUsers` while it waits in `pause`. */
  wakeLoop: (() => void) | undefined;
}

/** The run's shared state, with the batch writer opened and the client closed when the run aborts. */
function startPipeline(deps: SyncDeps): Pipeline {
  const abort = new AbortController();
  // Every request in flight listens on it (got, sleeps): more than Node's default of 10.
  setMaxListeners(4 * deps.options.concurrency + 10, abort.signal);
  abort.signal.addEventListener('abort', () => deps.client.close(), { once: true });
  const { db, tenant, runId, lease, counts, logger, deleteGuard, evidence } = deps;
  const run: Pipeline = {
    deps,
    abort,
    limit: pLimit(deps.options.concurrency),
    writer: createBatchWriter({
      db,
      tenant,
      runId,
      lease,
      counts,
      logger,
      deleteGuard,
      evidence,
      onFatal: (error) => fail(run, error),
      onWritten: (userIds) => markWritten(run, userIds),
    }),
    lane: runId === undefined ? undefined : deps.lane,
    busy: new Map(),
    inFlight: new Set(),
    failure: undefined,
    interrupted: false,
    wakeLoop: undefined,
  };
  return run;
}

/** An error dooms every user: the run fails, users in flight are abandoned. */
function fail(run: Pipeline, error: Error): void {
  if (run.failure) return;
  run.failure = error;
  run.deps.logger.error('stopping the run', { code: errorCode(error), error: error.message });
  run.abort.abort(error);
}

/**
 * Wakes `takeUsers` when it waits: a user finished or was written, the lane got users, the run
 * stopped. (Promise.race over every task in flight would hang a new reaction on each of them per
 * user taken: garbage that grows with the concurrency.)
 */
function wake(run: Pipeline): void {
  const resume = run.wakeLoop;
  run.wakeLoop = undefined;
  resume?.();
}

/** Waits until `wake`. */
function pause(run: Pipeline): Promise<void> {
  return new Promise<void>((resume) => (run.wakeLoop = resume));
}

/** The writer wrote these users (or recorded their failure): no longer busy, their lane tickets settled. */
function markWritten(run: Pipeline, userIds: readonly string[]): void {
  for (const userId of userIds) {
    run.busy.get(userId)?.settle(true);
    run.busy.delete(userId);
  }
  wake(run);
}

/**
 * The ways a run stops early: losing the run lock for good (at once, even between writes), and a
 * graceful stop (take no new user now; abandon the ones in flight after the grace period: they
 * are not written, so they keep their previous rows). Returns the function that stops watching.
 */
function watchStops(run: Pipeline): () => void {
  const { deps, abort } = run;
  const graceMs = deps.stopGraceMs ?? 5000;
  deps.lease?.onLost((error) => fail(run, error));
  let graceTimer: NodeJS.Timeout | undefined;
  const onStop = () => {
    deps.logger.warn('stop requested: finishing the users in flight', { graceMs });
    graceTimer = setTimeout(() => abort.abort(new Error('stopped')), graceMs);
  };
  if (deps.stopSignal?.aborted) onStop();
  else deps.stopSignal?.addEventListener('abort', onStop, { once: true });
  const onAbort = () => wake(run);
  abort.signal.addEventListener('abort', onAbort, { once: true });
  deps.stopSignal?.addEventListener('abort', onAbort, { once: true });
  return () => {
    clearTimeout(graceTimer);
    deps.stopSignal?.removeEventListener('abort', onStop);
    deps.stopSignal?.removeEventListener('abort', onAbort);
    abort.signal.removeEventListener('abort', onAbort);
  };
}

/**
 * The loop: while a slot is free, take the lane's next user, else the source's next; stop on a
 * failure or a stop, or when the source is exhausted and the lane has nothing left to give.
 */
async function takeUsers(run: Pipeline, source: AsyncIterator<string>): Promise<void> {
  const { deps, abort, limit, lane, busy, inFlight } = run;
  const isBusy = (userId: string) => busy.has(userId);
  let sourceDone = false;
  for (;;) {
    if (abort.signal.aborted) return;
    if (deps.stopSignal?.aborted) {
      run.interrupted = true;
      return;
    }
    // Take the next ID only when a slot is free: never queue every user behind p-limit.
    if (limit.activeCount + limit.pendingCount >= deps.options.concurrency) {
      await pause(run);
      continue;
    }
    const ticket = lane?.take(isBusy);
    if (ticket) {
      startUser(run, ticket.userId, ticket);
      continue;
    }
    if (!sourceDone) {
      const next = await source.next();
      if (next.done) {
        sourceDone = true;
        lane?.closeIntake(); // from now on the follower syncs its users itself
      } else if (!busy.has(next.value)) {
        startUser(run, next.value, undefined);
      }
      continue;
    }
    // Users left in the lane but busy wait for their first fetch to be written, unless nothing
    // is in flight: then they sit in the writer's queue until it closes, and the lane gives
    // them back as incomplete (the follower reads their entries again).
    if (!lane || lane.waiting === 0 || inFlight.size === 0) return;
    await pause(run);
  }
}

/** Marks the user busy and queues its sync behind p-limit; the loop wakes when it finishes. */
function startUser(run: Pipeline, userId: string, ticket: LaneTicket | undefined): void {
  run.busy.set(userId, ticket);
  const task = run
    .limit(() => syncUser(run, userId, ticket))
    .finally(() => {
      run.inFlight.delete(task);
      wake(run);
    });
  run.inFlight.add(task);
}

/** Fetches one user and hands its outcome to the writer; an abandoned user keeps its previous rows. */
async function syncUser(run: Pipeline, userId: string, ticket: LaneTicket | undefined): Promise<void> {
  const tokens = await fetchUser(run, userId);
  const sessions = run.deps.sessions;
  const outcome = tokens && tokens.status !== 'failed' && sessions ? await withSessions(run, tokens, sessions) : tokens;
  if (outcome && !run.abort.signal.aborted) {
    if (outcome.userId !== userId) {
      run.busy.delete(userId); // an invalid ID is recorded under its own key
      run.busy.set(outcome.userId, ticket);
    }
    await run.writer.push(outcome);
  } else {
    run.busy.delete(userId);
    ticket?.settle(false); // abandoned: it keeps its previous rows
  }
}

/**
 * One user's complete listing as an outcome (`synced`, `not_found`, `failed`); undefined when
 * the user was abandoned (a stop's deadline, or a failure, this user's own fatal error included).
 */
async function fetchUser(run: Pipeline, userId: string): Promise<UserOutcome | undefined> {
  const { client, options, endpoints } = run.deps;
  const { signal } = run.abort;
  // A source row can hold anything; never send it to Auth0 or store it as a key unchecked.
  const problem = checkUserId(userId);
  if (problem)
    return { status: 'failed', userId: invalidUserIdKey(userId), code: 'invalid_user_id', message: `The user ID ${describeUserId(userId)} ${problem}.` };
  for (;;) {
    const endpoint = endpoints.current();
    try {
      const apiTokens = await fetchAllRefreshTokens(client, userId, { pageSize: options.pageSize, maxPages: options.maxPagesPerUser, endpoint, signal });
      endpoints.confirm(endpoint);
      return { status: 'synced', userId, records: toWarehouseRows(userId, apiTokens) };
    } catch (thrown) {
      if (abandoned(run)) return undefined;
      // An answer saying the Early Access route is not on this tenant lists the user again
      // through the other route (at most once): it says nothing about the user's tokens.
      const verdict = endpoints.judge(endpoint, thrown);
      if (verdict.retry) continue;
      const error = verdict.error;
      if (error instanceof Auth0Error && error.code === 'user_not_found') {
        endpoints.confirm(endpoint);
        return { status: 'not_found', userId };
      }
      return toFailure(run, userId, error);
    }
  }
}

/**
 * Whether the run abandoned the user in flight (a graceful stop's deadline, or another user's
 * fatal error): the user was not finished and keeps its previous rows.
 */
function abandoned(run: Pipeline): boolean {
  if (!run.abort.signal.aborted) return false;
  run.interrupted ||= !run.failure;
  return true;
}

/** A user's listing that failed: the user's `failed` outcome, or undefined when the error stops the whole run. */
function toFailure(run: Pipeline, userId: string, error: unknown): UserOutcome | undefined {
  if (isFatal(error)) {
    fail(run, toError(error));
    return undefined;
  }
  return { status: 'failed', userId, code: errorCode(error), message: toError(error).message };
}

/**
 * The user's outcome with its complete session listing (issue #22), through the same client,
 * slot, budget and retries as its tokens. A `not_found` user lists none (a 404 lists nothing).
 * A route the tenant does not have (SYNC_SESSIONS=auto) leaves the outcome as it was: no
 * sessions, so the user's stored sessions stay as they are; any other failure fails the user,
 * who keeps every stored row.
 */
async function withSessions(
  run: Pipeline,
  outcome: UserOutcome & { status: 'synced' | 'not_found' },
  sessions: SessionsSwitch,
): Promise<UserOutcome | undefined> {
  const { client, options } = run.deps;
  const { signal } = run.abort;
  const { userId } = outcome;
  try {
    if (!(await sessions.enabled(client, signal))) return outcome;
    if (outcome.status === 'not_found') return { ...outcome, sessions: [] };
    const apiSessions = await collectSessions(client, userId, { pageSize: options.pageSize, maxPages: options.maxPagesPerUser, signal });
    return { ...outcome, sessions: toSessionRecords(userId, apiSessions) };
  } catch (thrown) {
    if (abandoned(run)) return undefined;
    const verdict = sessions.judge(thrown);
    if (verdict.off) return outcome;
    const error = verdict.error;
    // Auth0's own "the user does not exist" on the sessions route: deleted since its tokens were listed.
    if (error instanceof Auth0Error && error.code === 'user_not_found') return { status: 'not_found', userId, sessions: [] };
    return toFailure(run, userId, error);
  }
}

/** Waits for the users in flight, stops watching, writes what is queued and hands the lane's leftovers back. */
async function finishPipeline(run: Pipeline, unwatch: () => void): Promise<void> {
  run.lane?.closeIntake();
  await Promise.all(run.inFlight);
  unwatch();
  await run.writer.close().catch((error: unknown) => fail(run, toError(error)));
  run.lane?.finish();
}
