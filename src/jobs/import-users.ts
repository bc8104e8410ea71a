import { MassDeleteError } from '../pipeline/delete-guard.js';
import type { Kysely } from 'kysely';
import { createAuth0Client, type Auth0Client, type Auth0ClientOptions } from '../auth0/client.js';
import { logIdOf } from '../auth0/log-id.js';
import { fetchNewestLog, LogsError } from '../auth0/logs.js';
import { describeBadLine, type BadLine } from '../auth0/users-export-lines.js';
import { readExport, startExport, UsersExportError, waitForExport, type Auth0ExportJob } from '../auth0/users-export.js';
import { systemClock, type Clock } from '../core/clock.js';
import type { Config } from '../core/config.js';
import type { Database } from '../warehouse/schema.js';
import { FatalError, SyncError, toError } from '../core/errors.js';
import { parseIsoDate } from '../core/iso-date.js';
import type { Logger } from '../core/log.js';
import { toSafeText } from '../core/upstream-text.js';
import { assertMigrated } from '../warehouse/migrate.js';
import { readLogCheckpoint } from '../warehouse/log-checkpoint.js';
import {
  mayStartFollowing,
  readDatabaseTime,
  withUsersStaging,
  type FollowStart,
  type ImportScope,
  type UsersImportCounts,
} from '../warehouse/users-import.js';

/** Scopes the export needs up front; `GET /api/v2/jobs/{id}` may also want create:users (a 403 names it). */
const IMPORT_SCOPES = ['read:users'];

export interface ImportUsersOptions {
  config: Config;
  db: Kysely<Database>;
  logger: Logger;
  /** Export only this connection (`con_…`); removals then apply to its users only. */
  connectionId?: string;
  /** Print what would change; write nothing. */
  dryRun?: boolean;
  /** Confirmed by the operator: no deletion guard for this import. */
  allowMassDelete?: boolean;
  /** Give up on a job that has not completed after this long (`--timeout`, default 30 min). */
  timeoutMs?: number;
  clock?: Clock;
  auth0?: Auth0ClientOptions;
  /** First wait between job polls, in milliseconds. */
  firstPollMs?: number;
  /** Users per staged batch. */
  batchSize?: number;
  signal?: AbortSignal;
}

/** Bad lines named in the result and in messages; the rest are counted. */
const BAD_LINES_NAMED = 10;

export interface ImportUsersResult {
  counts: UsersImportCounts;
  /** Lines skipped (too long, not JSON, no user_id, a user ID checkUserId refuses), and the first few. */
  badLines: { count: number; first: BadLine[] };
  /** Whether removals were withheld because a skipped line may have held any user. */
  removalsWithheld: boolean;
  /** The log follower's first checkpoint, when this import stored it (the tenant's newest entry before the export). */
  followStartedAt?: string;
  dryRun: boolean;
  /** For a dry run: up to ten user IDs that would be added and removed. */
  sampleAdded?: string[];
  sampleRemoved?: string[];
  /** The connection removals were limited to, if any. */
  connection?: string;
  seconds: number;
  peakRssMb: number;
}

/**
 * `npm run import-users`: export the tenant's users (or one connection's), stream the file into
 * a staging table, and only once the whole file has been read apply it to auth0.users in one
 * transaction: additions, profile updates, returns (removed_at cleared) and removals (removed_at
 * set on held users the complete export no longer holds, but never on one inserted or created
 * after the job was requested). A failed job, a timeout, an expired link that stays expired, a
 * truncated file, a cap reached or a database error change nothing. Bad lines are skipped and
 * counted (issue #24): one that cannot be read withholds every removal, a refused user ID only
 * its own; more than IMPORT_MAX_BAD_LINES refuse the file. The deletion guard
 * (SYNC_MAX_DELETE_RATIO) bounds the share of held users one import may mark removed. When the
 * log follower has no checkpoint, the tenant's newest entry from before the export becomes it.
 */
