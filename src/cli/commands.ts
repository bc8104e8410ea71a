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
import { loadDatabaseConfig, loadTenants, type Config, type Env } from '../core/config.js';
import type { OpenDatabase } from '../warehouse/connection.js';
import { ConfigError, UsageError } from '../core/errors.js';
import { createCommandLogger, type Logger } from '../core/log.js';
import { assertMigrated, listMigrations, migrateToLatest } from '../warehouse/migrate.js';
import { RunLockedError } from '../warehouse/run-lock.js';
import { installJobQueueSchema, JOB_QUEUE_SCHEMA } from '../warehouse/job-queue-schema.js';
import { formatStatus, toStatusJson } from '../status/format-status.js';
import { readStatus, statusExitCode } from '../status/read-status.js';
import { runSyncJob, type SyncJobResult } from '../jobs/sync.js';
import type { Io } from '../core/io.js';
import { plural } from '../core/wording.js';
import { describeFatal, EXIT, reportFailure, worseExit } from './exit.js';
import { withDatabase, withDefaults, type Deps } from './with-database.js';
import { checkConfigured, chooseTenants, labelled, requireOneTenant, toTenantFlags } from './tenant-args.js';

export type { Deps } from './with-database.js';

/** Each command as main dispatches it: its parsed flags in, its exit code out. */
export const commands = {
  migrate: (flags: { list?: boolean; tenant?: string[] }, env: Env, io: Io, deps: Partial<Deps>) => migrateCommand(flags, env, io, withDefaults(deps)),
  sync: (flags: SyncFlags, env: Env, io: Io, deps: Partial<Deps>) => sync(flags, env, io, withDefaults(deps)),
  importUsers: (flags: ImportUsersFlags, env: Env, io: Io, deps: Partial<Deps>) => importUsersCommand(flags, env, io, withDefaults(deps)),
  worker: (env: Env, io: Io, deps: Partial<Deps>) => worker(env, io, withDefaults(deps)),
  status: (flags: { json?: boolean; tenant?: string[] }, env: Env, io: Io, deps: Partial<Deps>) => status(flags, env, io, withDefaults(deps)),
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
async function status({ json, tenant }: { json?: boolean; tenant?: string[] }, env: Env, io: Io, deps: Deps): Promise<number> {
  const tenantFlags = toTenantFlags(tenant);
  try {
    const config = loadDatabaseConfig(env);
    if (tenantFlags) checkConfigured(tenantFlags, config.tenantNames);
    return await withDatabase(config, 'status', io, deps, { existing: true, env }, async ({ db }) => {
      await assertMigrated(db); // before migrate the tables are missing: say what to run, not a raw SQL error
      // Every tenant the warehouse holds or the settings name (issue #23), or the ones --tenant names.
      const report = await readStatus(db, config.source, { tenants: tenantFlags, configured: config.tenantNames, sources: config.tenantSources });
      if (json) io.stdout(JSON.stringify(toStatusJson(report), null, 2));
      else for (const line of formatStatus(report)) io.stdout(line);
      return statusExitCode(report);
    });
  } catch (error) {
    // The embedded database is in use: exit 3 as everywhere; an unknown --tenant: exit 64.
    if (error instanceof RunLockedError || error instanceof UsageError) throw error;
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
 * `migrate [--tenant NAME]`: the warehouse's migrations, then (on a server database) the job
 * queue schema the worker replicas share, created here once so replicas never race to create it.
 * The tenant is the one the rows of a warehouse from before tenants belong to (issue #23); with
 * one configured tenant it is implied, and a warehouse that already has tenants needs none.
 */
async function migrateCommand({ list, tenant }: { list?: boolean; tenant?: string[] }, env: Env, io: Io, deps: Deps): Promise<number> {
  const tenantFlags = toTenantFlags(tenant);
  if (tenantFlags && tenantFlags.length > 1) {
    throw new UsageError(`migrate takes one --tenant: the tenant the rows of a warehouse from before tenants belong to (got ${tenantFlags.join(', ')}).`);
  }
  const config = loadDatabaseConfig(env);
  if (tenantFlags) checkConfigured(tenantFlags, config.tenantNames);
  const owner = tenantFlags?.[0] ?? (config.tenantNames.length === 1 ? config.tenantNames[0] : undefined);
  return withDatabase(config, 'migrate', io, deps, { existing: list === true, env }, ({ db, ownsDatabase }) =>
    list ? listMigrationsCommand(db, io) : migrate(db, io, { tenant: owner, ownsDatabase }),
  );
}

async function migrate(db: OpenDatabase['db'], io: Io, { tenant, ownsDatabase }: { tenant: string | undefined; ownsDatabase: boolean }): Promise<number> {
  // Rows from before tenants (issue #23) become this tenant's.
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

/**
 * `sync`: each chosen tenant in turn (every configured one without `--tenant`), each its own
 * run under its own lock; a tenant that is locked or fails does not stop the others, and the
 * exit code is the worst of theirs. A signal stops the tenant in flight and starts no other.
 */
async function sync(flags: SyncFlags, env: Env, io: Io, deps: Deps): Promise<number> {
  const tenantFlags = toTenantFlags(flags.tenant);
  let loaded: Config[] | undefined;
  // The budget defaults (SYNC_MAX_USERS, SYNC_MAX_DURATION) are shared settings: any tenant's serve.
  const request = await toSyncRequest(flags, () => (loaded = chooseTenants(loadTenants(env), tenantFlags))[0]!);
  const configs = loaded ?? chooseTenants(loadTenants(env), tenantFlags);
  if (request.selection.kind === 'ids') requireOneTenant(configs, flags.usersFile !== undefined ? '--users-file' : '--user');
  const many = configs.length > 1;
  // A bar on stderr when both streams are a terminal and one tenant runs; `progress` log lines otherwise.
  const progressDisplay = io.stderrIsTTY && io.stdoutIsTTY && !request.fromLogs && !many ? (await import('./progress-bar.js')).createProgressBar() : undefined;
  const write = progressDisplay
    ? (line: string) => {
        progressDisplay.clearLine(); // a log line starts on a clean line, the bar redraws below it
        io.stdout(line);
      }
    : io.stdout;
  const loggerOf = (config: Config) => tenantLogger(config, io, many, write);
  const first = loggerOf(configs[0]!);
  return withDatabase(configs[0]!, 'sync', io, deps, { existing: true, env }, async ({ db, ownsDatabase }) => {
    return untilStopped(secondSignalWarning(first), undefined, async (stopSignal) => {
      let worst: number = EXIT.ok;
      for (const config of configs) {
        const tenantIo = labelled(io, config.tenant, many);
        if (stopSignal.aborted) {
          tenantIo.stderr('not started: stopped by a signal; the next run syncs it.');
          worst = worseExit(worst, EXIT.interrupted);
          continue;
        }
        const logger = loggerOf(config);
        const code = await eachTenant(many, tenantIo, async () => {
          if (request.fromLogs) return await fromLogs(config, db, logger, tenantIo, { ownsDatabase, stopSignal, allowMassDelete: request.allowMassDelete });
          const started = Date.now();
          const result = await runSyncJob({ config, db, logger, ...request, ownsDatabase, stopSignal, progressDisplay });
          if (request.dryRun) tenantIo.stdout(describeDryRun(result));
          // One sentence for people beside the `sync finished` log line, on stdout as import-users
          // and --dry-run print theirs; stderr stays for warnings and errors.
          else if (result.status === 'succeeded' || result.status === 'partial') tenantIo.stdout(describeRun(result, Date.now() - started));
          return exitCodeFor(result, tenantIo);
        });
        worst = worseExit(worst, code);
      }
      return worst;
    });
  });
}

/** A command's logger for one tenant; over several tenants each line says whose it is. */
function tenantLogger(config: Config, io: Io, many: boolean, write?: (line: string) => void): Logger {
  const logger = createCommandLogger(config, io, write);
  return many ? logger.child({ tenant: config.tenant }) : logger;
}

/**
 * One tenant's part of a command over several: what stops it (its lock held elsewhere, its
 * credentials refused) is said with its label and becomes its exit code, and the next tenant
 * runs. With one tenant the error goes up as it always did.
 */
async function eachTenant(many: boolean, io: Io, body: () => Promise<number>): Promise<number> {
  try {
    return await body();
  } catch (error) {
    if (!many) throw error;
    return reportFailure(error, io);
  }
}

/** `import-users`: each chosen tenant's export in turn, as `sync` runs them. */
async function importUsersCommand(flags: ImportUsersFlags, env: Env, io: Io, deps: Deps): Promise<number> {
  const tenantFlags = toTenantFlags(flags.tenant);
  const request = toImportRequest(flags);
  const configs = chooseTenants(loadTenants(env), tenantFlags);
  if (request.connectionId !== undefined) requireOneTenant(configs, '--connection');
  const many = configs.length > 1;
  const loggerOf = (config: Config) => tenantLogger(config, io, many);
  return withDatabase(configs[0]!, 'import-users', io, deps, { existing: true, env }, async ({ db }) => {
    const { importUsers } = await import('../jobs/import-users.js');
    let worst: number = EXIT.ok;
    for (const config of configs) {
      const tenantIo = labelled(io, config.tenant, many);
      const code = await eachTenant(many, tenantIo, async () => {
        const result = await importUsers({ config, db, logger: loggerOf(config), clock: deps.clock, ...request });
        for (const line of describeImport(result)) tenantIo.stdout(line);
        // Lines skipped: applied, but not all of the export (issue #24): partial, as for a sync.
        return result.badLines.count > 0 ? EXIT.partial : EXIT.ok;
      });
      worst = worseExit(worst, code);
    }
    return worst;
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
  // Every tenant (TENANTS_FILE, else the AUTH0_* variables); the database and logging settings are shared.
  const configs = loadTenants(env);
  const config = configs[0]!;
  const logger = createCommandLogger(config, io);
  return withDatabase(config, 'worker', io, deps, { existing: true, env }, async ({ db, ownsDatabase }) => {
    // Nobody reads the worker's log any more: stop as on SIGTERM (a Unix tool dies of SIGPIPE).
    return untilStopped(secondSignalWarning(logger), io.stdoutClosed, async (stopSignal) => {
      const { runWorker } = await import('../worker/worker.js');
      // On a server database the replicas share the work through the job engine (issue #23).
      const engine = ownsDatabase || !config.databaseUrl ? undefined : { databaseUrl: config.databaseUrl, concurrency: config.worker.concurrency };
      await runWorker({ configs, db, logger, stopSignal, runOptions: { ownsDatabase }, engine });
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
