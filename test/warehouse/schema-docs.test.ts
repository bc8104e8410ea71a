import { describe, expect, it } from '@jest/globals';
import { sql } from 'kysely';
import type { TestDatabase } from '../helpers/db.js';
import { sharedDatabase } from '../helpers/fixtures.js';

/**
 * The rule since migration 2026_12_01_1800_schema_docs_forensics: every table, view, column and
 * function of schema auth0 carries a comment (what docs/warehouse.md "Schema" and docs/reporting.md
 * say), so a migration that adds one comments it.
 */
const { withDatabase } = sharedDatabase();

/** `table.column` of every column of schema auth0 without a comment. */
async function uncommentedColumns(t: TestDatabase): Promise<string[]> {
  const { rows } = await sql<{ name: string }>`
    select c.table_name || '.' || c.column_name as name
    from information_schema.columns c
    where c.table_schema = 'auth0' and c.table_name not like 'kysely_migration%'
      and coalesce(col_description(format('%I.%I', c.table_schema, c.table_name)::regclass, c.ordinal_position), '') = ''
    order by 1`.execute(t.db);
  return rows.map((r) => r.name);
}

describe('schema docs', () => {
  it('comments every table, view and column of schema auth0 (kysely_migration* aside)', () =>
    withDatabase(async (t) => {
      expect(await uncommentedColumns(t)).toEqual([]);
      const { rows: relations } = await sql<{ name: string }>`
      select c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = 'auth0' and c.relkind in ('r', 'v', 'm', 'p') and c.relname not like 'kysely_migration%'
        and coalesce(obj_description(c.oid, 'pg_class'), '') = ''
      order by 1`.execute(t.db);
      expect(relations.map((r) => r.name)).toEqual([]);
      const { rows: functions } = await sql<{ name: string }>`
      select p.proname as name from pg_proc p join pg_namespace n on n.oid = p.pronamespace
      where n.nspname = 'auth0' and coalesce(obj_description(p.oid, 'pg_proc'), '') = ''`.execute(t.db);
      expect(functions).toEqual([]);
    }));

  it('catches a column added without a comment', () =>
    withDatabase(async (t) => {
      await sql`alter table auth0.users add column probe text`.execute(t.db);
      try {
        expect(await uncommentedColumns(t)).toEqual(['users.probe']);
      } finally {
        await sql`alter table auth0.users drop column probe`.execute(t.db);
      }
    }));

  it('sees the view columns too', () =>
    withDatabase(async (t) => {
      const { rows } = await sql<{ n: number }>`
      select count(*)::int as n from information_schema.columns where table_schema = 'auth0' and table_name = 'recent_token_changes'`.execute(t.db);
      expect(rows[0]?.n).toBe(14);
    }));
});
