/**
 * What each command does, once its flags are parsed (src/cli/main.ts parses them and imports
 * this module only then, so `--help` and `--version` load none of the database, job or worker
 * code). A command imports what only it uses when it runs (the worker and its metrics client, the
 * progress bar, the import, the follow, the SQL server of `db`): a sync never holds them in
 * memory. Every function returns the command's exit code.
 */
import { describeImport, toImportRequest, type ImportUsersFlags } from './import-users-args.js';
import { describeDryRun, describeRun } from './describe-run.js';
import { toSyncRequest, type SyncFlags } from './sync-args.js';
import { loadConfig, loadDatabaseConfig, type Config, type Env } from '../core/config.js';
import type { OpenDatabase } from '../warehouse/connection.js';
import { ConfigError } from '../core/errors.js';
import { createCommandLogger, type Logger } from '../core/log.js';
import { assertMigrated, listMigrations, migrateToLatest } from '../warehouse/migrate.js';
import { readTenants } from '../warehouse/tenants.js';
import { RunLockedError } from '../warehouse/run-lock.js';
import { installJobQueueSchema, JOB_QUEUE_SCHEMA } from '../warehouse/job-queue-schema.js';
import { formatStatus, toStatusJson } from '../status/format-status.js';
import { readStatus, statusExitCode } from '../status/read-status.js';
import { runSyncJob, type SyncJobResult } from '../jobs/sync.js';
import type { Io } from '../core/io.js';
import { plural } from '../core/wording.js';
import { describeFatal, EXIT } from './exit.js';
import { withDatabase, withDefaults, type Deps } from './with-database.js';

export type { Deps } from './with-database.js';

/** Each command as main dispatches it: its parsed flags in, its exit code out. */
export const commands = {
  migrate: ({ list }: { list?: boolean }, env: Env, io: Io, deps: Partial<Deps>) => {
    const config = loadDatabaseConfig(env);
    return withDatabase(config, 'migrate', io, withDefaults(deps), { existing: list === true, env }, ({ db, ownsDatabase }) =>
      list ? listMigrationsCommand(db, io) : migrate(db, io, { tenant: config.tenant, ownsDatabase }),
    );
  },
  sync: (flags: SyncFlags, env: Env, io: Io, deps: Partial<Deps>) => sync(flags, env, io, withDefaults(deps)),
  importUsers: (flags: ImportUsersFlags, env: Env, io: Io, deps: Partial<Deps>) => importUsersCommand(flags, env, io, withDefaults(deps)),
  worker: (env: Env, io: Io, deps: Partial<Deps>) => worker(env, io, withDefaults(deps)),
  status: (json: boolean, env: Env, io: Io, deps: Partial<Deps>) => status(env, io, withDefaults(deps), json),
  db: (flags: { port?: string }, env: Env, io: Io) =>
    untilStopped(
      () => {},
      undefined,
      async (stopSignal) => (await import('../warehouse/embedded/serve-sql.js')).dbCommand(flags, env, io, stopSignal),
    ),
};

/**
 * `status` exits 1 and 2 for the last run only; a status that cannot be read at all (bad
 * configuration, database unreachable or refusing, not migrated) exits 5, so alerting can tell
 * "the sync is failing" from "cannot look".
 */
async function status(env: Env, io: Io, deps: Deps, json: boolean): Promise<number> {
  try {
    const config = loadDatabaseConfig(env);
    return await withDatabase(config, 'status', io, deps, { existing: true, env }, async ({ db }) => {
      await assertMigrated(db); // before migrate the tables are missing: say what to run, not a raw SQL error
      const report = await readStatus(db, { tenant: await statusTenant(db, config.tenant), source: config.source });
      if (json) io.stdout(JSON.stringify(toStatusJson(report), null, 2));
      else for (const line of formatStatus(report)) io.stdout(line);
      return statusExitCode(report);
    });
  } catch (error) {
    if (error instanceof RunLockedError) throw error; // the embedded database is in use: exit 3 as everywhere
    io.stderr(error instanceof ConfigError ? error.message : `error ${describeFatal(error)}`);
    return EXIT.unreadable;
  }
}

