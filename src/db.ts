import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { Database } from './database.js';

// int8 (count(*), bigint ids) as a JS number: every count this job reads fits in 2^53.
pg.types.setTypeParser(pg.types.builtins.INT8, (value) => Number(value));

/**
 * Kysely over a pg.Pool. JIT is off for these sessions: on PostgreSQL 15 it fired on the
 * set-based jsonb upserts and made each write ~30x slower (TOOLCHAIN.md).
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
