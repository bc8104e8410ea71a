import { describe, expect, it } from '@jest/globals';
import { Migrator, sql } from 'kysely';
import { migrations } from '../../migrations/index.js';
import { pruneHistory } from '../../src/warehouse/history-retention.js';
import { TEST_TENANT, type TestDatabase } from '../helpers/db.js';
import { migrateToLatest } from '../../src/warehouse/migrate.js';
import { sharedDatabase } from '../helpers/fixtures.js';

// Issue #22: migration 2026_12_04_1800_sessions goes down cleanly and up again, and its inet
// columns take CIDR queries.

// One database for the file; each test takes it as the previous one left it (the inserted rows never meet).
const { withDatabase } = sharedDatabase();

const relations = async (t: TestDatabase) =>
  (
    await sql<{ name: string }>`
      select c.relname as name from pg_class c join pg_namespace n on n.oid = c.relnamespace
      where n.nspname = 'auth0' and c.relkind in ('r', 'v') and (c.relname like '%session%' or c.relname like '%second_factor') order by 1`.execute(t.db)
  ).rows.map((r) => r.name);

describe('migration 2026_12_04_1800_sessions', () => {
  it('down drops its tables, views and column; up makes them again', () =>
    withDatabase(async (t) => {
      const made = await relations(t);
      expect(made).toEqual([
        'active_sessions',
        'refresh_tokens_outliving_session',
        'refresh_tokens_with_session',
        'refresh_tokens_without_second_factor',
        'session_changes',
        'sessions',
        'sessions_per_client',
        'sessions_per_device',
      ]);
      const migrator = new Migrator({ db: t.db, provider: { getMigrations: async () => migrations }, migrationTableSchema: 'auth0' });
      const down = await migrator.migrateTo('2026_12_04_1000_follower_bad_day');
      expect(down.error).toBeUndefined();
      // Later migrations go down first; this one last.
      expect(down.results?.every((r) => r.direction === 'Down' && r.status === 'Success')).toBe(true);
      expect(down.results?.at(-1)?.migrationName).toBe('2026_12_04_1800_sessions');
      expect(await relations(t)).toEqual([]);
      const { rows } = await sql`select 1 from information_schema.columns where table_schema = 'auth0' and column_name = 'sessions_synced_at'`.execute(t.db);
      expect(rows).toEqual([]);
      const up = await migrateToLatest(t.db, { tenant: TEST_TENANT });
      expect(up.error).toBeUndefined();
      expect(await relations(t)).toEqual(made);
    }));

  it('takes CIDR queries on the typed addresses, and refuses an address inet does not take', () =>
    withDatabase(async (t) => {
      await sql`insert into auth0.sessions (tenant, id, user_id, last_ip, last_ip_inet, raw) values ('127', 's1', 'u1', '10.1.2.3', '10.1.2.3', '{}'), ('127', 's2', 'u1', '192.168.0.1', '192.168.0.1', '{}'), ('127', 's3', 'u1', 'junk', null, '{}')`.execute(
        t.db,
      );
      const { rows } = await sql<{ id: string }>`select id from auth0.active_sessions where last_ip << '10.0.0.0/8'`.execute(t.db);
      expect(rows.map((r) => r.id)).toEqual(['s1']);
      await expect(
        sql`insert into auth0.sessions (tenant, id, user_id, last_ip_inet, raw) values ('127', 's4', 'u1', 'junk', '{}')`.execute(t.db),
      ).rejects.toThrow(/invalid input syntax for type inet/);
    }));

  it('lets history retention prune old session changes and the runs only sessions name', () =>
    withDatabase(async (t) => {
      const old = sql`now() - interval '10 days'`;
      const { rows } = await sql<{
        id: number;
      }>`insert into auth0.sync_runs (tenant, "trigger", status, started_at) values ('127', 'manual', 'failed', ${old}) returning id`.execute(t.db);
      const runId = rows[0]!.id;
      await sql`insert into auth0.sessions (tenant, id, user_id, raw, first_seen_run_id, last_changed_run_id) values ('127', 'p1', 'u1', '{}', ${runId}, ${runId})`.execute(
        t.db,
      );
      await sql`insert into auth0.session_changes (tenant, session_id, user_id, change, run_id, observed_at) values ('127', 'p1', 'u1', 'created', ${runId}, ${old}), ('127', 'p1', 'u1', 'interacted', null, now())`.execute(
        t.db,
      );
      const pruned = (await pruneHistory(t.db, 3))!;
      expect(pruned).toMatchObject({ sessionChangesDeleted: 1, runsDeleted: 1 });
      const left = await t.db.selectFrom('auth0.session_changes').select('change').execute();
      expect(left).toEqual([{ change: 'interacted' }]);
      const session = await t.db
        .selectFrom('auth0.sessions')
        .select(['first_seen_run_id', 'last_changed_run_id'])
        .where('id', '=', 'p1')
        .executeTakeFirstOrThrow();
      expect(session).toEqual({ first_seen_run_id: null, last_changed_run_id: null });
    }));
});
