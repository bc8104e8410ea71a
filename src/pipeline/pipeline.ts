import { setMaxListeners } from 'node:events';
import type { Kysely } from 'kysely';
import pLimit from 'p-limit';
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
import { checkUserId, describeUserId, invalidUserIdKey } from '../source/user-id.js';
import { createBatchWriter } from './batch-writer.js';
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
  const { client, logger, options, endpoints } = deps;
  const abort = new AbortController();
  // Every request in flight listens on it (got, sleeps): more than Node's default of 10.
  setMaxListeners(4 * options.concurrency + 10, abort.signal);
  abort.signal.addEventListener('abort', () => client.close(), { once: true });
  let failure: Error | undefined;
  /** An error dooms every user: the run fails, users in flight are abandoned. */
  const fail = (error: Error) => {
    if (failure) return;
    failure = error;
    logger.error('stopping the run', { code: errorCode(error), error: error.message });
    abort.abort(error);
  };
  /** Users being fetched or waiting to be written, with their lane ticket if the lane sent them. */
  const busy = new Map<string, LaneTicket | undefined>();
  // Woken whenever a user finishes, is written, or the lane gets users. (Promise.race over every
  // task in flight would hang a new reaction on each of them per user taken: garbage that grows
  // with the concurrency.)
  let wakeLoop: (() => void) | undefined;
  const wake = () => {
    const resume = wakeLoop;
    wakeLoop = undefined;
    resume?.();
  };
  const onWritten = (userIds: readonly string[]) => {
    for (const userId of userIds) {
      busy.get(userId)?.settle(true);
      busy.delete(userId);
    }
    wake();
  };
  const writer = createBatchWriter({ ...deps, onFatal: fail, onWritten });
  const lane = deps.runId === undefined ? undefined : deps.lane;
  // The run lock is gone for good: stop at once, even between writes.
  deps.lease?.onLost(fail);
  // A graceful stop: take no new user now; abandon the ones in flight after the grace period
  // (they are not written, so they keep their previous rows).
  let graceTimer: NodeJS.Timeout | undefined;
  const onStop = () => {
    logger.warn('stop requested: finishing the users in flight', { graceMs: deps.stopGraceMs ?? 5000 });
    graceTimer = setTimeout(() => abort.abort(new Error('stopped')), deps.stopGraceMs ?? 5000);
  };
  if (deps.stopSignal?.aborted) onStop();
  else deps.stopSignal?.addEventListener('abort', onStop, { once: true });
  const limit = pLimit(options.concurrency);
  const inFlight = new Set<Promise<void>>();

  async function syncUser(userId: string, ticket: LaneTicket | undefined): Promise<void> {
    const outcome = await fetchUser(userId);
    if (outcome && !abort.signal.aborted) {
      if (outcome.userId !== userId) {
        busy.delete(userId); // an invalid ID is recorded under its own key
        busy.set(outcome.userId, ticket);
      }
      await writer.push(outcome);
    } else {
      busy.delete(userId);
      ticket?.settle(false); // abandoned: it keeps its previous rows
    }
  }

  async function fetchUser(userId: string): Promise<UserOutcome | undefined> {
    const outcome = await fetchTokens(userId);
    return outcome && outcome.status !== 'failed' && deps.sessions ? await withSessions(outcome, deps.sessions) : outcome;
  }

  /**
   * The user's outcome with its complete session listing (issue #22), through the same client,
   * slot, budget and retries as its tokens. A `not_found` user lists none (a 404 lists nothing).
   * A route the tenant does not have (SYNC_SESSIONS=auto) leaves the outcome as it was: no
   * sessions, so the user's stored sessions stay as they are; any other failure fails the user,
   * who keeps every stored row.
   */
  async function withSessions(outcome: UserOutcome & { status: 'synced' | 'not_found' }, sessions: SessionsSwitch): Promise<UserOutcome | undefined> {
    const { userId } = outcome;
    try {
      if (!(await sessions.enabled(client, abort.signal))) return outcome;
      if (outcome.status === 'not_found') return { ...outcome, sessions: [] };
      const apiSessions = await collectSessions(client, userId, { pageSize: options.pageSize, maxPages: options.maxPagesPerUser, signal: abort.signal });
      return { ...outcome, sessions: toSessionRecords(userId, apiSessions) };
    } catch (thrown) {
      if (abort.signal.aborted) {
        interrupted ||= !failure;
        return undefined;
      }
      const verdict = sessions.judge(thrown);
      if (verdict.off) return outcome;
      const error = verdict.error;
      // Auth0's own "the user does not exist" on the sessions route: deleted since its tokens were listed.
      if (error instanceof Auth0Error && error.code === 'user_not_found') return { status: 'not_found', userId, sessions: [] };
      if (isFatal(error)) {
        fail(toError(error));
        return undefined;
      }
      return { status: 'failed', userId, code: errorCode(error), message: toError(error).message };
    }
  }

  async function fetchTokens(userId: string): Promise<UserOutcome | undefined> {
    // A source row can hold anything; never send it to Auth0 or store it as a key unchecked.
    const problem = checkUserId(userId);
    if (problem)
      return { status: 'failed', userId: invalidUserIdKey(userId), code: 'invalid_user_id', message: `The user ID ${describeUserId(userId)} ${problem}.` };
    for (;;) {
      const endpoint = endpoints.current();
      try {
        const apiTokens = await fetchAllRefreshTokens(client, userId, {
          pageSize: options.pageSize,
          maxPages: options.maxPagesPerUser,
          endpoint,
          signal: abort.signal,
        });
        endpoints.confirm(endpoint);
        return { status: 'synced', userId, records: toWarehouseRows(userId, apiTokens) };
      } catch (thrown) {
        if (abort.signal.aborted) {
          interrupted ||= !failure; // abandoned by a graceful stop's deadline, or by a failure
          return undefined; // either way this user was not finished and keeps its previous rows
        }
        // An answer saying the Early Access route is not on this tenant lists the user again
        // through the other route (at most once): it says nothing about the user's tokens.
        const verdict = endpoints.judge(endpoint, thrown);
        if (verdict.retry) continue;
        const error = verdict.error;
        if (error instanceof Auth0Error && error.code === 'user_not_found') {
          endpoints.confirm(endpoint);
          return { status: 'not_found', userId };
        }
        if (isFatal(error)) {
          fail(toError(error));
          return undefined;
        }
        return { status: 'failed', userId, code: errorCode(error), message: toError(error).message };
      }
    }
  }

  let interrupted = false;
  const start = (userId: string, ticket: LaneTicket | undefined) => {
    busy.set(userId, ticket);
    const task = limit(() => syncUser(userId, ticket)).finally(() => {
      inFlight.delete(task);
      wake();
    });
    inFlight.add(task);
  };
  const pause = () => new Promise<void>((resume) => (wakeLoop = resume));
  const onAbort = () => wake();
  abort.signal.addEventListener('abort', onAbort, { once: true });
  deps.stopSignal?.addEventListener('abort', onAbort, { once: true });
  const isBusy = (userId: string) => busy.has(userId);
  lane?.open(deps.runId!, wake);
  const source = userIds[Symbol.asyncIterator]();
  let sourceDone = false;
  try {
    for (;;) {
      if (abort.signal.aborted) break;
      if (deps.stopSignal?.aborted) {
        interrupted = true;
        break;
      }
      // Take the next ID only when a slot is free: never queue every user behind p-limit.
      if (limit.activeCount + limit.pendingCount >= options.concurrency) {
        await pause();
        continue;
      }
      const ticket = lane?.take(isBusy);
      if (ticket) {
        start(ticket.userId, ticket);
        continue;
      }
      if (!sourceDone) {
        const next = await source.next();
        if (next.done) {
          sourceDone = true;
          lane?.closeIntake(); // from now on the follower syncs its users itself
        } else if (!busy.has(next.value)) {
          start(next.value, undefined);
        }
        continue;
      }
      // Users left in the lane but busy wait for their first fetch to be written, unless nothing
      // is in flight: then they sit in the writer's queue until it closes, and the lane gives
      // them back as incomplete (the follower reads their entries again).
      if (!lane || lane.waiting === 0 || inFlight.size === 0) break;
      await pause();
    }
  } catch (error) {
    fail(toError(error)); // the source went away: users in flight are abandoned, not written
  } finally {
    lane?.closeIntake();
    await Promise.all(inFlight);
    clearTimeout(graceTimer);
    deps.stopSignal?.removeEventListener('abort', onStop);
    deps.stopSignal?.removeEventListener('abort', onAbort);
    abort.signal.removeEventListener('abort', onAbort);
    await writer.close().catch(fail);
    lane?.finish();
  }
  return { failure, interrupted };
}
