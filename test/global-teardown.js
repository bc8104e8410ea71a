import { readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';

const ADMIN_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres:postgres@127.0.0.1:5432/postgres';

/**
 * Remove what test/helpers/db.ts made for the run: the migrated template databases on the server
 * and the per-worker embedded templates.
 */
export default async function globalTeardown() {
  if (process.env.TEST_DB_MODE === 'server' && process.env.KEEP_TEST_DB !== '1') {
    const client = new pg.Client({ connectionString: ADMIN_URL });
    await client.connect();
    try {
      const prefix = `rt_template_${process.env.TEST_RUN_ID}_`;
      const { rows } = await client.query(`select datname from pg_database where starts_with(datname, $1)`, [prefix]);
      for (const { datname } of rows) {
        await client.query(`alter database ${datname} with is_template false`);
        await client.query(`drop database if exists ${datname} with (force)`);
      }
    } finally {
      await client.end();
    }
  }
  const entries = await readdir(os.tmpdir()).catch(() => []);
  await Promise.all(
    entries
      .filter((name) => name.startsWith(`rt-pglite-template-${process.env.TEST_RUN_ID}-`))
      .map((name) => rm(path.join(os.tmpdir(), name), { recursive: true, force: true })),
  );
}
