import { describe, expect, it } from '@jest/globals';
import { sql } from 'kysely';
import type { NewSyncRun } from '../../src/warehouse/schema.js';
import { formatStatus, toStatusJson } from '../../src/status/format-status.js';
import { readStatus, statusExitCode, UnknownTenantError, type StatusReport, type TenantStatus } from '../../src/status/read-status.js';
import { loadUsers, sourceOf, type TestDatabase } from '../helpers/db.js';
import { sharedDatabase } from '../helpers/fixtures.js';

const source = sourceOf('auth0.users', 'user_id');
const now = new Date('2026-11-26T12:00:00Z');
const at = (time: string) => new Date(`2026-11-26T${time}Z`);
/** The tenant every test writes, unless it says otherwise. */
const TENANT = 'prod-eu';

type RunValues = Omit<NewSyncRun, 'trigger' | 'tenant'> & { trigger?: NewSyncRun['trigger']; tenant?: string };

async function insertRun(t: TestDatabase, run: RunValues): Promise<number> {
  const { id } = await t.db
    .insertInto('auth0.sync_runs')
    .values({ trigger: 'schedule', tenant: TENANT, ...run })
    .returning('id')
    .executeTakeFirstOrThrow();
  return id;
}

/** The test database's users of `tenant` (TENANT unless said). */
const addUsers = (t: TestDatabase, userIds: string[], tenant = TENANT) => loadUsers(t.db, userIds, tenant);

/** The one tenant's section of a report that has one. */
function only(report: StatusReport): TenantStatus {
  expect(report.tenants.map((s) => s.tenant)).toEqual([TENANT]);
  return report.tenants[0]!;
}

// One database for the file, emptied for each test (withEmptyDatabase).
const { withEmptyDatabase } = sharedDatabase();

