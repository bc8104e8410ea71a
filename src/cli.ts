import { existsSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { describeImport, IMPORT_USERS_OPTIONS, toImportRequest } from './cli/import-users-args.js';
import { describeDryRun, SYNC_OPTIONS, toSyncRequest } from './cli/sync-args.js';
import { loadConfig, loadDatabaseConfig, type Config, type DatabaseConfig, type Env } from './config.js';
import { openDatabase, type OpenDatabase } from './db.js';
import { runDemo } from './demo.js';
import { dbCommand } from './embedded/serve-sql.js';
import { ConfigError, SyncError } from './errors.js';
import { importUsers } from './import-users.js';
import { createLogger, type Logger } from './log.js';
import { assertMigrated, migrateToLatest } from './migrate.js';
import { RunLockedError } from './run-lock.js';
import { formatStatus, readStatus, statusExitCode } from './status.js';
import { followLogs } from './sync/follow-logs.js';
import { runSyncJob, type SyncJobResult } from './sync/job.js';
import { processIo, type Io } from './io.js';
import { isDatabaseRefusingUs, isDatabaseUnavailable } from './pg-errors.js';
import { runWorker } from './worker.js';

/** Exit codes that alerting can tell apart. */
export const EXIT = { ok: 0, fatal: 1, partial: 2, locked: 3, interrupted: 4, unreadable: 5 } as const;

/** What main opens; tests pass their own database. */
export interface Deps {
  openDatabase: (config: DatabaseConfig, options: { poolSize?: number; command: string; notice: (line: string) => void }) => Promise<OpenDatabase>;
}

const USAGE = `usage:
  npm run migrate                 apply pending migrations
  npm run sync [-- flags]         sync every source user once; flags:
      --user ID (repeatable)      just these users       --users-file PATH|-   the IDs in a file, one per line
      --only-failed               users whose last sync failed
      --stale 24h|2026-11-01      users not synced successfully since then
      --max-users N, --max-duration 30m   a budget (stalest users first)
      --dry-run                   fetch and compare; write nothing
      --allow-mass-delete         confirm a run that marks more than SYNC_MAX_DELETE_RATIO deleted
      --from-logs                 follow the tenant logs from the stored checkpoint; sync the users they name
  npm run import-users [-- flags]  export the tenant's users into auth0.users; flags:
      --connection con_ID         only this connection (removals only among its users)
      --dry-run                   print what would be added and removed; write nothing
      --timeout 30m               give up on an export job that has not completed by then
      --allow-mass-delete         confirm an import that marks more than SYNC_MAX_DELETE_RATIO removed
  npm run worker                  run the sync on SYNC_SCHEDULE until SIGTERM
  npm run status                  recent runs, failing users, staleness (exit 1 if the last run failed, 2 if partial,
                                  5 if the database cannot be read or is not migrated)
  npm run demo                    migrate, sync a built-in sandbox tenant, print a short report
  npm run db [-- --port N]        serve the embedded database to psql on 127.0.0.1 (PGLITE_PORT, default 5433)`;

/**
 * The command line. Returns the exit code; prints one clear sentence (never a stack trace) for
 * errors that stop the command, and closes everything it opened.
 */
export async function main(argv: readonly string[], env: Env = process.env, io: Io = processIo, deps: Deps = { openDatabase }): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'migrate':
        return await withDatabase(loadDatabaseConfig(env), 'migrate', io, deps, ({ db }) => migrate(db, io));
      case 'sync':
        return await sync(rest, env, io, deps);
      case 'import-users':
        return await importUsersCommand(rest, env, io, deps);
      case 'worker':
        return await worker(env, io, deps);
      case 'status':
        return await status(env, io, deps);
      case 'demo':
        return await runDemo(env, io);
      case 'db':
        return await dbCommand(rest, env, io);
      default:
        io.stderr(command ? `Unknown command "${command}".\n${USAGE}` : USAGE);
        return EXIT.fatal;
    }
  } catch (error) {
    if (error instanceof RunLockedError) {
      io.stderr(error.message);
      return EXIT.locked;
    }
    io.stderr(error instanceof ConfigError ? error.message : `error ${describeFatal(error)}`);
    return EXIT.fatal;
  }
}

/** Open the database (a server, or the embedded one), run `fn`, and always close it. */
async function withDatabase(
  config: DatabaseConfig,
  command: string,
  io: Io,
  deps: Deps,
  fn: (database: OpenDatabase) => Promise<number>,
): Promise<number> {
  // The pool serves the run lock, the writer, the source reader and run bookkeeping; fetches
  // hold no connection, so it does not grow with SYNC_CONCURRENCY.
  const database = await deps.openDatabase(config, { poolSize: 5, command, notice: io.stderr });
  try {
    return await fn(database);
  } finally {
    await database.close();
  }
}

/**
 * `status` exits 1 and 2 for the last run only; a status that cannot be read at all (bad
 * configuration, database unreachable or refusing, not migrated) exits 5, so alerting can tell
 * "the sync is failing" from "cannot look".
 */
