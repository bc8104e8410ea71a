import type { Kysely } from 'kysely';
import { createAuth0Client, type Auth0ClientOptions } from '../auth0/client.js';
import { compareLogIds, describeLogId, logIdOf } from '../auth0/log-id.js';
import { isPastRetention, mayHaveOutlivedRetention, toGapStart } from '../auth0/log-retention.js';
import {
  fetchNewestLog,
  fetchOldestLog,
  LogsError,
  nextLogBatch,
  noLogsIgnored,
  readLogs,
  type Auth0LogEntry,
  type LogIgnoreReason,
  type LogReadEnd,
} from '../auth0/logs.js';
import { toChangedUsers, toLookupKeys, type SkipReason } from '../pipeline/log-events.js';
import type { Config } from '../core/config.js';
import type { Database } from '../warehouse/schema.js';
import type { Logger } from '../core/log.js';
import { assertMigrated } from '../warehouse/migrate.js';
import {
  addSignedUpUsers,
  advanceLogCheckpoint,
  markHistoryLost,
  readLogCheckpoint,
  readLogLookups,
  recordNewestLog,
  restartLogCheckpoint,
  type HistoryLostReason,
  type LogCheckpointRow,
} from '../warehouse/log-checkpoint.js';
import { readLogFollowRetries, updateLogFollowRetries, type LogFollowRetry } from '../warehouse/log-follow-retries.js';
import { runSyncJob, type SyncJobResult } from './sync.js';
import { plural } from '../core/wording.js';
import { createLogEvidence, toEvidenceInput } from '../pipeline/log-evidence.js';
import { toLogExplanations } from '../pipeline/deletion-reason.js';
import type { PriorityLane } from '../pipeline/priority-lane.js';

/** Pages (of 100 entries) read before the users they name are synced and the checkpoint moves. */
const PAGES_PER_BATCH = 100;
/** Default bound on the pages one follow reads (100,000 entries): the next follow reads on. */
export const MAX_PAGES_PER_FOLLOW = 1000;
/** Default bound on one follow's time, reading and syncing, after which it requests no more pages. */
export const MAX_FOLLOW_MS = 5 * 60_000;

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
  /** Pages one follow reads at most; default MAX_PAGES_PER_FOLLOW. The checkpoint keeps what was applied. */
  maxPages?: number;
  /** Milliseconds after which a follow requests no more pages; default MAX_FOLLOW_MS. */
  maxDurationMs?: number;
  /**
   * The worker's pass in progress, if any: the users the entries name are handed to it instead of
   * starting a run of their own (which the pass's run lock would refuse).
   */
  lane?: PriorityLane;
}

export interface FollowLogsResult {
  /**
   * `started`: no checkpoint was stored; one was recorded at the newest entry.
   * `restarted`: history was lost before anything could be read (the stored checkpoint refused,
   *   or nothing answered past it while the tenant logged more); following resumes at the newest entry.
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
  /** Entries the reader dropped before the pipeline: a bad log_id, at or before the checkpoint, a duplicate. */
  ignored: Record<LogIgnoreReason, number>;
  /** Pages of entries requested in checkpoint mode. */
  pagesRead: number;
  /** Why reading stopped, when it began: caught up, a `next` that would not advance, or a bound. */
  readEnd?: LogReadEnd;
  /**
   * Set when this follow found history lost (log_checkpoint.history_lost_at and _reason): every
   * user is due for a full pass, which the caller may start at once.
   */
  historyLost?: { at: Date; reason: HistoryLostReason };
}