describe('readStatus and formatStatus', () => {
  it('reports an empty warehouse without failing: no tenant yet', () =>
    withEmptyDatabase(async (t) => {
      const report = await readStatus(t.db, source, { now });
      expect(report).toEqual({ generatedAt: now, tenants: [] });
      expect(formatStatus(report)).toEqual([
        'Sync status at 2026-11-26 12:00:00 UTC',
        'No tenant yet: the warehouse holds no run, log checkpoint or user. Run npm run sync.',
      ]);
      expect(statusExitCode(report)).toBe(0);
      expect(toStatusJson(report)).toEqual({ version: 2, generatedAt: now.toISOString(), exitCode: 0, tenants: [] });
      // A tenant asked for by name that the warehouse does not hold: a sentence, not an empty section.
      const error = await readStatus(t.db, source, { now, tenants: ['prod-eu'] }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UnknownTenantError);
      expect(error).toMatchObject({ code: 'unknown_tenant', message: 'No tenant "prod-eu" in the warehouse; it holds none yet (run `npm run sync` first).' });
    }));

  it('reports a tenant whose users were imported but never synced, under its name', () =>
    withEmptyDatabase(async (t) => {
      await addUsers(t, ['auth0|u1']);
      const report = await readStatus(t.db, source, { now });
      expect(report).toEqual({
        generatedAt: now,
        tenants: [
          {
            tenant: TENANT,
            runs: [],
            failingUsers: [],
            failingTotal: 0,
            staleness: {
              known: true,
              source: 'auth0.users.user_id',
              sourceUsers: 1,
              neverSynced: 1,
              oldestSuccessAt: null,
              oldestSuccessUserId: null,
            },
            deletions: { hours: 24, total: 0, byReason: {}, unexplained: 0 },
          },
        ],
      });
      expect(only(report).lastFinished).toBeUndefined();
      const lines = formatStatus(report);
      // One tenant: the text as before tenants, under its name.
      expect(lines.slice(0, 4)).toEqual(['Sync status at 2026-11-26 12:00:00 UTC', '', `Tenant ${TENANT}`, 'Last finished run: none yet']);
      const text = lines.join('\n');
      expect(text).toContain('Recent runs: none yet');
      expect(text).toContain('Failing users: none');
      expect(text).toContain('  oldest last success: none yet');
      expect(text).not.toContain('Tenants:');
      expect(statusExitCode(report)).toBe(0);
    }));

  it('lists recent runs, failing users and staleness', () =>
    withEmptyDatabase(async (t) => {
      await addUsers(t, ['auth0|u1', 'auth0|u2', 'auth0|u3', 'auth0|u4', 'auth0|u5']);
      await insertRun(t, {
        trigger: 'backfill',
        status: 'failed',
        started_at: new Date('2026-11-25T10:00:00Z'),
        finished_at: new Date('2026-11-25T10:00:01.200Z'),
        error: 'x'.repeat(150),
      });
      const succeeded = await insertRun(t, {
        status: 'succeeded',
        started_at: at('06:00:00'),
        finished_at: at('08:05:00'),
        users_total: 5,
        users_synced: 5,
        tokens_seen: 10,
        tokens_added: 10,
        requests: 7,
      });
      const partial = await insertRun(t, {
        trigger: 'manual',
        status: 'partial',
        started_at: at('11:00:00'),
        finished_at: at('11:12:03'),
        users_total: 5,
        users_synced: 3,
        users_not_found: 1,
        users_failed: 1,
        tokens_seen: 8,
        tokens_added: 1,
        tokens_changed: 2,
        tokens_deleted: 3,
        requests: 12,
        error: '1 user failed\n    at somewhere (file.ts:1:1)',
        tokens_endpoint: 'users',
      });
      const running = await insertRun(t, { status: 'running', started_at: at('11:59:14.400'), users_total: 5, users_synced: 1 });

      await t.db
        .insertInto('auth0.user_sync_state')
        .values([
          { tenant: TENANT, user_id: 'auth0|u1', status: 'synced', last_attempt_at: at('11:00:00'), last_success_at: at('11:00:00') },
          {
            tenant: TENANT,
            user_id: 'auth0|u2',
            status: 'failed',
            last_attempt_at: at('11:10:00'),
            last_success_at: at('08:48:00'),
            error_code: 'auth0_timeout',
            error: 'Request timed out after 30000 ms',
          },
          {
            tenant: TENANT,
            user_id: 'auth0|u3',
            status: 'failed',
            last_attempt_at: at('11:11:00'),
            error_code: 'auth0_server_error',
            error: 'Auth0 answered 503\nbody: <html>',
          },
          { tenant: TENANT, user_id: 'auth0|u4', status: 'not_found', last_attempt_at: at('11:00:00') },
          // Not (or no longer) in the source: counts as failing, but not for staleness.
          {
            tenant: TENANT,
            user_id: 'auth0|gone',
            status: 'failed',
            last_attempt_at: at('11:12:00'),
            last_success_at: new Date('2026-01-01T00:00:00Z'),
            error_code: 'internal',
            error: `bad \u001b[31mred\u001b[0m ${'y'.repeat(200)}`,
          },
        ])
        .execute();

      const report = await readStatus(t.db, source, { now, runs: 3, failing: 2 });

      expect(only(report).runs.map((run) => [run.id, run.status])).toEqual([
        [running, 'running'],
        [partial, 'partial'],
        [succeeded, 'succeeded'],
      ]);
      expect(only(report).runs[1]).toEqual({
        id: partial,
        trigger: 'manual',
        status: 'partial',
        startedAt: at('11:00:00'),
        finishedAt: at('11:12:03'),
        usersTotal: 5,
        usersSynced: 3,
        usersNotFound: 1,
        usersFailed: 1,
        tokensSeen: 8,
        tokensHeld: 0,
        tokensAdded: 1,
        tokensChanged: 2,
        tokensDeleted: 3,
        usersGoneUnexplained: 0,
        tokensUnexplained: 0,
        sessionsSeen: 0,
        sessionsHeld: 0,
        sessionsAdded: 0,
        sessionsDeleted: 0,
        sessionsUnexplained: 0,
        requests: 12,
        error: '1 user failed …',
        tokensEndpoint: 'users',
      });
      expect(only(report).lastFinished?.id).toBe(partial);

      expect(only(report).failingTotal).toBe(3);
      expect(only(report).failingUsers.map((user) => user.userId)).toEqual(['auth0|gone', 'auth0|u3']);
      const gone = only(report).failingUsers[0]!;
      expect(gone.error).toHaveLength(100);
      expect(gone.error).toMatch(/^bad red y+…$/);
      expect(only(report).failingUsers[1]).toEqual({
        userId: 'auth0|u3',
        errorCode: 'auth0_server_error',
        error: 'Auth0 answered 503 …',
        lastAttemptAt: at('11:11:00'),
        lastSuccessAt: null,
        lastRunId: null,
      });

      expect(only(report).staleness).toEqual({
        known: true,
        source: 'auth0.users.user_id',
        sourceUsers: 5,
        neverSynced: 3, // u3 (failed), u4 (not found), u5 (no row)
        oldestSuccessAt: at('08:48:00'),
        oldestSuccessUserId: 'auth0|u2',
      });

      const lines = formatStatus(report);
      const text = lines.join('\n');
      expect(text).toContain(`Last finished run: #${partial} partial, 47 min 57 s ago (status exit code 2)`);
      expect(text).toContain('Recent runs (newest first, times UTC): 3');
      expect(text).toContain(
        '  id  trigger   status     started              duration            users synced/not found/failed of total' +
          '  tokens seen/added/changed/deleted  requests  endpoint  error',
      );
      expect(text).toContain(`  ${running}  schedule  running    2026-11-26 11:59:14  running for 45.6 s  1/0/0 of 5                              0/0/0/0`);
      expect(text).toContain(
        `  ${partial}  manual    partial    2026-11-26 11:00:00  12 min 3 s          3/1/1 of 5                              8/1/2/3` +
          '                                  12  users     1 user failed …',
      );
      expect(text).toContain('schedule  succeeded  2026-11-26 06:00:00  2 h 5 min           5/0/0 of 5');
      expect(text).toMatch(/ 10\/10\/0\/0 + 7  -\n/);
      expect(text).toContain('Failing users: 3 (showing the 2 most recent), most recent attempt first');
      expect(text).toContain('  auth0|u3    auth0_server_error  2026-11-26 11:11:00  never                Auth0 answered 503 …');
      expect(text).toContain('  auth0|gone  internal            2026-11-26 11:12:00  2026-01-01 00:00:00  bad red yyy');
      expect(text).not.toContain('\u001b');
      expect(text).toContain('Staleness (source auth0.users.user_id)');
      expect(text).toContain('  source users:        5');
      expect(text).toContain('  never synced:        3');
      expect(text).toContain('  oldest last success: 2026-11-26 08:48:00 UTC, 3 h 12 min ago (auth0|u2)');
      expect(lines.every((line) => line === line.trimEnd())).toBe(true);

      // A later clock moves the running duration and the ages.
      const later = formatStatus(report, new Date('2026-11-27T15:00:00Z')).join('\n');
      expect(later).toContain('running for 1 d 3 h');
      expect(later).toContain('2026-11-26 08:48:00 UTC, 1 d 6 h ago (auth0|u2)');
    }));

  it('joins a custom, quoted source table on its column as text', () =>
    withEmptyDatabase(async (t) => {
      await sql`create schema "Crm"`.execute(t.db);
      await sql`create table "Crm"."People" ("Auth0Id" text, name text)`.execute(t.db);
      await sql`insert into "Crm"."People" values ('b', 'x'), (null, 'y'), ('', 'z'), ('a', 'w'), ('a', 'dup'), ('c', 'v')`.execute(t.db);
      await t.db
        .insertInto('auth0.user_sync_state')
        .values([
          { tenant: TENANT, user_id: 'a', status: 'synced', last_attempt_at: at('10:00:00'), last_success_at: at('10:00:00') },
          { tenant: TENANT, user_id: 'b', status: 'failed', last_attempt_at: at('10:00:00'), last_success_at: at('09:00:00') },
          { tenant: TENANT, user_id: 'c', status: 'failed', last_attempt_at: at('10:00:00') },
        ])
        .execute();
      const report = await readStatus(t.db, sourceOf('Crm.People', 'Auth0Id'), { now });
      expect(only(report).staleness).toEqual({
        known: true,
        source: 'Crm.People.Auth0Id',
        sourceUsers: 3,
        neverSynced: 1,
        oldestSuccessAt: at('09:00:00'),
        oldestSuccessUserId: 'b',
      });
    }));

  it('leaves users import-users marked removed out of the staleness', () =>
    withEmptyDatabase(async (t) => {
      await addUsers(t, ['auth0|kept', 'auth0|removed']);
      await sql`update auth0.users set removed_at = now() where user_id = 'auth0|removed'`.execute(t.db);
      const report = await readStatus(t.db, source, { now });
      expect(only(report).staleness).toMatchObject({ sourceUsers: 1, neverSynced: 1 });
    }));

  it('reports staleness as unknown when the source table or column is missing', () =>
    withEmptyDatabase(async (t) => {
      await insertRun(t, { status: 'failed', started_at: at('10:00:00'), finished_at: at('10:00:01'), error: 'source gone' });
      const report = await readStatus(t.db, sourceOf('nope.users', 'user_id'), { now });
      expect(only(report).staleness).toEqual({
        known: false,
        source: 'nope.users.user_id',
        reason: expect.stringContaining('The source table nope.users does not exist'),
      });
      expect(only(report).runs).toHaveLength(1);
      const text = formatStatus(report).join('\n');
      expect(text).toContain('Staleness (source nope.users.user_id): unknown');
      expect(text).toContain('  The source table nope.users does not exist; set SOURCE_USERS_TABLE');

      const noColumn = await readStatus(t.db, sourceOf('auth0.users', 'uid'), { now });
      expect(only(noColumn).staleness).toMatchObject({ known: false, reason: expect.stringContaining('has no column uid') });
    }));
});