async function status(env: Env, io: Io, deps: Deps): Promise<number> {
  try {
    const config = loadDatabaseConfig(env);
    return await withDatabase(config, 'status', io, deps, async ({ db }) => {
      await assertMigrated(db); // before migrate the tables are missing: say what to run, not a raw SQL error
      const report = await readStatus(db, config.source);
      for (const line of formatStatus(report)) io.stdout(line);
      return statusExitCode(report);
    });
  } catch (error) {
    if (error instanceof RunLockedError) throw error; // the embedded database is in use: exit 3 as everywhere
    io.stderr(error instanceof ConfigError ? error.message : `error ${describeFatal(error)}`);
    return EXIT.unreadable;
  }
}

async function migrate(db: OpenDatabase['db'], io: Io): Promise<number> {
  const { results, error } = await migrateToLatest(db);
  for (const result of results) io.stdout(`${result.status === 'Success' ? 'applied' : result.status}: ${result.migrationName}`);
  if (error) {
    io.stderr(`migration failed ${describeFatal(error)}`);
    return EXIT.fatal;
  }
  if (results.length === 0) io.stdout('Nothing to migrate: the database is up to date.');
  return EXIT.ok;
}

async function sync(argv: readonly string[], env: Env, io: Io, deps: Deps): Promise<number> {
  const { values } = parseArgs({ args: [...argv], options: SYNC_OPTIONS, strict: true, allowPositionals: false });
  const config = loadConfig(env);
  const request = await toSyncRequest(values, config);
  const logger = createLogger({ level: config.logLevel, write: io.stdout });
  return withDatabase(config, 'sync', io, deps, async ({ db, ownsDatabase }) => {
    const stop = onStopSignals(() => logger.warn('second signal: exiting now'));
    try {
      if (request.fromLogs) return await fromLogs(config, db, logger, io, { ownsDatabase, stopSignal: stop.signal, allowMassDelete: request.allowMassDelete });
      const result = await runSyncJob({ config, db, logger, ...request, ownsDatabase, stopSignal: stop.signal });
      if (request.dryRun) io.stdout(describeDryRun(result));
      return exitCodeFor(result, io);
    } finally {
      stop.dispose();
    }
  });
}

async function importUsersCommand(argv: readonly string[], env: Env, io: Io, deps: Deps): Promise<number> {
  const { values } = parseArgs({ args: [...argv], options: IMPORT_USERS_OPTIONS, strict: true, allowPositionals: false });
  const request = toImportRequest(values);
  const config = loadConfig(env);
  const logger = createLogger({ level: config.logLevel, write: io.stdout });
  return withDatabase(config, 'import-users', io, deps, async ({ db }) => {
    const result = await importUsers({ config, db, logger, ...request });
    for (const line of describeImport(result)) io.stdout(line);
    return EXIT.ok;
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
  const logger = createLogger({ level: config.logLevel, write: io.stdout });
  return withDatabase(config, 'worker', io, deps, async ({ db, ownsDatabase }) => {
    const stop = onStopSignals(() => logger.warn('second signal: exiting now'));
    try {
      await runWorker({ config, db, logger, stopSignal: stop.signal, runOptions: { ownsDatabase } });
      return EXIT.ok;
    } finally {
      stop.dispose();
    }
  });
}

/**
 * SIGTERM or SIGINT aborts the returned signal (stop taking users, finish the ones in
 * flight); a second signal exits at once, leaving the run for the next one to mark interrupted.
 */
function onStopSignals(beforeExit: () => void): { signal: AbortSignal; dispose(): void } {
  const controller = new AbortController();
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
  return {
    signal: controller.signal,
    dispose() {
      process.off('SIGTERM', handler);
      process.off('SIGINT', handler);
    },
  };
}

function exitCodeFor(result: SyncJobResult, io: Io): number {
  const run = result.runId === undefined ? 'Dry run' : `Run ${result.runId}`;
  switch (result.status) {
    case 'succeeded':
      return EXIT.ok;
    case 'partial':
      io.stderr(`${run}: ${result.counts.usersFailed} of ${result.usersTotal ?? 'the'} users failed; see auth0.user_sync_state.`);
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

/** `[code]: one sentence` for people, with the stable code where there is one. */
function describeFatal(error: unknown): string {
  if (error instanceof SyncError) return `[${error.code}]: ${error.message}`;
  const message = error instanceof Error ? error.message : String(error);
  if (isDatabaseUnavailable(error) || isDatabaseRefusingUs(error)) {
    return `[database_unavailable]: cannot use DATABASE_URL: ${message}`;
  }
  // parseArgs errors and the like: the message says what to fix.
  return `: ${message}`;
}

/**
 * Load `.env` from the working directory when there is one (Node's own parser; variables
 * already set in the environment win), so `npm run …`, Compose and `docker run --env-file` read
 * the same file. Returns the sentence to print when the file cannot be read.
 */
function loadDotEnv(file = '.env'): string | undefined {
  if (!existsSync(file)) return undefined;
  try {
    process.loadEnvFile(file);
    return undefined;
  } catch (error) {
    return `error [invalid_config]: cannot read ${file}: ${(error as Error).message}`;
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const problem = loadDotEnv();
  if (problem) {
    processIo.stderr(problem);
    process.exitCode = EXIT.fatal;
  } else {
    main(process.argv.slice(2)).then((code) => {
      process.exitCode = code;
    });
  }
}