/** `migrate --list`: every migration, applied (with when) or pending; applies nothing. */
async function listMigrationsCommand(db: OpenDatabase['db'], io: Io): Promise<number> {
  const migrations = await listMigrations(db);
  for (const { name, executedAt } of migrations)
    io.stdout(executedAt ? `applied ${executedAt.toISOString()}  ${name}` : `pending                           ${name}`);
  const pending = migrations.filter((m) => !m.executedAt).length;
  io.stdout(pending === 0 ? 'The database is up to date.' : `${pending} pending: run \`npm run migrate\` to apply them.`);
  return EXIT.ok;
}

/**
 * The warehouse's migrations, then (on a server database) the job queue schema the worker
 * replicas share (issue #23): created here, once, so replicas never race to create it.
 */
async function migrate(db: OpenDatabase['db'], io: Io, { tenant, ownsDatabase }: { tenant: string | undefined; ownsDatabase: boolean }): Promise<number> {
  // Rows from before tenants (issue #23) become the configured tenant's.
  const { results, error } = await migrateToLatest(db, { tenant });
  for (const result of results) io.stdout(`${result.status === 'Success' ? 'applied' : result.status}: ${result.migrationName}`);
  if (error) {
    io.stderr(`migration failed ${describeFatal(error)}`);
    return EXIT.fatal;
  }
  const queue = !ownsDatabase && (await installJobQueueSchema(db));
  if (queue) io.stdout(`applied: job queue schema ${JOB_QUEUE_SCHEMA}`);
  if (results.length === 0 && !queue) io.stdout('Nothing to migrate: the database is up to date.');
  return EXIT.ok;
}

async function sync(flags: SyncFlags, env: Env, io: Io, deps: Deps): Promise<number> {
  let loaded: Config | undefined;
  const request = await toSyncRequest(flags, () => (loaded = loadConfig(env)));
  const config = loaded ?? loadConfig(env);
  // A bar on stderr when both streams are a terminal; `progress` log lines otherwise.
  const progressDisplay = io.stderrIsTTY && io.stdoutIsTTY && !request.fromLogs ? (await import('./progress-bar.js')).createProgressBar() : undefined;
  const write = progressDisplay
    ? (line: string) => {
        progressDisplay.clearLine(); // a log line starts on a clean line, the bar redraws below it
        io.stdout(line);
      }
    : io.stdout;
  const logger = createCommandLogger(config, io, write);
  return withDatabase(config, 'sync', io, deps, { existing: true, env }, async ({ db, ownsDatabase }) => {
    return untilStopped(secondSignalWarning(logger), undefined, async (stopSignal) => {
      if (request.fromLogs) return await fromLogs(config, db, logger, io, { ownsDatabase, stopSignal, allowMassDelete: request.allowMassDelete });
      const started = Date.now();
      const result = await runSyncJob({ config, db, logger, ...request, ownsDatabase, stopSignal, progressDisplay });
      if (request.dryRun) io.stdout(describeDryRun(result));
      // One sentence for people beside the `sync finished` log line, on stdout as import-users
      // and --dry-run print theirs; stderr stays for warnings and errors.
      else if (result.status === 'succeeded' || result.status === 'partial') io.stdout(describeRun(result, Date.now() - started));
      return exitCodeFor(result, io);
    });
  });
}

async function importUsersCommand(flags: ImportUsersFlags, env: Env, io: Io, deps: Deps): Promise<number> {
  const request = toImportRequest(flags);
  const config = loadConfig(env);
  const logger = createCommandLogger(config, io);
  return withDatabase(config, 'import-users', io, deps, { existing: true, env }, async ({ db }) => {
    const { importUsers } = await import('../jobs/import-users.js');
    const result = await importUsers({ config, db, logger, clock: deps.clock, ...request });
    for (const line of describeImport(result)) io.stdout(line);
    // Lines skipped: applied, but not all of the export (issue #24): partial, as for a sync.
    return result.badLines.count > 0 ? EXIT.partial : EXIT.ok;
  });
}

