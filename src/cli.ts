import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { loadConfig, loadDatabaseConfig, type Env } from './config.js';
import { createDb } from './db.js';
import { ConfigError, SyncError } from './errors.js';
import { RunLockedError } from './run-lock.js';
import { createLogger } from './log.js';
import { migrateToLatest } from './migrate.js';
import { isDatabaseUnavailable } from './warehouse/errors.js';
import { syncRefreshTokensJob } from '../jobs/sync-refresh-tokens.js';
import type { SyncJobResult } from './sync/run.js';

/** Exit codes that alerting can tell apart. */
export const EXIT = { ok: 0, fatal: 1, partial: 2, locked: 3, interrupted: 4 } as const;

export interface Io {
  stdout: (line: string) => void;
  stderr: (line: string) => void;
}

const defaultIo: Io = {
  stdout: (line) => process.stdout.write(line + '\n'),
  stderr: (line) => process.stderr.write(line + '\n'),
};

const USAGE = `usage:
  npm run migrate                      apply pending migrations
  npm run sync [-- --user ID ...]      sync every source user, or just the given ones`;

/**
 * The command line: `migrate` or `sync`. Returns the exit code; prints one clear sentence
 * (never a stack trace) for errors that stop the command, and closes everything it opened.
 */
export async function main(argv: readonly string[], env: Env = process.env, io: Io = defaultIo): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case 'migrate':
        return await migrate(env, io);
      case 'sync':
        return await sync(rest, env, io);
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

async function migrate(env: Env, io: Io): Promise<number> {
  const config = loadDatabaseConfig(env);
  const db = createDb(config.databaseUrl, { poolSize: 1 });
  try {
    const { results, error } = await migrateToLatest(db);
    for (const result of results) io.stdout(`${result.status === 'Success' ? 'applied' : result.status}: ${result.migrationName}`);
    if (error) {
      io.stderr(`migration failed ${describeFatal(error)}`);
      return EXIT.fatal;
    }
    if (results.length === 0) io.stdout('Nothing to migrate: the database is up to date.');
    return EXIT.ok;
  } finally {
    await db.destroy();
  }
}

async function sync(argv: readonly string[], env: Env, io: Io): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: { user: { type: 'string', multiple: true } },
    strict: true,
  });
  const config = loadConfig(env);
  const userIds = values.user ? [...new Set(values.user.map((id) => id.trim()).filter(Boolean))] : undefined;
  const logger = createLogger({ level: config.logLevel, write: io.stdout });
  // The pool serves the run lock, the writer, the source reader and run bookkeeping; fetches
  // hold no connection, so it does not grow with SYNC_CONCURRENCY.
  const db = createDb(config.databaseUrl, { poolSize: 5 });
  const stop = onStopSignals(() => logger.warn('second signal: exiting now'));
  try {
    const result = await syncRefreshTokensJob.run({
      config,
      db,
      logger,
      trigger: 'manual',
      userIds,
      args: userIds ? { users: userIds } : undefined,
      stopSignal: stop.signal,
    });
    return exitCodeFor(result, io);
  } finally {
    stop.dispose();
    await db.destroy();
  }
}

/**
 * SIGTERM or SIGINT aborts the returned signal (stop taking users, finish the ones in
 * flight); a second signal exits at once, leaving the run for the next one to mark interrupted.
 */
export function onStopSignals(beforeExit: () => void): { signal: AbortSignal; dispose(): void } {
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
  switch (result.status) {
    case 'succeeded':
      return EXIT.ok;
    case 'partial':
      io.stderr(`Run ${result.runId}: ${result.counts.usersFailed} of ${result.usersTotal} users failed; see auth0.user_sync_state.`);
      return EXIT.partial;
    case 'interrupted':
      io.stderr(`Run ${result.runId} interrupted; the next run picks up where it stopped.`);
      return EXIT.interrupted;
    default:
      io.stderr(`Run ${result.runId} ${result.status}: ${result.error ?? 'stopped'}`);
      return EXIT.fatal;
  }
}

/** `[code]: one sentence` for people, with the stable code where there is one. */
function describeFatal(error: unknown): string {
  if (error instanceof SyncError) return `[${error.code}]: ${error.message}`;
  const code = (error as { code?: unknown } | null)?.code;
  const message = error instanceof Error ? error.message : String(error);
  // Unreachable, or reachable but refusing these credentials (28xxx) or this database (3D000).
  if (isDatabaseUnavailable(error) || (typeof code === 'string' && /^(28|3D)/.test(code))) {
    return `[database_unavailable]: cannot use DATABASE_URL: ${message}`;
  }
  // parseArgs errors and the like: the message says what to fix.
  return `: ${message}`;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
