// Plain JavaScript: Jest loads globalSetup outside its module mapper, so this file imports
// nothing from src/ (the embedded template is prepared by test/helpers/db.ts instead).
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import pg from 'pg';

const ADMIN_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres:postgres@127.0.0.1:5432/postgres';

/**
 * The test files that only run against a server (they need several processes on one database,
 * or the server itself), found by what they call: `itServer(` and `describeServer(` from
 * test/helpers/db.ts skip on the embedded fallback. Derived, so the message never goes stale.
 */
function serverOnlyFiles() {
  const root = path.resolve(import.meta.dirname, '..');
  return readdirSync(path.join(root, 'test'), { recursive: true })
    .map((file) => path.posix.join('test', String(file).split(path.sep).join('/')))
    .filter((file) => file.endsWith('.test.ts') && /\b(?:itServer|describeServer)\(/.test(readFileSync(path.join(root, file), 'utf8')))
    .sort();
}

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
      `These files skip the tests that need a server; run them against one (docker compose up -d postgres):\n  ${serverOnlyFiles().join('\n  ')}\n\n`,
  );
}
