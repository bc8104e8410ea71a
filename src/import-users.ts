import { MassDeleteError } from './sync/delete-guard.js';
import type { Kysely } from 'kysely';
import { createAuth0Client, type Auth0ClientOptions } from './auth0/client.js';
import { readExport, startExport, waitForExport, type Auth0ExportJob } from './auth0/users-export.js';
import { systemClock, type Clock } from './clock.js';
import type { Config } from './config.js';
import type { Database } from './database.js';
import { FatalError } from './errors.js';
import type { Logger } from './log.js';
import { toSafeText } from './upstream-text.js';
import { assertMigrated } from './migrate.js';
import { withUsersStaging, type ImportScope, type UsersImportCounts } from './warehouse/users-import.js';

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

export interface ImportUsersResult {
  counts: UsersImportCounts;
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
 * set on held users the complete export no longer holds). A failed job, a timeout, an expired
 * link that stays expired or a truncated file change nothing. The deletion guard
 * (SYNC_MAX_DELETE_RATIO) bounds the share of held users one import may mark removed.
 */
export async function importUsers(options: ImportUsersOptions): Promise<ImportUsersResult> {
  const { config, db, logger } = options;
  const clock = options.clock ?? systemClock;
  const started = clock.now();
  await assertMigrated(db);
  const client = createAuth0Client(config.auth0, { clock, requiredScopes: IMPORT_SCOPES, maxSockets: 2, ...options.auth0 });
  try {
    const job = await startExport(client, { connectionId: options.connectionId, signal: options.signal });
    logger.info('users export started', { jobId: job.id, connectionId: options.connectionId });
    const completed = await waitForExport(client, job, {
      clock,
      timeoutMs: options.timeoutMs ?? 30 * 60_000,
      firstPollMs: options.firstPollMs,
      signal: options.signal,
      onProgress: (current) =>
        logger.info('users export', { jobId: current.id, status: current.status, percentDone: current.percentage_done, timeLeftSeconds: current.time_left_seconds }),
    });

    return await withUsersStaging(db, async (staging) => {
      let staged = 0;
      let connections = new Set<string | null>();
      const exported = await readExport(
        client,
        completed,
        {
          onAttempt: async () => {
            staged = 0;
            connections = new Set();
            await staging.clear();
          },
          onBatch: async (users) => {
            await staging.add(users);
            staged += users.length;
            if (options.connectionId) for (const user of users) connections.add(user.connection);
            logger.debug('users export read', { users: staged });
          },
        },
        {
          signal: options.signal,
          batchSize: options.batchSize,
          onRetry: (error) => logger.warn('users export download refused; asking the job for a fresh link', { code: error.code, error: error.message }),
        },
      );
      logger.info('users export read', { users: exported });
      const scope = scopeOf(options.connectionId, completed, connections);
      const finish = (counts: UsersImportCounts, extra: Partial<ImportUsersResult> = {}): ImportUsersResult => ({
        counts,
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
      const counts = await staging.apply(scope, (counts) => checkRemovalGuard(config, options, counts, scope));
      const result = finish(counts);
      logger.info('users import finished', { ...counts, connection: scope.connection, seconds: result.seconds, peakRssMb: result.peakRssMb });
      return result;
    });
  } finally {
    client.close();
  }
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
