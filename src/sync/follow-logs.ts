import type { Kysely } from 'kysely';
import { createAuth0Client, type Auth0ClientOptions } from '../auth0/client.js';
import { fetchNewestLog, LogsError, readLogs } from '../auth0/logs.js';
import type { Auth0LogEntry } from '../auth0/logs.js';
import { toChangedUsers, toLookupKeys, type SkipReason } from '../changes/log-events.js';
import type { Config } from '../config.js';
import type { Database } from '../database.js';
import type { Logger } from '../log.js';
import { assertMigrated } from '../migrate.js';
import { addSignedUpUsers, advanceLogCheckpoint, readLogCheckpoint, readLogLookups, restartLogCheckpoint } from '../warehouse/log-checkpoint.js';
import { readLogFollowRetries, updateLogFollowRetries, type LogFollowRetry } from '../warehouse/log-follow-retries.js';
import { runSyncJob, type SyncJobResult } from './job.js';
import { createLogEvidence } from './log-evidence.js';
import type { PriorityLane } from './priority-lane.js';

/** Pages (of 100 entries) read before the users they name are synced and the checkpoint moves. */
const PAGES_PER_BATCH = 100;

export interface FollowLogsOptions {
  config: Config;
  db: Kysely<Database>;
  logger: Logger;
  /** This process owns the database (the embedded one): no run lock needed. */
  ownsDatabase?: boolean;
  stopSignal?: AbortSignal;
  auth0?: Auth0ClientOptions;
  /** Confirmed by the operator (`--allow-mass-delete`): no deletion guard for the runs. */
  allowMassDelete?: boolean;
  /** Entries per page, 1..100; default 100. */
  take?: number;
  /**
   * The worker's pass in progress, if any: the users the entries name are handed to it instead of
   * starting a run of their own (which the pass's run lock would refuse).
   */
  lane?: PriorityLane;
}

export interface FollowLogsResult {
  /**
   * `started`: no checkpoint was stored; one was recorded at the newest entry.
   * `restarted`: the stored checkpoint had expired; following resumes at the newest entry.
   * `followed`: entries were read (maybe none) and their users synced.
   * `off`: the client may not read the logs (no `read:logs`); nothing was synced.
   * `stopped`: a sync run did not finish (`failed`, `interrupted`); the checkpoint stayed put.
   */
  outcome: 'started' | 'restarted' | 'followed' | 'off' | 'stopped';
  /** One sentence each, for people. */
  messages: string[];
  /** The sync runs started (one per batch of entries naming users). */
  runs: SyncJobResult[];
  entriesRead: number;
  skipped: Record<SkipReason, number>;
  /** Users synced because the logs named them (a user in two batches counts twice). */
  usersChanged: number;
  /** Of those, users handed to the worker's pass in progress rather than synced in a run of their own. */
  usersHandedOff: number;
  /** Users an earlier follow could not sync, tried again by this one (auth0.log_follow_retries). */
  usersRetried: number;
  /** Users this follow could not sync either: kept for the next follow. */
  usersToRetry: number;
  /** Requests made to read the logs (the sync runs count theirs in `runs`). */
  logRequests: number;
}

/**
 * Follow the tenant logs from the stored checkpoint (issue #10): read every page up to the
 * first empty one, turn the entries into the users whose tokens may have changed, sync exactly
 * those in a run with trigger `logs`, and only then advance the checkpoint. A crash or a run
 * that fails replays the entries next time; none is skipped. A `partial` run advances it: its
 * failed users are recorded in user_sync_state and retried by `--only-failed` and full passes.
 * Throws RunLockedError when another run holds the lock, and errors that stop everything.
 */
