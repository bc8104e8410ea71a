import { Migrator, sql, type Kysely, type MigrationResult } from 'kysely';
import { migrations } from '../../migrations/index.js';
import { plural } from '../core/wording.js';
import { FatalError } from '../core/errors.js';

// eslint-disable-next-line @typescript-eslint/no-explicit-any
function createMigrator(db: Kysely<any>): Migrator {
  return new Migrator({
    db,
    provider: { getMigrations: async () => migrations },
    migrationTableSchema: 'auth0',
  });
}

/**
 * Apply every pending migration, each in its own transaction. Returns Kysely's results
 * (Success, Error or NotExecuted per migration) and the error, if any, instead of throwing.
 *
 * `tenant` is the tenant the configuration points at: migration `2026_12_05_1000_tenants` gives
 * rows from before tenants that name, reading it from the setting `auth0_sync.tenant`. The
 * setting lives on one connection, so the Migrator runs on that one connection.
 */
export async function migrateToLatest(
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  db: Kysely<any>,
  options: { tenant?: string } = {},
): Promise<{ results: MigrationResult[]; error?: unknown }> {
  const { results, error } = await db.connection().execute(async (conn) => {
    await sql`select set_config('auth0_sync.tenant', ${options.tenant ?? ''}, false)`.execute(conn);
    try {
      return await createMigrator(conn).migrateToLatest();
    } finally {
      // The connection goes back to the pool: the name must not outlive this migration (a
      // connection that broke takes the setting with it).
      await sql`select set_config('auth0_sync.tenant', '', false)`.execute(conn).catch(() => {});
    }
  });
  return { results: results ?? [], error };
}

/** Refuse to sync into a schema older than the code: writes would fail half-way otherwise. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function assertMigrated(db: Kysely<any>): Promise<void> {
  const pending = (await listMigrations(db)).filter((m) => m.executedAt === undefined).map((m) => m.name);
  if (pending.length > 0) {
    throw new FatalError(
      'pending_migrations',
      `The database has ${plural(pending.length, 'pending migration')} (${pending.join(', ')}); run \`npm run migrate\` first.`,
    );
  }
}

/** Every migration the code knows, oldest first, with when it was applied (undefined = pending). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function listMigrations(db: Kysely<any>): Promise<{ name: string; executedAt: Date | undefined }[]> {
  const all = await createMigrator(db).getMigrations();
  return all.map((m) => ({ name: m.name, executedAt: m.executedAt }));
}
