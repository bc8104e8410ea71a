import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { expect, it } from '@jest/globals';
import { sql } from 'kysely';
import { dumpSchema, SNAPSHOT_PATH } from '../../scripts/schema-snapshot.js';
import { describeServer } from '../helpers/db.js';
import { sharedDatabase } from '../helpers/fixtures.js';

/**
 * migrations/schema.sql is the schema the migrations make (issue #20): a migration that changes
 * the schema without `npm run schema` fails here, and so in CI. pg_dump comes with PostgreSQL
 * (CI installs it); without a server (the embedded fallback) this is skipped.
 */
const hasPgDump = (() => {
  try {
    execFileSync('pg_dump', ['--version']);
    return true;
  } catch {
    return process.env.CI === 'true'; // CI must have it: fail below rather than skip
  }
})();

const itWithPgDump = hasPgDump ? it : it.skip;

describeServer('migrations/schema.sql', () => {
  const { withDatabase } = sharedDatabase();

  itWithPgDump('is what the migrations make (regenerate it with npm run schema)', () =>
    withDatabase(async (t) => {
      expect(await dumpSchema(t.url!)).toBe(readFileSync(SNAPSHOT_PATH, 'utf8'));
    }),
  );

  itWithPgDump('would catch a schema change', () =>
    withDatabase(async (t) => {
      await sql`alter table auth0.users add column probe text`.execute(t.db);
      try {
        expect(await dumpSchema(t.url!)).not.toBe(readFileSync(SNAPSHOT_PATH, 'utf8'));
      } finally {
        await sql`alter table auth0.users drop column probe`.execute(t.db);
      }
    }),
  );
});