export async function importUsers(options: ImportUsersOptions): Promise<ImportUsersResult> {
  const { config, db, logger } = options;
  const clock = options.clock ?? systemClock;
  const started = clock.now();
  await assertMigrated(db);
  const client = createAuth0Client(config.auth0, { clock, requiredScopes: IMPORT_SCOPES, maxSockets: 2, ...options.auth0 });
  try {
    // Both noted before the job is requested: what the export cannot hold starts after them.
    const followFrom = await noteFollowStart(db, config.tenant, client, logger, options.signal);
    const exportRequestedAt = await readDatabaseTime(db);
    const job = await startExport(client, { connectionId: options.connectionId, signal: options.signal });
    logger.info('users export started', { jobId: job.id, connectionId: options.connectionId });
    const completed = await waitForExport(client, job, {
      clock,
      timeoutMs: options.timeoutMs ?? 30 * 60_000,
      firstPollMs: options.firstPollMs,
      signal: options.signal,
      onProgress: (current) =>
        logger.info('users export', {
          jobId: current.id,
          status: current.status,
          percentDone: current.percentage_done,
          timeLeftSeconds: current.time_left_seconds,
        }),
    });

    return await withUsersStaging(db, config.tenant, async (staging) => {
      let staged = 0;
      let connections = new Set<string | null>();
      let badLines = { count: 0, first: [] as BadLine[], unreadable: false };
      let refused: string[] = [];
      const maxBadLines = config.import.maxBadLines;
      const exported = await readExport(
        client,
        completed,
        {
          onAttempt: async () => {
            staged = 0;
            connections = new Set();
            badLines = { count: 0, first: [], unreadable: false };
            refused = [];
            await staging.clear();
          },
          onBatch: async (users, lastLine) => {
            try {
              await staging.refuse(refused.splice(0));
              await staging.add(users);
            } catch (error) {
              throw toWriteError(error, `Staging the users export up to line ${lastLine} failed`, options.signal);
            }
            staged += users.length;
            if (options.connectionId) for (const user of users) connections.add(user.connection);
            logger.debug('users export read', { users: staged, line: lastLine });
          },
        },
        {
          signal: options.signal,
          batchSize: options.batchSize,
          maxInflateRatio: config.import.maxInflateRatio,
          maxLines: config.import.maxLines,
          onBadLine: (bad) => {
            badLines.count += 1;
            if (badLines.first.length < BAD_LINES_NAMED) badLines.first.push(bad);
            if (badLines.count > maxBadLines) throw tooManyBadLines(badLines, maxBadLines);
            if (bad.reason === 'bad_user_id') refused.push(bad.userId!);
            else badLines.unreadable = true;
          },
          onRetry: (error) => logger.warn('users export download refused; asking the job for a fresh link', { code: error.code, error: error.message }),
        },
      );
      await staging.refuse(refused.splice(0));
      logger.info('users export read', { users: exported, badLines: badLines.count });
      if (badLines.count > 0) {
        logger.warn('users export lines skipped', { count: badLines.count, first: badLines.first.map(describeBadLine) });
      }
      const scope: ImportScope = {
        ...scopeOf(options.connectionId, completed, connections),
        exportRequestedAt,
        withholdRemovals: badLines.unreadable,
      };
      const finish = (counts: UsersImportCounts, extra: Partial<ImportUsersResult> = {}): ImportUsersResult => ({
        counts,
        badLines: { count: badLines.count, first: badLines.first },
        removalsWithheld: badLines.unreadable,
        dryRun: options.dryRun ?? false,
        connection: scope.connection,
        seconds: Math.round((clock.now() - started) / 100) / 10,
        peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024),
        ...extra,
      });
      if (options.dryRun) {
        const preview = await staging.preview(scope);
        return finish(preview.counts, { sampleAdded: preview.added, sampleRemoved: preview.removed });
      }
      const applied = await staging
        .apply(scope, (counts) => checkRemovalGuard(config, options, counts, scope), followFrom)
        .catch((error: unknown) => {
          throw toWriteError(error, 'Applying the users export to auth0.users failed', options.signal);
        });
      const followStartedAt = applied.followStarted ? followFrom?.logId : undefined;
      if (followStartedAt) logger.info('log follower starts where the export began', { logId: followStartedAt });
      const result = finish(applied.counts, { followStartedAt });
      logger.info('users import finished', {
        ...applied.counts,
        badLines: badLines.count,
        connection: scope.connection,
        seconds: result.seconds,
        peakRssMb: result.peakRssMb,
      });
      return result;
    });
  } finally {
    client.close();
  }
}

/**
 * The tenant's newest log entry, when the log follower has no checkpoint yet: the import stores
 * it as the first checkpoint (issue #24), so the first follow reads from where the export began
 * rather than from its own start. A client without read:logs skips this with one log line; so
 * does any other failure to read the logs, and a database role that may not write the checkpoint
 * (the import does not depend on them).
 */
