/**
 * What `--help` says beyond the flags: the exit codes of each command and the environment
 * variables it reads (README "Configuration" has their ranges and defaults). Kept next to the
 * command definitions' module so a new command or variable is added in one place; test/cli
 * checks each command has an entry.
 */

const DATABASE = 'DATABASE_URL (a PostgreSQL server) or, unset, PGLITE_DATA_DIR (the embedded database, default .data/pglite)';
const SOURCE = 'SOURCE_USERS_TABLE, SOURCE_USER_ID_COLUMN';
const AUTH0 =
  'AUTH0_DOMAIN, AUTH0_CLIENT_ID, AUTH0_CLIENT_SECRET (required), AUTH0_AUDIENCE, AUTH0_TENANT_NAME, AUTH0_TOKENS_ENDPOINT, AUTH0_MAX_RPS, AUTH0_TIMEOUT_MS, AUTH0_MAX_RESPONSE_BYTES';
/** Many tenants (issue #23): the file replaces the per-tenant AUTH0_* variables. */
const TENANTS =
  'TENANTS_FILE (many tenants: replaces AUTH0_DOMAIN, AUTH0_CLIENT_ID, AUTH0_CLIENT_SECRET, AUTH0_AUDIENCE, AUTH0_TENANT_NAME, AUTH0_MAX_RPS, AUTH0_TOKENS_ENDPOINT)';
/** What names the tenants for commands that need no credentials. */
const TENANT_NAMES = 'TENANTS_FILE, else AUTH0_TENANT_NAME or AUTH0_DOMAIN (the tenant names --tenant accepts)';
const SYNC =
  'SYNC_CONCURRENCY, SYNC_PAGE_SIZE, SYNC_MAX_PAGES_PER_USER, SYNC_MAX_USERS, SYNC_MAX_DURATION, SYNC_MAX_DELETE_RATIO, SYNC_DELETE_GUARD_MIN, SYNC_HISTORY_DAYS';
const LOGS = 'LOG_LEVEL, LOG_FORMAT';

export interface CommandHelp {
  exitCodes: string;
  environment: string[];
}

/** Per command: its exit codes in one line, and the variables it reads. */
export const COMMAND_HELP: Record<string, CommandHelp> = {
  migrate: {
    exitCodes: '0 applied (or nothing to apply), 1 failed, 3 another process holds the embedded database, 64 usage error',
    environment: [DATABASE, TENANT_NAMES, LOGS],
  },
  sync: {
    exitCodes: '0 every user synced, 1 fatal, 2 partial (some users failed), 3 another run holds the lock, 4 interrupted, 64 usage error',
    environment: [DATABASE, AUTH0, TENANTS, SOURCE, SYNC, LOGS],
  },
  'import-users': {
    exitCodes: '0 imported (or a dry run), 1 fatal (nothing changed), 3 another process holds the embedded database, 64 usage error',
    environment: [DATABASE, AUTH0, TENANTS, SYNC, LOGS],
  },
  worker: {
    exitCodes:
      '0 stopped by SIGTERM/SIGINT, 1 cannot start (configuration, pending migrations, METRICS_PORT), 3 another process holds the embedded database, 4 a second signal, 64 usage error',
    environment: [
      DATABASE,
      AUTH0,
      TENANTS,
      SOURCE,
      SYNC,
      'SYNC_SCHEDULE, SYNC_LOGS_SCHEDULE, SYNC_TIMEZONE, SYNC_RUN_ON_START',
      'METRICS_PORT, METRICS_HOST, NOTIFY_WEBHOOK_URL',
      LOGS,
    ],
  },
  status: {
    exitCodes:
      '0 the last run succeeded (or none yet), 1 it failed, 2 it was partial, 3 another process holds the embedded database, 5 cannot read the database, 64 usage error',
    environment: [DATABASE, TENANT_NAMES, SOURCE],
  },
  report: {
    exitCodes: '0 written, 1 cannot read the database or write the file, 3 another process holds the embedded database, 64 usage error',
    environment: [DATABASE],
  },
  db: {
    exitCodes: '0 stopped by SIGINT/SIGTERM, 1 no database in the directory or DATABASE_URL set, 3 another process holds it, 4 a second signal, 64 usage error',
    environment: ["PGLITE_DATA_DIR (default .data/pglite; the demo's .data/demo when only the demo ran), DEMO_DATA_DIR", 'PGLITE_PORT (default 5433)'],
  },
};

/** The text after a command's flags in its `--help`. */
export function commandHelpText(name: string): string {
  const help = COMMAND_HELP[name];
  if (!help) return '';
  return `\nExit codes: ${help.exitCodes}.\nEnvironment (also read from .env in the working directory):\n${help.environment.map((line) => `  ${line}`).join('\n')}`;
}

/** The overview's list of every command with its exit codes. */
export function exitCodesOverview(): string {
  const width = Math.max(...Object.keys(COMMAND_HELP).map((name) => name.length));
  return Object.entries(COMMAND_HELP)
    .map(([name, help]) => `  ${name.padEnd(width)}  ${help.exitCodes}`)
    .join('\n');
}
