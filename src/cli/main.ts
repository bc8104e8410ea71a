#!/usr/bin/env node
import { existsSync, realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { Command, CommanderError } from 'commander';
import { describeImport, importUsersOptions, toImportRequest, type ImportUsersFlags } from './import-users-args.js';
import { describeDryRun, describeRun } from './describe-run.js';
import { commandHelpText, exitCodesOverview } from './help-text.js';
import { describeNpmEatenFlags, findNpmEatenFlags } from './npm-flags.js';
import { createProgressBar } from './progress-bar.js';
import { syncOptions, toSyncRequest, type SyncFlags } from './sync-args.js';
import type { Clock } from '../core/clock.js';
import { loadConfig, loadDatabaseConfig, type Config, type DatabaseConfig, type Env } from '../core/config.js';
import { openDatabase, type OpenDatabase, type OpenOptions } from '../warehouse/connection.js';
import { runDemo } from './demo.js';
import { dbCommand } from '../warehouse/embedded/serve-sql.js';
import { ConfigError, SyncError, UsageError } from '../core/errors.js';
import { importUsers } from '../jobs/import-users.js';
import { createCommandLogger, type Logger } from '../core/log.js';
import { assertMigrated, listMigrations, migrateToLatest } from '../warehouse/migrate.js';
import { RunLockedError } from '../warehouse/run-lock.js';
import { formatStatus, toStatusJson } from '../status/format-status.js';
import { readStatus, statusExitCode } from '../status/read-status.js';
import { followLogs } from '../jobs/follow-logs.js';
import { runSyncJob, type SyncJobResult } from '../jobs/sync.js';
import { processIo, type Io } from '../core/io.js';
import { isDatabaseRefusingUs, isDatabaseUnavailable } from '../warehouse/pg-errors.js';
import { VERSION } from '../core/version.js';
import { runWorker } from '../worker/worker.js';
import { plural } from '../core/wording.js';

/** Exit codes that alerting can tell apart; `usage` is sysexits' EX_USAGE (a wrong command, flag or value). */
export const EXIT = { ok: 0, fatal: 1, partial: 2, locked: 3, interrupted: 4, unreadable: 5, usage: 64 } as const;

/** What main opens; tests pass their own database. */
export interface Deps {
  openDatabase: (config: DatabaseConfig, options: OpenOptions) => Promise<OpenDatabase>;
  /** What `import-users` waits on (default the system clock); tests pass one that skips its waits. */
  clock?: Clock;
}

/** One command's handler: the parsed options in, the exit code out. */
type Handler<Flags> = (flags: Flags) => Promise<number>;

/**
 * The commands, their flags and their help, in one place: commander parses from these
 * definitions and prints `--help` from them, so the two cannot drift apart.
 */
function createProgram(
  io: Io,
  handlers: {
    migrate: Handler<{ list?: boolean }>;
    sync: Handler<SyncFlags>;
    importUsers: Handler<ImportUsersFlags>;
    worker: Handler<Record<string, never>>;
    status: Handler<{ json?: boolean }>;
    demo: Handler<Record<string, never>>;
    db: Handler<{ port?: string }>;
  },
  done: (code: number) => void,
): Command {
  const program = new Command('auth0-refresh-token-sync')
    .description('Sync Auth0 refresh tokens into a normalized PostgreSQL warehouse.')
    .version(VERSION, '-V, --version', 'print the version')
    .helpOption('-h, --help', 'print help for a command')
    .helpCommand('help [command]', 'print help for a command')
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      writeOut: (text) => io.stdout(text.replace(/\n$/, '')),
      writeErr: (text) => io.stderr(text.replace(/\n$/, '')),
      outputError: (text, write) => write(text),
    })
    .addHelpText(
      'after',
      `
Through npm, put the flags after --: npm run -s sync -- --dry-run (-s drops npm's banner).
Exit codes (${EXIT.usage} usage error: a wrong command, flag or flag value):
${exitCodesOverview()}
Each command's --help names the environment variables it reads.
Machine output (JSON log lines, --json documents, results) goes to stdout; sentences for people
(errors, warnings, the progress bar) go to stderr.`,
    );
  const command = (name: string, description: string) =>
    program
      .command(name)
      .description(description)
      .addHelpText('after', commandHelpText(name))
      .allowExcessArguments(false)
      .configureOutput(program.configureOutput())
      .showSuggestionAfterError(true)
      .exitOverride();
  const run =
    <Flags>(handler: Handler<Flags>) =>
    async (flags: Flags) =>
      done(await handler(flags));

  command('migrate', 'apply pending migrations (each in its own transaction)')
    .option('--list', 'list applied and pending migrations; apply nothing')
    .action(run(handlers.migrate));
  const sync = command('sync', 'sync the users of the source table once (or the ones the flags choose)');
  for (const option of syncOptions()) sync.addOption(option);
  sync.action(run(handlers.sync));
  const importUsers = command('import-users', "export the tenant's users into auth0.users");
  for (const option of importUsersOptions()) importUsers.addOption(option);
  importUsers.action(run(handlers.importUsers));
  command('worker', 'run the sync on SYNC_SCHEDULE until SIGTERM').action(run(handlers.worker));
  command('status', 'recent runs, failing users, staleness; exit 1 if the last run failed, 2 if partial, 5 if unreadable')
    .option('--json', 'print one JSON document (fields in README) instead of tables')
    .action(run(handlers.status));
  command('demo', 'migrate, sync a built-in sandbox tenant, print a short report').action(run(handlers.demo));
  command('db', 'serve the embedded database to psql on 127.0.0.1 until Ctrl-C (one connection at a time)')
    .option('--port <port>', 'port to listen on (PGLITE_PORT; default 5433; 0 picks a free one)')
    .action(run(handlers.db));
  return program;
}

