#!/usr/bin/env node
import { existsSync, realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { Command, CommanderError } from 'commander';
import { importUsersOptions, type ImportUsersFlags } from './import-users-args.js';
import { commandHelpText, exitCodesOverview } from './help-text.js';
import { describeNpmEatenFlags, findNpmEatenFlags } from './npm-flags.js';
import { syncOptions, type SyncFlags } from './sync-args.js';
import type { Env } from '../core/config.js';
import { processIo, type Io } from '../core/io.js';
import { VERSION } from '../core/version.js';
import { EXIT, reportFailure } from './exit.js';
import { DEFAULT_REPORT_PATH } from './report-args.js';
import { tenantOption } from './tenant-args.js';

import type { Deps } from './commands.js';

export { EXIT } from './exit.js';
export type { Deps } from './commands.js';

/** One command's handler: the parsed options in, the exit code out. */
type Handler<Flags> = (flags: Flags) => Promise<number>;

/**
 * The commands, their flags and their help, in one place: commander parses from these
 * definitions and prints `--help` from them, so the two cannot drift apart.
 */
function createProgram(
  io: Io,
  handlers: {
    migrate: Handler<{ list?: boolean; tenant?: string[] }>;
    sync: Handler<SyncFlags>;
    importUsers: Handler<ImportUsersFlags>;
    worker: Handler<Record<string, never>>;
    status: Handler<{ json?: boolean; tenant?: string[] }>;
    db: Handler<{ port?: string }>;
    report: Handler<{ out?: string; tenant?: string[] }>;
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
    .addOption(tenantOption('the tenant the rows of a warehouse from before tenants belong to (implied when one is configured)'))
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
    .addOption(tenantOption('only this tenant (repeatable; default every tenant in the warehouse)'))
    .action(run(handlers.status));
  command('db', 'serve the embedded database to psql on 127.0.0.1 until Ctrl-C (one connection at a time)')
    .option('--port <port>', 'port to listen on (PGLITE_PORT; default 5433; 0 picks a free one)')
    .action(run(handlers.db));
  command('report', 'write the report: one self-contained HTML page of charts and tables from the reporting views')
    .option('--out <path>', `where to write it (default ${DEFAULT_REPORT_PATH}; replaced if it exists)`)
    .addOption(tenantOption('only this tenant (repeatable; default every tenant in the warehouse)'))
    .action(run(handlers.report));
  return program;
}

/**
 * The command line. Returns the exit code; prints one clear sentence (never a stack trace) for
 * errors that stop the command, and closes everything it opened. `--help` and `--version`
 * print and return 0 before any command runs.
 */
export async function main(argv: readonly string[], env: Env = process.env, io: Io = processIo, deps: Partial<Deps> = {}): Promise<number> {
  let code: number = EXIT.ok;
  const program = createProgram(
    io,
    {
      // Each command's code is loaded when it runs: --help and --version load none of it.
      migrate: async (flags) => (await load()).migrate(flags, env, io, deps),
      sync: async (flags) => (await load()).sync(flags, env, io, deps),
      importUsers: async (flags) => (await load()).importUsers(flags, env, io, deps),
      worker: async () => (await load()).worker(env, io, deps),
      status: async (flags) => (await load()).status(flags, env, io, deps),
      db: async (flags) => (await load()).db(flags, env, io),
      report: async (flags) => (await import('./report-command.js')).reportCommand(flags, env, io, deps),
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
    return reportFailure(error, io);
  }
}

/** The commands' code, loaded when one runs. */
const load = async () => (await import('./commands.js')).commands;

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
