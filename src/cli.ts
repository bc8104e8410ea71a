import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { loadConfig, loadDatabaseConfig, type Config, type Env } from './config.js';
import { parseDuration } from './duration.js';
import type { UserSelection } from './source/select-users.js';
import { createDb } from './db.js';
import { ConfigError, SyncError, UsageError } from './errors.js';
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

const SYNC_OPTIONS = {
  user: { type: 'string', multiple: true },
  'users-file': { type: 'string' },
  'only-failed': { type: 'boolean' },
  stale: { type: 'string' },
  'dry-run': { type: 'boolean' },
  'max-users': { type: 'string' },
  'max-duration': { type: 'string' },
} as const;

async function sync(argv: readonly string[], env: Env, io: Io): Promise<number> {
  const { values } = parseArgs({ args: [...argv], options: SYNC_OPTIONS, strict: true, allowPositionals: false });
  const config = loadConfig(env);
  const request = toSyncRequest(values, config);
  const logger = createLogger({ level: config.logLevel, write: io.stdout });
  // The pool serves the run lock, the writer, the source reader and run bookkeeping; fetches
  // hold no connection, so it does not grow with SYNC_CONCURRENCY.
  const db = createDb(config.databaseUrl, { poolSize: 5 });
  const stop = onStopSignals(() => logger.warn('second signal: exiting now'));
  try {
    const result = await syncRefreshTokensJob.run({ config, db, logger, ...request, stopSignal: stop.signal });
    if (request.dryRun) io.stdout(describeDryRun(result));
    return exitCodeFor(result, io);
  } finally {
    stop.dispose();
    await db.destroy();
  }
}

type SyncValues = ReturnType<typeof parseArgs<{ options: typeof SYNC_OPTIONS }>>['values'];

/** Flags to a run request; one line naming the flag to fix when they do not fit together. */
function toSyncRequest(values: SyncValues, config: Config) {
  const explicit = values.user !== undefined || values['users-file'] !== undefined;
  const kinds = [explicit, values['only-failed'] === true, values.stale !== undefined].filter(Boolean).length;
  if (kinds > 1) throw new UsageError('--user/--users-file, --only-failed and --stale choose users in different ways: use one');

  let selection: UserSelection = { kind: 'source' };
  if (explicit) {
    const fromFlags = (values.user ?? []).map((id) => id.trim()).filter(Boolean);
    const file = values['users-file'];
    selection = file
      ? { kind: 'ids', userIds: unique(concatIds(fromFlags, readIdsFile(file))) }
      : { kind: 'ids', userIds: [...new Set(fromFlags)], total: new Set(fromFlags).size };
  } else if (values['only-failed']) {
    selection = { kind: 'failed' };
  } else if (values.stale !== undefined) {
    selection = { kind: 'stale', since: parseSince(values.stale) };
  }

  const maxUsers = values['max-users'] === undefined ? config.sync.maxUsers : Number(values['max-users']);
  if (maxUsers !== undefined && !(Number.isInteger(maxUsers) && maxUsers > 0)) throw new UsageError('--max-users must be a whole number above 0');
  const maxDurationMs = values['max-duration'] === undefined ? config.sync.maxDurationMs : parseDuration(values['max-duration']);
  if (maxDurationMs === undefined && values['max-duration'] !== undefined) throw new UsageError('--max-duration must be a duration such as 30m or 2h');

  const backfill = selection.kind !== 'source';
  const args = Object.fromEntries(
    Object.entries({
      users: values.user && [...new Set(values.user.map((id) => id.trim()).filter(Boolean))].slice(0, 100),
      usersFile: values['users-file'],
      onlyFailed: values['only-failed'],
      stale: values.stale,
      maxUsers,
      maxDurationMs,
    }).filter(([, value]) => value !== undefined),
  );
  return {
    trigger: backfill ? ('backfill' as const) : ('manual' as const),
    selection,
    budget: { maxUsers, maxDurationMs },
    dryRun: values['dry-run'] === true,
    args: Object.keys(args).length > 0 ? args : undefined,
  };
}

/** `--stale 24h` (not synced in the last 24 hours) or `--stale 2026-11-01` (not since that date). */
function parseSince(text: string): Date {
  const duration = parseDuration(text);
  if (duration !== undefined) return new Date(Date.now() - duration);
  if (/^\d{4}-\d{2}-\d{2}/.test(text) && !Number.isNaN(Date.parse(text))) return new Date(text);
  throw new UsageError(`--stale takes a duration such as 24h or 7d, or a date such as 2026-11-01 (got "${text}")`);
}

/** One ID per line; blank lines and lines starting with # are skipped. `-` reads stdin. */
async function* readIdsFile(path: string): AsyncGenerator<string> {
  const input = path === '-' ? process.stdin : createReadStream(path);
  const lines = createInterface({ input, crlfDelay: Infinity });
  try {
    for await (const line of lines) {
      const id = line.trim();
      if (id && !id.startsWith('#')) yield id;
    }
  } catch (error) {
    throw new UsageError(`--users-file ${path}: ${(error as Error).message}`);
  }
}

async function* concatIds(first: string[], rest: AsyncIterable<string>): AsyncGenerator<string> {
  yield* first;
  yield* rest;
}

/** Drops repeats. Holds every ID seen: a users file is a backfill list, not the whole tenant. */
async function* unique(ids: AsyncIterable<string>): AsyncGenerator<string> {
  const seen = new Set<string>();
  for await (const id of ids) {
    if (seen.has(id)) continue;
    seen.add(id);
    yield id;
  }
}

function describeDryRun(result: SyncJobResult): string {
  const { counts } = result;
  return (
    `Dry run over ${counts.usersSynced + counts.usersNotFound} users (${counts.usersNotFound} gone from Auth0, ${counts.usersFailed} failed): ` +
    `would add ${counts.tokensAdded}, change ${counts.tokensChanged} and mark deleted ${counts.tokensDeleted} tokens. Nothing was written.`
  );
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