async function noteFollowStart(
  db: Kysely<Database>,
  tenant: string,
  client: Auth0Client,
  logger: Logger,
  signal?: AbortSignal,
): Promise<FollowStart | undefined> {
  if (!(await mayStartFollowing(db))) {
    logger.info('the database role may not write auth0.log_checkpoint: the log follower will start at its own first run, not where this export began');
    return undefined;
  }
  if (await readLogCheckpoint(db, tenant)) return undefined;
  try {
    const newest = await fetchNewestLog(client, signal);
    // Checked like every log id before it is stored (logIdOf): a hostile one is never a checkpoint.
    const logId = logIdOf(newest);
    if (logId === undefined) return undefined;
    const ms = typeof newest?.date === 'string' ? parseIsoDate(newest.date) : undefined;
    return { logId, date: ms === undefined ? undefined : new Date(ms) };
  } catch (error) {
    if (signal?.aborted) throw error;
    if (error instanceof LogsError && error.code === 'logs_forbidden') {
      logger.info('the client lacks read:logs: the log follower will start at its own first run, not where this export began');
    } else {
      logger.warn('could not read the tenant logs; the log follower will start at its own first run', {
        error: toSafeText(toError(error).message, 300),
      });
    }
    return undefined;
  }
}

/** A database error while staging or applying, as one sentence with the database's own message. */
function toWriteError(error: unknown, what: string, signal: AbortSignal | undefined): unknown {
  if (signal?.aborted || error instanceof SyncError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new FatalError('import_write_failed', `${what}: the database answered "${toSafeText(message, 300)}"; nothing was imported.`, { cause: error });
}

function tooManyBadLines(badLines: { count: number; first: BadLine[] }, max: number): UsersExportError {
  const named = badLines.first.slice(0, 3).map(describeBadLine).join('; ');
  const first = max === 0 ? describeBadLine(badLines.first[0]!) : `more than ${max} lines of it cannot be taken (${named}${badLines.count > 3 ? '; …' : ''})`;
  return new UsersExportError(
    'export_unreadable',
    `The users export file is refused: ${first}; nothing was imported.${max === 0 ? '' : ' Raise IMPORT_MAX_BAD_LINES to import the rest regardless.'}`,
  );
}

/**
 * Removals only speak for the users a complete export covers. With --connection that is the
 * connection's users: the job answer names the connection; failing that, the one connection
 * its users carry. An export of one connection whose name cannot be told removes nobody.
 */
function scopeOf(connectionId: string | undefined, job: Auth0ExportJob, seen: ReadonlySet<string | null>): ImportScope {
  if (!connectionId) return {};
  if (job.connection) return { connection: job.connection };
  const names = [...seen].filter((name): name is string => name !== null);
  if (names.length === 1) return { connection: names[0] };
  throw new FatalError(
    'export_connection_unknown',
    `The users export of connection ${connectionId} does not say which connection its users belong to, so no removal can be scoped to it; nothing was imported. Run the import without --connection.`,
  );
}

/**
 * The deletion guard for removals: more than SYNC_MAX_DELETE_RATIO of the users held (in
 * scope) marked removed stops the import before it writes, unless confirmed. Measured once
 * SYNC_DELETE_GUARD_MIN users are held, and always when the export is empty (the wrong tenant
 * or connection).
 */
function checkRemovalGuard(config: Config, options: ImportUsersOptions, counts: UsersImportCounts, scope: ImportScope): void {
  if (options.allowMassDelete || counts.removed === 0) return;
  const ratio = config.sync.maxDeleteRatio;
  if (counts.removed <= ratio * counts.held) return;
  if (counts.held < config.sync.deleteGuardMinUsers && counts.exported > 0) return;
  const percent = Math.round((100 * counts.removed) / Math.max(1, counts.held));
  const of = scope.connection ? ` of connection ${toSafeText(scope.connection, 200)}` : '';
  throw new MassDeleteError(
    `Stopped before writing: this import would mark removed ${counts.removed} of the ${counts.held} users held${of} (${percent}%), ` +
      `more than SYNC_MAX_DELETE_RATIO=${ratio} allows; nothing was changed. Check that AUTH0_DOMAIN points at the right tenant; ` +
      `if those users really are gone, rerun with --allow-mass-delete (or SYNC_MAX_DELETE_RATIO=1).`,
  );
}