/** `sync --from-logs`: follow the tenant logs; a missing `read:logs` is a warning, not a failure. */
async function fromLogs(
  config: Config,
  db: OpenDatabase['db'],
  logger: Logger,
  io: Io,
  options: { ownsDatabase: boolean; stopSignal: AbortSignal; allowMassDelete: boolean },
): Promise<number> {
  const { followLogs } = await import('../jobs/follow-logs.js');
  const result = await followLogs({ config, db, logger, ...options });
  if (result.outcome === 'off') {
    io.stderr(`warning: ${result.messages.join(' ')}`);
    return EXIT.ok;
  }
  for (const line of result.messages) io.stdout(line);
  const stopped = result.runs.find((run) => run.status !== 'succeeded' && run.status !== 'partial');
  const partial = result.runs.find((run) => run.status === 'partial');
  const last = stopped ?? partial;
  return last ? exitCodeFor(last, io) : EXIT.ok;
}

async function worker(env: Env, io: Io, deps: Deps): Promise<number> {
  const config = loadConfig(env);
  const logger = createCommandLogger(config, io);
  return withDatabase(config, 'worker', io, deps, { existing: true, env }, async ({ db, ownsDatabase }) => {
    // Nobody reads the worker's log any more: stop as on SIGTERM (a Unix tool dies of SIGPIPE).
    return untilStopped(secondSignalWarning(logger), io.stdoutClosed, async (stopSignal) => {
      const { runWorker } = await import('../worker/worker.js');
      // On a server database the replicas share the work through the job engine (issue #23).
      const engine = ownsDatabase || !config.databaseUrl ? undefined : { databaseUrl: config.databaseUrl, concurrency: config.worker.concurrency };
      await runWorker({ configs: [config], db, logger, stopSignal, runOptions: { ownsDatabase }, engine });
      return EXIT.ok;
    });
  });
}

/**
 * Run `body` with a signal that SIGTERM or SIGINT (or `also`, when given) aborts (stop taking
 * users, finish the ones in flight; stop serving); a second signal exits at once, leaving a run
 * for the next one to mark interrupted.
 */
async function untilStopped<T>(beforeExit: () => void, also: AbortSignal | undefined, body: (stopSignal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  const stopAlso = () => controller.abort(also?.reason);
  if (also?.aborted) stopAlso();
  also?.addEventListener('abort', stopAlso, { once: true });
  const handler = (signal: NodeJS.Signals) => {
    if (!controller.signal.aborted) {
      controller.abort(signal);
      return;
    }
    beforeExit();
    process.exit(EXIT.interrupted);
  };
  process.on('SIGTERM', handler);
  process.on('SIGINT', handler);
  try {
    return await body(controller.signal);
  } finally {
    also?.removeEventListener('abort', stopAlso);
    process.off('SIGTERM', handler);
    process.off('SIGINT', handler);
  }
}

const secondSignalWarning = (logger: Logger) => () => logger.warn('second signal: exiting now');

function exitCodeFor(result: SyncJobResult, io: Io): number {
  const run = result.runId === undefined ? 'Dry run' : `Run ${result.runId}`;
  switch (result.status) {
    case 'succeeded':
      return EXIT.ok;
    case 'partial':
      io.stderr(
        `${run}: ${result.counts.usersFailed} of ${result.usersTotal === undefined ? 'the users' : plural(result.usersTotal, 'user')} failed; see auth0.user_sync_state.`,
      );
      return EXIT.partial;
    case 'interrupted':
      // Lost the run lock mid-run (issue #13): not a graceful stop, so alerting sees exit 1.
      if (result.errorCode === 'run_lock_lost') {
        io.stderr(`${run} interrupted: ${result.error}`);
        return EXIT.fatal;
      }
      io.stderr(`${run} interrupted; the next run completes the warehouse.`);
      return EXIT.interrupted;
    default:
      io.stderr(`${run} ${result.status}: ${result.error ?? 'stopped'}`);
      return EXIT.fatal;
  }
}

/**
 * The tenant `status` reports on (issue #23): the configured one, else the only one the
 * warehouse holds. Several held and none configured: a ConfigError naming them.
 */
async function statusTenant(db: OpenDatabase['db'], configured: string | undefined): Promise<string> {
  if (configured) return configured;
  const held = await readTenants(db);
  if (held.length > 1) {
    throw new ConfigError([`the warehouse holds ${held.length} tenants (${held.join(', ')}): set AUTH0_TENANT_NAME to the one to report on`]);
  }
  return held[0] ?? '';
}