/**
 * The command line. Returns the exit code; prints one clear sentence (never a stack trace) for
 * errors that stop the command, and closes everything it opened. `--help` and `--version`
 * print and return 0 before any command runs.
 */
export async function main(argv: readonly string[], env: Env = process.env, io: Io = processIo, deps: Deps = { openDatabase }): Promise<number> {
  let code: number = EXIT.ok;
  const program = createProgram(
    io,
    {
      migrate: ({ list }) => withDatabase(loadDatabaseConfig(env), 'migrate', io, deps, { existing: list === true, env }, ({ db }) => (list ? listMigrationsCommand(db, io) : migrate(db, io))),
      sync: (flags) => sync(flags, env, io, deps),
      importUsers: (flags) => importUsersCommand(flags, env, io, deps),
      worker: () => worker(env, io, deps),
      status: ({ json }) => status(env, io, deps, json === true),
      demo: () => runDemo(env, io),
      db: (flags) => untilStopped(() => {}, undefined, (stopSignal) => dbCommand(flags, env, io, stopSignal)),
    },
    (result) => (code = result),
  );
  const command = program.commands.find((c) => c.name() === argv[0]);
  const eaten = command ? findNpmEatenFlags(command, env) : [];
  if (eaten.length > 0) {
    io.stderr(describeNpmEatenFlags(eaten, env));
    return EXIT.usage;
  }
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return code;
  } catch (error) {
    if (error instanceof CommanderError) {
      // Help and version exit 0; everything else commander refuses is a usage error.
      return error.exitCode === 0 ? EXIT.ok : EXIT.usage;
    }
    if (error instanceof RunLockedError) {
      io.stderr(error.message);
      return EXIT.locked;
    }
    if (error instanceof UsageError) {
      io.stderr(`error ${describeFatal(error)}`);
      return EXIT.usage;
    }
    io.stderr(error instanceof ConfigError ? error.message : `error ${describeFatal(error)}`);
    return EXIT.fatal;
  }
}

/** Open the database (a server, or the embedded one; `existing`: never create it), run `fn`, and always close it. */
async function withDatabase(
  config: DatabaseConfig,
  command: string,
  io: Io,
  deps: Deps,
  options: { existing: boolean; env: Env },
  fn: (database: OpenDatabase) => Promise<number>,
): Promise<number> {
  // The pool serves the run lock, the writer, the source reader and run bookkeeping; fetches
  // hold no connection, so it does not grow with SYNC_CONCURRENCY. Only `migrate` creates an
  // embedded database: every other command needs a migrated one, and an empty one made by a
  // bare `status` would pass for the warehouse (and `npm run db` would serve it).
  const database = await deps.openDatabase(config, { poolSize: 5, command, notice: io.stderr, existing: options.existing, demoDataDir: options.env.DEMO_DATA_DIR });
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
async function status(env: Env, io: Io, deps: Deps, json: boolean): Promise<number> {
  try {
    const config = loadDatabaseConfig(env);
    return await withDatabase(config, 'status', io, deps, { existing: true, env }, async ({ db }) => {
      await assertMigrated(db); // before migrate the tables are missing: say what to run, not a raw SQL error
      const report = await readStatus(db, config.source);
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
  for (const { name, executedAt } of migrations) io.stdout(executedAt ? `applied ${executedAt.toISOString()}  ${name}` : `pending                           ${name}`);
  const pending = migrations.filter((m) => !m.executedAt).length;
  io.stdout(pending === 0 ? 'The database is up to date.' : `${pending} pending: run \`npm run migrate\` to apply them.`);
  return EXIT.ok;
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

async function sync(flags: SyncFlags, env: Env, io: Io, deps: Deps): Promise<number> {
  let loaded: Config | undefined;
  const request = await toSyncRequest(flags, () => (loaded = loadConfig(env)));
  const config = loaded ?? loadConfig(env);
  // A bar on stderr when both streams are a terminal; `progress` log lines otherwise.
  const progressDisplay = io.stderrIsTTY && io.stdoutIsTTY && !request.fromLogs ? createProgressBar() : undefined;
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
      await runWorker({ config, db, logger, stopSignal, runOptions: { ownsDatabase } });
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
      io.stderr(`${run}: ${result.counts.usersFailed} of ${result.usersTotal === undefined ? 'the users' : plural(result.usersTotal, 'user')} failed; see auth0.user_sync_state.`);
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
  // Anything else: the message says what to fix.
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

/** Run as a program (`node dist/src/cli/main.js`, or the `bin` link npx and npm install make), not imported. */
function isMain(): boolean {
  const script = process.argv[1];
  if (!script) return false;
  try {
    // A bin link is a symlink: node runs the file it points to, argv[1] names the link.
    return import.meta.url === pathToFileURL(realpathSync(script)).href;
  } catch {
    return false;
  }
}

if (isMain()) {
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