describe('several tenants', () => {
  /** Two tenants side by side: prod-eu's last run failed, prod-us's was partial, each with its users and failures. */
  async function twoTenants(t: TestDatabase) {
    await addUsers(t, ['auth0|a', 'auth0|b']);
    await addUsers(t, ['auth0|a', 'auth0|c', 'auth0|d'], 'prod-us'); // the same ID in two tenants is two users
    const eu = await insertRun(t, { status: 'failed', started_at: at('10:00:00'), finished_at: at('10:01:00'), error: 'eu broke' });
    const us = await insertRun(t, { tenant: 'prod-us', status: 'partial', started_at: at('11:00:00'), finished_at: at('11:02:00'), users_total: 3 });
    await t.db
      .insertInto('auth0.user_sync_state')
      .values([
        { tenant: TENANT, user_id: 'auth0|a', status: 'synced', last_attempt_at: at('10:00:00'), last_success_at: at('10:00:00') },
        { tenant: 'prod-us', user_id: 'auth0|a', status: 'failed', last_attempt_at: at('11:00:00'), error_code: 'auth0_timeout', error: 'slow' },
        { tenant: 'prod-us', user_id: 'auth0|c', status: 'failed', last_attempt_at: at('11:01:00'), error_code: 'auth0_timeout', error: 'slow' },
      ])
      .execute();
    await t.db
      .insertInto('auth0.log_checkpoint')
      .values({ tenant: 'prod-us', log_id: '77', last_entry_date: at('11:00:00'), lag_seconds: 0, updated_at: at('11:30:00') })
      .execute();
    await t.db
      .insertInto('auth0.refresh_token_changes')
      .values({ tenant: 'prod-us', token_id: 'rt_1', user_id: 'auth0|a', change: 'deleted', reason: 'unexplained', observed_at: at('11:01:00') })
      .execute();
    return { eu, us };
  }

  it('shows a section per tenant, each counting only its own rows, and the worst exit code', () =>
    withEmptyDatabase(async (t) => {
      const { eu, us } = await twoTenants(t);
      const report = await readStatus(t.db, source, { now });
      expect(report.tenants.map((s) => s.tenant)).toEqual(['prod-eu', 'prod-us']);
      const [euStatus, usStatus] = report.tenants;
      expect(euStatus).toMatchObject({
        runs: [{ id: eu, status: 'failed' }],
        lastFinished: { id: eu },
        failingTotal: 0,
        staleness: { known: true, sourceUsers: 2, neverSynced: 1, oldestSuccessAt: at('10:00:00'), oldestSuccessUserId: 'auth0|a' },
      });
      expect(euStatus!.logs).toBeUndefined();
      expect(euStatus!.deletions).toEqual({ hours: 24, total: 0, byReason: {}, unexplained: 0 });
      expect(usStatus!.deletions).toEqual({ hours: 24, total: 1, byReason: { unexplained: 1 }, unexplained: 1 });
      expect(usStatus).toMatchObject({
        runs: [{ id: us, status: 'partial' }],
        failingTotal: 2,
        failingUsers: [{ userId: 'auth0|c' }, { userId: 'auth0|a' }],
        staleness: { known: true, sourceUsers: 3, neverSynced: 3, oldestSuccessAt: null },
        logs: { logId: '77', lagSeconds: 0 },
      });
      expect(statusExitCode(euStatus!)).toBe(1);
      expect(statusExitCode(usStatus!)).toBe(2);
      expect(statusExitCode(report)).toBe(1); // one alert for both: the worst

      const lines = formatStatus(report);
      expect(lines.slice(0, 5)).toEqual([
        'Sync status at 2026-11-26 12:00:00 UTC',
        'Tenants: 2 (prod-eu, prod-us); status exit code 1, the worst of them',
        '',
        'Tenant prod-eu',
        `Last finished run: #${eu} failed, 1 h 59 min ago (status exit code 1)`,
      ]);
      const usAt = lines.indexOf('Tenant prod-us');
      expect(usAt).toBeGreaterThan(5);
      expect(lines[usAt - 1]).toBe('');
      expect(lines[usAt + 1]).toBe(`Last finished run: #${us} partial, 58 min ago (status exit code 2)`);
      expect(lines.slice(usAt).join('\n')).toContain('Failing users: 2, most recent attempt first');
      expect(lines.slice(0, usAt).join('\n')).toContain('Failing users: none');
      expect(lines.slice(usAt).join('\n')).toContain('Log follower: checkpoint 77');

      const json = toStatusJson(report);
      expect(json).toMatchObject({ version: 2, exitCode: 1, generatedAt: now.toISOString() });
      const tenants = json.tenants as Record<string, unknown>[];
      expect(tenants.map((s) => [s.tenant, s.exitCode, s.failingTotal])).toEqual([
        ['prod-eu', 1, 0],
        ['prod-us', 2, 2],
      ]);
      // Inside each tenant, version 1's fields by their names.
      expect(Object.keys(tenants[0]!)).toEqual([
        'tenant',
        'exitCode',
        'lastFinished',
        'runs',
        'failingTotal',
        'failingUsers',
        'staleness',
        'logFollower',
        'deletions',
      ]);
    }));

  it('narrows to the tenants asked for, and names the tenants it holds when one is unknown', () =>
    withEmptyDatabase(async (t) => {
      const { us } = await twoTenants(t);
      const report = await readStatus(t.db, source, { now, tenants: ['prod-us'] });
      expect(report.tenants.map((s) => [s.tenant, s.runs.map((r) => r.id)])).toEqual([['prod-us', [us]]]);
      expect(statusExitCode(report)).toBe(2);
      expect(formatStatus(report).slice(0, 3)).toEqual(['Sync status at 2026-11-26 12:00:00 UTC', '', 'Tenant prod-us']);
      // In the order asked, each once.
      const both = await readStatus(t.db, source, { now, tenants: ['prod-us', 'prod-eu', 'prod-us'] });
      expect(both.tenants.map((s) => s.tenant)).toEqual(['prod-us', 'prod-eu']);

      const error = await readStatus(t.db, source, { now, tenants: ['prod-us', 'staging', 'prod-au'] }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(UnknownTenantError);
      expect(error).toMatchObject({
        code: 'unknown_tenant',
        unknown: ['staging', 'prod-au'],
        known: ['prod-eu', 'prod-us'],
        message: 'No tenant "staging", "prod-au" in the warehouse; it holds tenants "prod-eu", "prod-us".',
      });
    }));

  it("reads a tenant's own source table for its staleness", () =>
    withEmptyDatabase(async (t) => {
      await twoTenants(t);
      await sql`create table public.us_people (uid text)`.execute(t.db);
      await sql`insert into public.us_people values ('auth0|a'), ('auth0|z')`.execute(t.db);
      const report = await readStatus(t.db, source, { now, sources: { 'prod-us': sourceOf('public.us_people', 'uid') } });
      expect(report.tenants.map((s) => [s.tenant, s.staleness])).toEqual([
        ['prod-eu', expect.objectContaining({ source: 'auth0.users.user_id', sourceUsers: 2 })],
        ['prod-us', expect.objectContaining({ source: 'public.us_people.uid', sourceUsers: 2, neverSynced: 2 })],
      ]);
    }));
});

describe('statusExitCode', () => {
  const exitCode = async (t: TestDatabase) => statusExitCode(await readStatus(t.db, source, { now }));

  it('is 0 before any run', () =>
    withEmptyDatabase(async (t) => {
      expect(await exitCode(t)).toBe(0);
    }));

  it('is 0 when the last finished run succeeded, even after an older failure', () =>
    withEmptyDatabase(async (t) => {
      await insertRun(t, { status: 'failed', started_at: at('08:00:00'), finished_at: at('08:01:00') });
      await insertRun(t, { status: 'succeeded', started_at: at('09:00:00'), finished_at: at('09:01:00') });
      expect(await exitCode(t)).toBe(0);
    }));

  it('is 1 when the last finished run failed', () =>
    withEmptyDatabase(async (t) => {
      await insertRun(t, { status: 'succeeded', started_at: at('08:00:00'), finished_at: at('08:01:00') });
      await insertRun(t, { status: 'failed', started_at: at('09:00:00'), finished_at: at('09:01:00') });
      expect(await exitCode(t)).toBe(1);
    }));

  it('is 2 when the last finished run was partial', () =>
    withEmptyDatabase(async (t) => {
      await insertRun(t, { status: 'failed', started_at: at('08:00:00'), finished_at: at('08:01:00') });
      await insertRun(t, { status: 'partial', started_at: at('09:00:00'), finished_at: at('09:01:00') });
      expect(await exitCode(t)).toBe(2);
    }));

  it('ignores a run still in progress: a running run after a failed one is still 1', () =>
    withEmptyDatabase(async (t) => {
      await insertRun(t, { status: 'failed', started_at: at('08:00:00'), finished_at: at('08:01:00') });
      await insertRun(t, { status: 'running', started_at: at('09:00:00') });
      const report = await readStatus(t.db, source, { now, runs: 1 });
      expect(only(report).runs.map((run) => run.status)).toEqual(['running']);
      expect(only(report).lastFinished?.status).toBe('failed');
      expect(statusExitCode(report)).toBe(1);
    }));
});

describe('formatStatus with hostile stored text', () => {
  it('strips control characters and bidi overrides from user IDs, codes, errors and the source name', () =>
    withEmptyDatabase(async (t) => {
      await insertRun(t, { status: 'partial', started_at: at('10:00:00'), finished_at: at('10:01:00'), error: 'bad \u001b[2J\u001b]0;title\u0007answer' });
      await t.db
        .insertInto('auth0.user_sync_state')
        .values({
          tenant: TENANT,
          user_id: 'auth0|\u001b[31mevil\u202eexe.txt',
          status: 'failed',
          last_attempt_at: at('10:00:30'),
          error_code: 'code\u0007',
          error: 'The user ID \u001b[1mx\u001b[0m failed',
        })
        .execute();
      const report = await readStatus(t.db, sourceOf('crm.\u001b[5mpeople', 'user_id'), { now });
      const text = formatStatus(report).join('\n');
      expect(text).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
      expect(text).toContain('auth0|evilexe.txt');
      expect(text).toContain('bad answer');
      expect(text).toContain('The user ID x failed');
      expect(text).toContain('Staleness (source crm.people.user_id): unknown');
    }));
});

describe('the log follower section', () => {
  async function storeCheckpoint(t: TestDatabase, values: Partial<Record<string, unknown>> = {}) {
    await t.db
      .insertInto('auth0.log_checkpoint')
      .values({
        tenant: TENANT,
        log_id: '900',
        last_entry_date: at('10:00:00'),
        newest_log_id: '905',
        newest_entry_date: at('11:00:00'),
        lag_seconds: 3600,
        updated_at: at('11:59:00'),
        history_lost_at: at('10:30:00'),
        history_lost_reason: 'retention_gap',
        ...values,
      })
      .execute();
  }

  it('shows the lag behind the newest entry, and a full pass due with its reason until a full pass (not a budgeted run) begins after the loss', () =>
    withEmptyDatabase(async (t) => {
      await storeCheckpoint(t);
      // A budgeted run after the loss, and a full pass before it: neither clears it.
      await insertRun(t, { trigger: 'manual', status: 'succeeded', started_at: at('11:00:00'), finished_at: at('11:01:00'), full_pass: false });
      await insertRun(t, { trigger: 'schedule', status: 'succeeded', started_at: at('09:00:00'), finished_at: at('09:30:00'), full_pass: true });
      let report = await readStatus(t.db, source, { now });
      expect(only(report).logs).toMatchObject({
        fullPassDue: true,
        lastFullPassAt: at('09:00:00'),
        historyLostReason: 'retention_gap',
        lagSeconds: 3600,
        newestLogId: '905',
      });
      const text = formatStatus(report).join('\n');
      expect(text).toContain('last entry 2026-11-26 10:00:00 UTC, lag 1 h behind the newest entry (2026-11-26 11:00:00 UTC)');
      expect(text).toContain(
        'full pass due: log history was lost at 2026-11-26 10:30:00 UTC (retention dropped entries after the checkpoint before they were read); run npm run sync',
      );
      expect((toStatusJson(report).tenants as Record<string, unknown>[])[0]!.logFollower).toMatchObject({
        fullPassDue: true,
        historyLostAt: '2026-11-26T10:30:00.000Z',
        historyLostReason: 'retention_gap',
        newestLogId: '905',
        newestEntryDate: '2026-11-26T11:00:00.000Z',
        lagSeconds: 3600,
      });

      await insertRun(t, { trigger: 'schedule', status: 'partial', started_at: at('11:30:00'), finished_at: at('11:40:00'), full_pass: true });
      report = await readStatus(t.db, source, { now });
      expect(only(report).logs).toMatchObject({ fullPassDue: false, lastFullPassAt: at('11:30:00') });
      expect(formatStatus(report).join('\n')).not.toContain('full pass due');
    }));

  it('says caught up at lag 0, and prints a hostile stored id without control characters', () =>
    withEmptyDatabase(async (t) => {
      await storeCheckpoint(t, { log_id: '\u001b[2J900\u0007', lag_seconds: 0, history_lost_at: null, history_lost_reason: null });
      const report = await readStatus(t.db, source, { now });
      const text = formatStatus(report).join('\n');
      expect(text).toContain('lag 0 (caught up)');
      expect(text).toContain('Log follower: checkpoint 900,');
      expect(text).not.toMatch(/[\u0007\u001b]/); // (a NUL cannot even be stored: PostgreSQL refuses it in text)
    }));
});
