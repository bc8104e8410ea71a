import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { DatabaseConfig } from '../core/config.js';
import type { Database } from './schema.js';
import { hasEmbeddedDatabase, noEmbeddedDatabase } from './embedded/find-database.js';
import { openEmbeddedDatabase } from './embedded/pglite.js';

// int8 (count(*), bigint ids) as a JS number: every count this job reads fits in 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));

/**
 * Kysely over a pg.Pool. JIT is off for these sessions: on PostgreSQL 15 it fired on the
 * set-based jsonb upserts and made each write ~30x slower (~60 ms instead of ~2 ms, measured on PostgreSQL 15).
 */
export function createDb(databaseUrl: string, options: { poolSize?: number } = {}): Kysely<Database> {
  const pool = new pg.Pool({
    connectionString: databaseUrl,
    max: options.poolSize ?? 4,
    options: '-c jit=off',
    application_name: 'auth0-refresh-token-sync',
    connectionTimeoutMillis: 10_000,
  });
  // A client that loses its connection between queries (the idle pool's, or the one holding the
  // run lock) emits 'error'; without a listener that would crash the process. The next query
  // on it fails instead, where the error can be handled.
  pool.on('error', () => {});
  pool.on('connect', (client) => client.on('error', () => {}));
  return new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
}

export interface OpenDatabase {
  db: Kysely<Database>;
  /** True for the embedded database: this process owns it (a directory lock), no run lock needed. */
  ownsDatabase: boolean;
  close(): Promise<void>;
}

/** How a command opens the database. */
export interface OpenOptions {
  poolSize?: number;
  command: string;
  notice: (line: string) => void;
  /**
   * The command only reads (`status`, `migrate --list`): an embedded directory that holds no
   * database yet is refused (`data_dir_empty`) instead of created.
   */
  existing?: boolean;
  /** Where the demo keeps its database (DEMO_DATA_DIR), named when `existing` finds none. */
  demoDataDir?: string;
}

/**
 * The server at DATABASE_URL, or, when it is unset, the embedded database in PGLITE_DATA_DIR
 * (locked to this process; another process gets RunLockedError). `notice` receives the one line
 * that says the embedded database is in use and how to point at a server.
 */
export async function openDatabase(config: DatabaseConfig, options: OpenOptions): Promise<OpenDatabase> {
  if (config.databaseUrl) {
    const db = createDb(config.databaseUrl, options);
    return { db, ownsDatabase: false, close: () => db.destroy() };
  }
  if (options.existing && !hasEmbeddedDatabase(config.dataDir)) throw noEmbeddedDatabase(config.dataDir, options.demoDataDir);
  options.notice(`DATABASE_URL is not set: using the embedded PostgreSQL (PGlite) in ${config.dataDir}. Set DATABASE_URL=postgres://… to use a server.`);
  const embedded = await openEmbeddedDatabase(config.dataDir, options.command);
  return { ...embedded, ownsDatabase: true };
}
