// Plain JavaScript: Jest loads globalSetup outside its module mapper, so this file imports
// nothing from src/ (the embedded template is prepared by test/helpers/db.ts instead).
import pg from 'pg';

const ADMIN_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres:postgres@127.0.0.1:5432/postgres';

/** What needs several processes on one database, and so only runs against a server. */
const SERVER_ONLY = [
  'test/cli.test.ts: the CLI in child processes against a database',
  'test/sync/processes.test.ts: concurrent runs, kill -9, SIGTERM',
  'test/sync/reliability.test.ts: the database going away (a proxy to a server)',
  'test/sync/sync.test.ts: counting commits in pg_stat_database',
  'test/worker.test.ts: the lock held by another session, and the worker as a process',
];

/**
 * Decide where the tests' databases live. A PostgreSQL server at TEST_DATABASE_URL (default
 * 127.0.0.1:5432) is used when it answers; without one (a fresh machine), the tests fall back
 * to the embedded PGlite and say what they skip. CI must have the server: there the fallback
 * is an error.
 */
export default async function globalSetup() {
  // Names this run's template database (test/helpers/db.ts), so test runs sharing a server never
  // drop each other's.
  process.env.TEST_RUN_ID ??= `${process.pid}`;
  const client = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 3000 });
  try {
    await client.connect();
    await client.end();
    process.env.TEST_DB_MODE = 'server';
    return;
  } catch (error) {
    await client.end().catch(() => {});
    if (process.env.CI === 'true') throw new Error(`CI needs PostgreSQL at ${new URL(ADMIN_URL).host}: ${error.message}`);
  }
  process.env.TEST_DB_MODE = 'embedded';
  process.stderr.write(
    `\nNo PostgreSQL at ${new URL(ADMIN_URL).host}: running the tests on the embedded PGlite instead.\n` +
      `Skipped here; run them against a server (docker compose up -d postgres):\n  ${SERVER_ONLY.join('\n  ')}\n\n`,
  );
}
