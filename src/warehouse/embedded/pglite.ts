import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { Database } from '../schema.js';
import { acquireDirLock, dataDirUnusable } from './dir-lock.js';

export interface EmbeddedDatabase {
  db: Kysely<Database>;
  close(): Promise<void>;
}

/**
 * The embedded PostgreSQL (PGlite, PostgreSQL in WebAssembly) persisted in `dataDir`, under an
 * exclusive lock for this process. It runs behind Kysely's own PostgresDialect through
 * PGlite's node-postgres adapter, so the job runs the same code and gets the same result types
 * as against a server. One connection: statements run one after another.
 */
export async function openEmbeddedDatabase(dataDir: string, command: string): Promise<EmbeddedDatabase> {
  const release = acquireDirLock(dataDir, command);
  try {
    // Loaded only here: it is large, and a server deployment never needs it.
    const { PGlite } = await import('@electric-sql/pglite');
    const { createPgConfig } = await import('@electric-sql/pglite/node-postgres');
    // PGlite does not create parents; it fails with a bare ErrnoError on a directory it cannot
    // write (or a path that is a file): name the directory instead (exit 1, data_dir_unusable).
    const pglite = await mkdir(path.dirname(path.resolve(dataDir)), { recursive: true })
      .then(() => PGlite.create(dataDir))
      .catch((error: unknown) => {
        throw dataDirUnusable(dataDir, error);
      });
    const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool: new pg.Pool({ ...createPgConfig(pglite), max: 1 }) }) });
    return {
      db,
      async close() {
        try {
          await db.destroy();
          await pglite.close();
        } finally {
          release();
        }
      },
    };
  } catch (error) {
    release();
    throw error;
  }
}
