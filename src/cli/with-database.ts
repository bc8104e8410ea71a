/**
 * Opening the database for a command, shared by the commands (commands.ts) and `report`
 * (report-command.ts, loaded on its own so the report does not load the sync's code).
 */
import type { DatabaseConfig, Env } from '../core/config.js';
import type { Io } from '../core/io.js';
import type { Clock } from '../core/clock.js';
import { openDatabase, type OpenDatabase, type OpenOptions } from '../warehouse/connection.js';

/** What main opens; tests pass their own database. */
export interface Deps {
  openDatabase: (config: DatabaseConfig, options: OpenOptions) => Promise<OpenDatabase>;
  /** What `import-users` waits on (default the system clock); tests pass one that skips its waits. */
  clock?: Clock;
}

/** The database opener main's caller gave, or the real one. */
export const withDefaults = (deps: Partial<Deps>): Deps => ({ openDatabase, ...deps });

/** Open the database (a server, or the embedded one; `existing`: never create it), run `fn`, and always close it. */
export async function withDatabase(
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
  const database = await deps.openDatabase(config, {
    poolSize: 5,
    command,
    notice: io.stderr,
    existing: options.existing,
    demoDataDir: options.env.DEMO_DATA_DIR,
  });
  try {
    return await fn(database);
  } finally {
    await database.close();
  }
}