/**
 * Follow the tenant logs from the stored checkpoint (issue #10): read every page up to the
 * first empty one, turn the entries into the users whose tokens may have changed, sync exactly
 * those in a run with trigger `logs`, and only then advance the checkpoint. A crash or a run
 * that fails replays the entries next time; none is skipped. A `partial` run advances it: its
 * failed users keep their rows and are kept in auth0.log_follow_retries, which the next follow
 * tries first.
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
    ignored: noLogsIgnored(),
    pagesRead: 0,
  };
  const clockNow = () => options.auth0?.clock?.now() ?? Date.now();
  const now = () => new Date(clockNow());

  /**
   * Record the newest entry as the checkpoint: none stored, or history lost (`lost`) before
   * anything could be read. `newest` when already fetched.
   */
  async function startAtNewest(lost?: { reason: HistoryLostReason; previous: LogCheckpointRow | undefined; newest?: Auth0LogEntry }): Promise<void> {
    const newest = lost?.newest ?? (await fetchNewestLog(client, options.stopSignal));
    const logId = logIdOf(newest);
    const at = now();
    const date = dateOf(newest);
    const resume = logId ? `, and following resumes from the newest entry ${describeLogId(logId)}.` : ', and following resumes once the tenant logs again.';
    if (lost) {
      result.historyLost = { at, reason: lost.reason };
      result.messages.push(
        `${historyLostSentence(lost.reason, lost.previous, newest)}, so changes since then may be missed: every user is due for a full pass (npm run sync)${resume}`,
      );
      logger.warn('log history lost', { reason: lost.reason, checkpoint: lost.previous?.log_id, newest: logId });
    }
    if (!logId) {
      if (lost && lost.previous) await markHistoryLost(db, config.tenant, { reason: lost.reason, now: at });
      else result.messages.push('The tenant logs hold no entry yet: nothing to follow; earlier history is covered by full passes (npm run sync).');
      return;
    }
    await restartLogCheckpoint(db, config.tenant, { logId, lastEntryDate: date, now: at, lost: lost?.reason });
    if (!lost) {
      result.messages.push(
        `No log checkpoint yet: following starts at the newest entry ${describeLogId(logId)}${date ? ` (${date.toISOString()})` : ''}; earlier history is covered by full passes (npm run sync).`,
      );
    }
  }

  /**
   * Issue #18: a `from` past retention may be answered from the oldest entry still held, which
   * looks like an ordinary page. Ask for the oldest entry (one request) when dates hint at it.
   */
  async function checkRetention(checkpoint: LogCheckpointRow, entries: Auth0LogEntry[]): Promise<void> {
    const gapStart = toGapStart({
      logId: checkpoint.log_id,
      lastEntryDate: checkpoint.last_entry_date,
      newestLogId: checkpoint.newest_log_id,
      lookedAt: checkpoint.updated_at,
    });
    const first = oldestDate(entries);
    if (!gapStart || !mayHaveOutlivedRetention(gapStart, first, now())) return;
    const oldest = await fetchOldestLog(client, options.stopSignal);
    if (!isPastRetention(gapStart, dateOf(oldest))) return;
    const at = now();
    await markHistoryLost(db, config.tenant, { reason: 'retention_gap', now: at });
    result.historyLost = { at, reason: 'retention_gap' };
    result.messages.push(
      `The log entries after the checkpoint ${describeLogId(checkpoint.log_id)} start at ${first!.toISOString()}, and the oldest entry the tenant still holds is dated ${dateOf(oldest)!.toISOString()}, after ${gapStart.toISOString()} where the unread entries began: the plan's log retention (1 to 30 days) dropped entries never read, so changes may be missed: every user is due for a full pass (npm run sync); the entries still held are applied.`,
    );
    logger.warn('log history lost', {
      reason: 'retention_gap',
      checkpoint: checkpoint.log_id,
      gapStart: gapStart.toISOString(),
      oldest: dateOf(oldest)?.toISOString(),
    });
  }

  /**
   * Store what this follow learned of the tenant's newest entry, so status shows the lag: caught
   * up costs nothing more; after a bound or a stuck `next`, one request asks.
   */
  async function recordNewest(checkpoint: string, end: LogReadEnd | undefined, known: Auth0LogEntry | undefined): Promise<void> {
    const caughtUp = end === 'caught_up' || end === undefined;
    const newest = caughtUp ? known : await fetchNewestLog(client, options.stopSignal);
    const logId = logIdOf(newest);
    if (!caughtUp && logId !== undefined && compareLogIds(logId, checkpoint) > 0) {
      await recordNewestLog(db, config.tenant, { caughtUp: false, logId, date: dateOf(newest), now: now() });
    } else {
      await recordNewestLog(db, config.tenant, { caughtUp: true, date: dateOf(newest), now: now() });
    }
  }

  try {
    const checkpoint = await readLogCheckpoint(db, config.tenant);
    if (!checkpoint) {
      await startAtNewest();
      result.outcome = 'started';
      return result;
    }
    let from = checkpoint.log_id;
    const readOptions = {
      take: options.take,
      maxPages: options.maxPages ?? MAX_PAGES_PER_FOLLOW,
      deadline: clockNow() + (options.maxDurationMs ?? MAX_FOLLOW_MS),
      now: clockNow,
      signal: options.stopSignal,
    };
    let pages = readLogs(client, from, readOptions);
    let batch = await nextLogBatch(pages, from, PAGES_PER_BATCH);
    /** The tenant's newest entry, when this follow asked for it. */
    let newest: Auth0LogEntry | undefined;
    if (batch.entries.length === 0 && batch.end === 'caught_up') {
      newest = await fetchNewestLog(client, options.stopSignal);
      if (isPast(newest, from)) {
        // Nothing after the checkpoint, yet the tenant logged past it: either the entry came in
        // between the two requests, or a `from` past retention is answered `[]`. One more read tells.
        result.pagesRead += batch.pages;
        pages = readLogs(client, from, readOptions);
        batch = await nextLogBatch(pages, from, PAGES_PER_BATCH);
        if (batch.entries.length === 0 && batch.end === 'caught_up') {
          await startAtNewest({ reason: 'empty_past_checkpoint', previous: checkpoint, newest });
          result.outcome = 'restarted';
          return result;
        }
        newest = undefined;
      }
    }
    if (batch.entries.length > 0) await checkRetention(checkpoint, batch.entries);
    // Users earlier follows could not sync go with the first batch, whatever it reads.
    let retries = await readLogFollowRetries(db, config.tenant);
    for (;;) {
      const { entries, next } = batch;
      result.pagesRead += batch.pages;
      for (const reason of Object.keys(batch.ignored) as LogIgnoreReason[]) result.ignored[reason] += batch.ignored[reason];
      if (entries.length === 0 && retries.length === 0) {
        // Only dropped entries (bad ids, duplicates): move past them so no follow reads them again.
        if (compareLogIds(next, from) > 0) {
          await advanceLogCheckpoint(db, config.tenant, { logId: next, lastEntryDate: undefined, now: now(), read: 0, skipped: 0, usersChanged: 0 });
          from = next;
        }
        if (batch.end) break;
        batch = await nextLogBatch(pages, from, PAGES_PER_BATCH);
        continue;
      }
      const changes = toChangedUsers(entries, await readLogLookups(db, config.tenant, toLookupKeys(entries)));
      const skipped = Object.values(changes.skipped).reduce((a, b) => a + b, 0);
      if (entries.length > 0) {
        logger.info('log entries read', { from, to: next, entries: entries.length, users: changes.userIds.length, skipped: changes.skipped });
      }
      await addSignedUpUsers(db, config.tenant, config.source, changes.signedUp);
      // What the logs said, the retries' older word first: the later entry wins.
      const evidence = createLogEvidence({
        explanations: retries.flatMap((r) => toLogExplanations(r.userId, r.explanations)),
        deleted: retries.filter((r) => r.deleted).map((r) => r.userId),
      });
      evidence.add(changes);
      const userIds = [...new Set([...retries.map((r) => r.userId), ...changes.userIds])];
      const tracked: LogFollowRetry[] = userIds.map((userId) => ({
        userId,
        deleted: evidence.deleted.has(userId),
        explanations: evidence.explanations.get(userId) ?? [],
      }));
      let runId: number | undefined;
      const handedOff = userIds.length > 0 ? options.lane?.hand(userIds, toEvidenceInput(evidence)) : undefined;
      if (handedOff) {
        // The worker's pass holds the run lock: it syncs these users next, in its own run.
        const handOff = await handedOff;
        runId = handOff.runId;
        if (!handOff.complete) {
          result.outcome = 'stopped';
          result.messages.push(
            `The pass in progress (run ${handOff.runId}) ended before it had synced the ${plural(userIds.length, 'user')} handed to it: the log checkpoint stays at ${describeLogId(from)}, and the next follow reads these entries again.`,
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
            `Run ${run.runId} ${run.status}: the log checkpoint stays at ${describeLogId(from)}, and the next follow reads these entries again` +
              (run.errorCode === 'mass_delete_guard'
                ? ' (deletions that no log entry or expiry explains stop the follower until a full pass, npm run sync, measures them, or until confirmed: npm run sync -- --from-logs --allow-mass-delete).'
                : '.'),
          );
          return result;
        }
      }
      // A user whose listing or write failed keeps its rows and its removed_at; the next follow
      // tries it again, even in another process.
      if (runId !== undefined) result.usersToRetry += await updateLogFollowRetries(db, config.tenant, runId, tracked);
      result.usersRetried += retries.length;
      retries = [];
      await advanceLogCheckpoint(db, config.tenant, {
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
      if (batch.end) break;
      batch = await nextLogBatch(pages, from, PAGES_PER_BATCH);
    }
    result.readEnd = batch.end;
    await recordNewest(from, batch.end, newest);
    const skippedTotal = Object.values(result.skipped).reduce((a, b) => a + b, 0);
    result.messages.push(
      `Read ${result.entriesRead} log entries up to ${describeLogId(from)}: synced ${plural(result.usersChanged, 'user')} in ${plural(result.runs.length, 'run')}` +
        (result.usersHandedOff > 0 ? ` (${result.usersHandedOff} of them through the pass in progress)` : '') +
        (result.usersRetried > 0 ? `, ${result.usersRetried} of them retried after an earlier follow could not sync them` : '') +
        (result.usersToRetry > 0 ? `, ${result.usersToRetry} failed again and are kept for the next follow` : '') +
        `, skipped ${skippedTotal} entries` +
        ` (${Object.entries(result.skipped)
          .map(([reason, n]) => `${n} ${reason.replace('_', ' ')}`)
          .join(', ')}).`,
    );
    const ignored = result.ignored.bad_log_id + result.ignored.before_checkpoint + result.ignored.duplicate;
    if (result.ignored.bad_log_id > 0) logger.warn('log entries with a bad log_id dropped', { entries: result.ignored.bad_log_id, checkpoint: from });
    if (ignored > 0) {
      result.messages.push(
        `Ignored ${ignored} answered entries: ${result.ignored.bad_log_id} with a bad log_id, ${result.ignored.before_checkpoint} at or before the checkpoint, ${result.ignored.duplicate} duplicates.`,
      );
    }
    const stop = stopSentence(batch.end, result.pagesRead, readOptions, describeLogId(from));
    if (stop) {
      result.messages.push(stop);
      logger.warn('log reading stopped early', { end: batch.end, pages: result.pagesRead, checkpoint: from });
    }
    return result;
  } catch (error) {
    if (!(error instanceof LogsError)) throw error;
    if (error.code === 'logs_forbidden') {
      result.outcome = 'off';
      result.messages.push(`${error.message} The log follower is off; full passes (npm run sync) go on.`);
      return result;
    }
    const stored = await readLogCheckpoint(db, config.tenant);
    logger.warn('log checkpoint expired', { logId: stored?.log_id, error: error.message });
    await startAtNewest({ reason: 'checkpoint_refused', previous: stored });
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

/** The earliest `date` of the entries. */
function oldestDate(entries: Auth0LogEntry[]): Date | undefined {
  let oldest: Date | undefined;
  for (const entry of entries) {
    const date = dateOf(entry);
    if (date && (!oldest || date < oldest)) oldest = date;
  }
  return oldest;
}

/** Whether `entry` has a good log id past `checkpoint`. */
function isPast(entry: Auth0LogEntry | undefined, checkpoint: string): boolean {
  const id = logIdOf(entry);
  return id !== undefined && compareLogIds(id, checkpoint) > 0;
}

/** How history was found lost, as the start of a sentence. */
function historyLostSentence(reason: HistoryLostReason, previous: LogCheckpointRow | undefined, newest: Auth0LogEntry | undefined): string {
  const checkpoint = previous
    ? `The log checkpoint ${describeLogId(previous.log_id)}${previous.last_entry_date ? ` (${previous.last_entry_date.toISOString()})` : ''}`
    : 'The log checkpoint';
  if (reason === 'empty_past_checkpoint') {
    const id = logIdOf(newest);
    return `${checkpoint} is answered with no entry after it, twice, while the tenant's newest entry${id ? ` ${describeLogId(id)}` : ''} lies past it (older than the plan's log retention, 1 to 30 days)`;
  }
  return `${checkpoint} is no longer accepted (older than the plan's log retention, 1 to 30 days)`;
}

/** Why reading stopped before it caught up, for people; undefined when it caught up. */
function stopSentence(end: LogReadEnd | undefined, pages: number, bounds: { maxPages: number; deadline: number }, checkpoint: string): string | undefined {
  const onward = `the checkpoint is at ${checkpoint}, and the next follow reads on from there.`;
  switch (end) {
    case 'stuck':
      return `The logs endpoint answered no next page past ${checkpoint}: reading stopped there rather than loop; ${onward}`;
    case 'page_limit':
      return `Stopped reading after ${pages} pages, the bound for one follow (${bounds.maxPages}): ${onward}`;
    case 'time_limit':
      return `Stopped reading after ${pages} pages: the follow reached its time bound; ${onward}`;
    default:
      return undefined;
  }
}