export async function followLogs(options: FollowLogsOptions): Promise<FollowLogsResult> {
  const { config, db, logger } = options;
  await assertMigrated(db);
  const client = createAuth0Client(config.auth0, { ...options.auth0, maxSockets: 1 });
  const result: FollowLogsResult = {
    outcome: 'followed',
    messages: [],
    runs: [],
    entriesRead: 0,
    skipped: { other_type: 0, no_user: 0, machine_client: 0, unresolved: 0, invalid_user: 0 },
    usersChanged: 0,
    usersHandedOff: 0,
    usersRetried: 0,
    usersToRetry: 0,
    logRequests: 0,
  };
  const now = () => new Date(options.auth0?.clock?.now() ?? Date.now());

  /** Record the newest entry as the checkpoint (none stored, or the stored one expired). */
  async function startAtNewest(historyLost: boolean, previous?: { logId: string; lastEntryDate: Date | null }): Promise<void> {
    const newest = await fetchNewestLog(client, options.stopSignal);
    const logId = typeof newest?.log_id === 'string' ? newest.log_id : undefined;
    const lost = previous
      ? `The log checkpoint ${previous.logId}${previous.lastEntryDate ? ` (${previous.lastEntryDate.toISOString()})` : ''} is no longer accepted (older than the plan's log retention, 1 to 30 days), so changes since then may be missed: every user is due for a full pass (npm run sync)` +
        (logId ? `, and following resumes from the newest entry ${logId}.` : ', and following resumes once the tenant logs again.')
      : undefined;
    if (!logId) {
      result.messages.push(lost ?? 'The tenant logs hold no entry yet: nothing to follow; earlier history is covered by full passes (npm run sync).');
      return;
    }
    await restartLogCheckpoint(db, { logId, lastEntryDate: dateOf(newest), now: now(), historyLost });
    result.messages.push(
      lost ??
        `No log checkpoint yet: following starts at the newest entry ${logId}${dateOf(newest) ? ` (${dateOf(newest)!.toISOString()})` : ''}; earlier history is covered by full passes (npm run sync).`,
    );
  }

  try {
    const checkpoint = await readLogCheckpoint(db);
    if (!checkpoint) {
      await startAtNewest(false);
      result.outcome = 'started';
      return result;
    }
    let from = checkpoint.log_id;
    // Users earlier follows could not sync go with the first batch, whatever it reads.
    let retries = await readLogFollowRetries(db);
    for (;;) {
      const entries: Auth0LogEntry[] = [];
      let next = from;
      let pages = 0;
      for await (const page of readLogs(client, from, { take: options.take, maxPages: PAGES_PER_BATCH, signal: options.stopSignal })) {
        entries.push(...page.entries);
        next = page.next;
        pages += 1;
      }
      const changes = toChangedUsers(entries, await readLogLookups(db, toLookupKeys(entries)));
      const skipped = Object.values(changes.skipped).reduce((a, b) => a + b, 0);
      if (entries.length > 0) {
        logger.info('log entries read', { from, to: next, entries: entries.length, users: changes.userIds.length, skipped: changes.skipped });
      }
      await addSignedUpUsers(db, config.source, changes.signedUp);
      // What the logs said, the retries' older word first: the later entry wins.
      const evidence = createLogEvidence({
        explained: retries.filter((r) => r.explained).map((r) => r.userId),
        deleted: retries.filter((r) => r.deleted).map((r) => r.userId),
      });
      evidence.add(changes);
      const userIds = [...new Set([...retries.map((r) => r.userId), ...changes.userIds])];
      const tracked: LogFollowRetry[] = userIds.map((userId) => ({
        userId,
        deleted: evidence.deleted.has(userId),
        explained: evidence.explained.has(userId),
      }));
      let runId: number | undefined;
      const handedOff = userIds.length > 0 ? options.lane?.hand(userIds, evidence) : undefined;
      if (handedOff) {
        // The worker's pass holds the run lock: it syncs these users next, in its own run.
        const handOff = await handedOff;
        runId = handOff.runId;
        if (!handOff.complete) {
          result.outcome = 'stopped';
          result.messages.push(
            `Run ${handOff.runId} stopped before it had synced the ${userIds.length} users handed to it: the log checkpoint stays at ${from}, and the next follow reads these entries again.`,
          );
          return result;
        }
        result.usersHandedOff += userIds.length;
      } else if (userIds.length > 0) {
        const run = await runSyncJob({
          config,
          db,
          logger,
          trigger: 'logs',
          selection: { kind: 'ids', userIds, total: userIds.length },
          // Every user the entries name, whatever SYNC_MAX_USERS says: a cut would skip entries.
          budget: {},
          ownsDatabase: options.ownsDatabase,
          allowMassDelete: options.allowMassDelete,
          stopSignal: options.stopSignal,
          args: { fromLogs: { from, to: next, entries: entries.length, retried: retries.length } },
          auth0: options.auth0,
          evidence,
        });
        result.runs.push(run);
        runId = run.runId;
        if (run.status !== 'succeeded' && run.status !== 'partial') {
          result.outcome = 'stopped';
          result.messages.push(
            `Run ${run.runId} ${run.status}: the log checkpoint stays at ${from}, and the next follow reads these entries again` +
              (run.errorCode === 'mass_delete_guard'
                ? ' (deletions that no log entry or expiry explains stop the follower until a full pass, npm run sync, measures them, or until confirmed: npm run sync -- --from-logs --allow-mass-delete).'
                : '.'),
          );
          return result;
        }
      }
      // A user whose listing or write failed keeps its rows and its removed_at; the next follow
      // tries it again, even in another process.
      if (runId !== undefined) result.usersToRetry += await updateLogFollowRetries(db, runId, tracked);
      result.usersRetried += retries.length;
      retries = [];
      await advanceLogCheckpoint(db, {
        logId: next,
        lastEntryDate: newestDate(entries),
        now: now(),
        read: entries.length,
        skipped,
        usersChanged: changes.userIds.length,
        runId,
      });
      result.entriesRead += entries.length;
      result.usersChanged += changes.userIds.length;
      for (const [reason, n] of Object.entries(changes.skipped)) result.skipped[reason as SkipReason] += n;
      from = next;
      if (entries.length === 0 || pages < PAGES_PER_BATCH) break;
    }
    const skippedTotal = Object.values(result.skipped).reduce((a, b) => a + b, 0);
    result.messages.push(
      `Read ${result.entriesRead} log entries up to ${from}: synced ${result.usersChanged} users in ${result.runs.length} run(s)` +
        (result.usersHandedOff > 0 ? ` (${result.usersHandedOff} of them through the pass in progress)` : '') +
        (result.usersRetried > 0 ? `, ${result.usersRetried} of them retried after an earlier follow could not sync them` : '') +
        (result.usersToRetry > 0 ? `, ${result.usersToRetry} failed again and are kept for the next follow` : '') +
        `, skipped ${skippedTotal} entries` +
        ` (${Object.entries(result.skipped)
          .map(([reason, n]) => `${n} ${reason.replace('_', ' ')}`)
          .join(', ')}).`,
    );
    return result;
  } catch (error) {
    if (!(error instanceof LogsError)) throw error;
    if (error.code === 'logs_forbidden') {
      result.outcome = 'off';
      result.messages.push(`${error.message} The log follower is off; full passes (npm run sync) go on.`);
      return result;
    }
    const stored = await readLogCheckpoint(db);
    logger.warn('log checkpoint expired', { logId: stored?.log_id, error: error.message });
    await startAtNewest(true, stored && { logId: stored.log_id, lastEntryDate: stored.last_entry_date });
    result.outcome = 'restarted';
    return result;
  } finally {
    result.logRequests = client.requests;
    client.close();
  }
}

function dateOf(entry: Auth0LogEntry | undefined): Date | undefined {
  if (typeof entry?.date !== 'string') return undefined;
  const date = new Date(entry.date);
  return Number.isNaN(date.getTime()) ? undefined : date;
}

/** The newest `date` of the entries (their order is by log_id; dates are not guaranteed to follow). */
function newestDate(entries: Auth0LogEntry[]): Date | undefined {
  let newest: Date | undefined;
  for (const entry of entries) {
    const date = dateOf(entry);
    if (date && (!newest || date > newest)) newest = date;
  }
  return newest;
}
