import { describe, expect, it } from '@jest/globals';
import { sql } from 'kysely';
import { main } from '../../src/cli/main.js';
import { connectionIdOf } from '../../sandbox/users-export.js';
import { captureIo, cliDeps, loadUsers, TEST_TENANT, type TestDatabase } from '../helpers/db.js';
import { sharedDatabase } from '../helpers/fixtures.js';
import { envFor, skippingClock, type FakeAuth0 } from '../helpers/fake-auth0.js';

const DB_USERS = Array.from({ length: 40 }, (_, i) => `auth0|u${String(i).padStart(3, '0')}`);
const GOOGLE_USERS = Array.from({ length: 10 }, (_, i) => `google-oauth2|g${String(i).padStart(3, '0')}`);

/** What a test works with: its database, its fake tenant, and helpers bound to both. */
function world(t: TestDatabase, fake: FakeAuth0) {
  async function importUsers(args: string[] = [], extra: Record<string, string> = {}) {
    const out = captureIo();
    // The job's polls (200 ms, doubling) and --timeout pass on a clock that skips its waits.
    const code = await main(['import-users', ...args], envFor(fake, t.url, extra), out.io, { ...cliDeps(t), clock: skippingClock() });
    return { code, ...out, text: [...out.stdout, ...out.stderr].join('\n') };
  }

  const users = () => t.db.selectFrom('auth0.users').selectAll().orderBy('user_id').execute();
  const liveIds = async () => (await users()).filter((u) => u.removed_at === null).map((u) => u.user_id);
  const removedIds = async () => (await users()).filter((u) => u.removed_at !== null).map((u) => u.user_id);
  /** Every row with every column: to prove that a failed import changed nothing. */
  const snapshot = async () => (await sql`select * from auth0.users order by user_id`.execute(t.db)).rows;

  function setTenant(ids: string[]) {
    fake.users.clear();
    for (const id of ids) fake.setUser(id, []);
  }

  return { t, fake, importUsers, users, liveIds, removedIds, snapshot, setTenant };
}

// Each test gets an emptied database (one clone for the file) and a fresh tenant holding the
// export's users, its client without read:logs: a script, an interceptor or a scope never outlives its test.
const { withEmptyDatabaseAndTenant } = sharedDatabase();
function withTenant(use: (w: ReturnType<typeof world>) => Promise<void>): Promise<void> {
  return withEmptyDatabaseAndTenant(
    async (t, fake) => {
      fake.setScope('read:refresh_tokens read:users');
      const w = world(t, fake);
      w.setTenant([...DB_USERS, ...GOOGLE_USERS]);
      await use(w);
    },
    { usersExport: { pollsToComplete: 1 } },
  );
}

describe('npm run import-users', () => {
  it("writes its tenant's users only, and marks removed only its tenant's users the export lacks (issue #23)", () =>
    withTenant(async ({ t, importUsers }) => {
      await loadUsers(t.db, ['auth0|gone']);
      await loadUsers(t.db, ['auth0|gone', 'auth0|other-only', DB_USERS[0]!], 'other');
      const { code, text } = await importUsers();
      expect([code, text]).toEqual([0, expect.stringContaining('Imported 50 users')]);
      const rows = await t.db.selectFrom('auth0.users').select(['tenant', 'user_id', 'removed_at', 'email']).orderBy('tenant').orderBy('user_id').execute();
      const mine = rows.filter((r) => r.tenant === TEST_TENANT);
      expect(mine.map((r) => r.user_id).sort()).toEqual([...DB_USERS, ...GOOGLE_USERS, 'auth0|gone'].sort());
      expect(mine.filter((r) => r.removed_at !== null).map((r) => r.user_id)).toEqual(['auth0|gone']);
      expect(rows.filter((r) => r.tenant === 'other')).toEqual([
        { tenant: 'other', user_id: 'auth0|gone', removed_at: null, email: null },
        { tenant: 'other', user_id: 'auth0|other-only', removed_at: null, email: null },
        { tenant: 'other', user_id: DB_USERS[0], removed_at: null, email: null },
      ]);
    }));

  it('adds every user of the export with its profile fields, and never sends the Authorization header to the download host', () =>
    withTenant(async ({ fake, importUsers, users }) => {
      fake.usersExport.setProfile('auth0|u001', { email: 'alice@example.org', blocked: true, last_login: '2026-11-30T10:00:00.000Z' });
      const { code, stdout, text } = await importUsers([], { LOG_LEVEL: 'info' });
      expect(text).toContain('Imported 50 users');
      expect(code).toBe(0);
      const rows = await users();
      expect(rows.map((u) => u.user_id)).toEqual([...DB_USERS, ...GOOGLE_USERS].sort());
      const alice = rows.find((u) => u.user_id === 'auth0|u001')!;
      expect(alice).toMatchObject({ email: 'alice@example.org', blocked: true, connection: 'Username-Password-Authentication', removed_at: null });
      expect(alice.last_login?.toISOString()).toBe('2026-11-30T10:00:00.000Z');
      expect(alice.created_at).toBeInstanceOf(Date);
      expect(alice.first_imported_at).toEqual(alice.last_imported_at);
      expect(rows.find((u) => u.user_id === GOOGLE_USERS[0])).toMatchObject({ connection: 'google-oauth2' });
      // Progress: percentage and time left on each poll.
      const progress = stdout.filter((l) => l.includes('"users export"')).map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(progress.at(-1)).toMatchObject({ status: 'completed', percentDone: 100, timeLeftSeconds: 0 });
      expect(fake.usersExport.stats.lastJobRequest).toMatchObject({
        format: 'json',
        fields: expect.arrayContaining([
          { name: 'user_id' },
          { name: 'email' },
          { name: 'blocked' },
          { name: 'identities[0].connection', export_as: 'connection' },
        ]),
      });
      expect(fake.usersExport.stats.downloads).toBeGreaterThan(0);
      expect(fake.usersExport.stats.authorizationRefused).toBe(0);
    }));

  it('updates changed profiles, marks removed the users the export no longer holds, and clears removed_at when they return', () =>
    withTenant(async ({ t, fake, importUsers, users, removedIds }) => {
      await loadUsers(t.db, ['auth0|loaded-by-hand']);
      expect((await importUsers()).code).toBe(0);
      expect(await removedIds()).toEqual(['auth0|loaded-by-hand']);
      const before = new Map((await users()).map((u) => [u.user_id, u]));

      fake.deleteUser('auth0|u003');
      fake.setUser('auth0|new', []);
      fake.usersExport.setProfile('auth0|u010', { email: 'changed@example.org' });
      const { code, text } = await importUsers();
      expect(code).toBe(0);
      expect(text).toContain('Imported 50 users');
      expect(text).toMatch(/1 added, 1 updated, 0 returned, 1 marked removed/);
      expect(await removedIds()).toEqual(['auth0|loaded-by-hand', 'auth0|u003']);
      const after = new Map((await users()).map((u) => [u.user_id, u]));
      expect(after.get('auth0|u010')!.email).toBe('changed@example.org');
      expect(after.get('auth0|new')).toMatchObject({ removed_at: null, connection: 'Username-Password-Authentication' });
      const removedAt = after.get('auth0|u003')!.removed_at;

      fake.setUser('auth0|u003', []);
      fake.deleteUser('auth0|new');
      expect((await importUsers()).text).toMatch(/0 added, 0 updated, 1 returned, 1 marked removed/);
      const back = (await users()).find((u) => u.user_id === 'auth0|u003')!;
      expect(back.removed_at).toBeNull();
      expect(back.first_imported_at).toEqual(before.get('auth0|u003')!.first_imported_at);
      expect(back.last_imported_at!.getTime()).toBeGreaterThan(removedAt!.getTime());
      expect(await removedIds()).toEqual(['auth0|loaded-by-hand', 'auth0|new']);
    }));

  it('with --connection exports that connection only, and removes only among its users', () =>
    withTenant(async ({ fake, importUsers, removedIds }) => {
      expect((await importUsers()).code).toBe(0);
      fake.deleteUser('auth0|u000');
      fake.deleteUser(GOOGLE_USERS[0]!);
      const google = connectionIdOf('google-oauth2');
      const { code, text } = await importUsers(['--connection', google]);
      expect(text).toContain('Imported 9 users');
      expect(text).toContain('1 marked removed of connection google-oauth2');
      expect(code).toBe(0);
      expect(fake.usersExport.stats.lastJobRequest).toMatchObject({ connection_id: google });
      expect(await removedIds()).toEqual([GOOGLE_USERS[0]]);
    }));

  it('--dry-run prints what would be added and removed, and writes nothing', () =>
    withTenant(async ({ fake, importUsers, snapshot }) => {
      expect((await importUsers()).code).toBe(0);
      fake.deleteUser('auth0|u005');
      fake.setUser('auth0|zed', []);
      const before = await snapshot();
      const { code, stdout } = await importUsers(['--dry-run']);
      expect(code).toBe(0);
      expect(stdout.join('\n')).toContain(
        'Dry run: the export holds 50 users; would add 1, update 0, restore 0 and mark removed 1 of the 50 held. Nothing was written.',
      );
      expect(stdout).toContain('  would add: auth0|zed');
      expect(stdout).toContain('  would remove: auth0|u005');
      expect(await snapshot()).toEqual(before);
    }));

  it('asks the job again for a fresh link when the download link has expired, and succeeds', () =>
    withTenant(async ({ fake, importUsers, liveIds }) => {
      const stats = fake.usersExport.stats;
      const [downloads, reads, expired] = [stats.downloads, stats.jobReads, stats.expiredRefused];
      fake.usersExport.expireNextDownloads(1);
      const { code, text } = await importUsers();
      expect(text).toContain('Imported 50 users');
      expect(code).toBe(0);
      expect(stats.expiredRefused - expired).toBe(1);
      expect(stats.downloads - downloads).toBe(2);
      expect(stats.jobReads - reads).toBe(2); // one poll, then one more for the fresh link
      expect(await liveIds()).toHaveLength(50);
      expect(stats.authorizationRefused).toBe(0);
    }));

  it('stops with a clear error and changes nothing when the link stays expired', () =>
    withTenant(async ({ fake, importUsers, snapshot }) => {
      expect((await importUsers()).code).toBe(0);
      fake.deleteUser('auth0|u001');
      const before = await snapshot();
      fake.usersExport.expireNextDownloads(10);
      const { code, stderr } = await importUsers();
      expect(code).toBe(1);
      expect(stderr.join('\n')).toMatch(/\[link_expired\].*answered 403.*Request has expired/);
      expect(await snapshot()).toEqual(before);
    }));

  it('reports a failed job in one sentence and changes nothing', () =>
    withTenant(async ({ fake, importUsers, snapshot }) => {
      expect((await importUsers()).code).toBe(0);
      fake.deleteUser('auth0|u001');
      const before = await snapshot();
      fake.usersExport.script({ outcome: 'fail' });
      const { code, stderr } = await importUsers();
      expect(code).toBe(1);
      expect(stderr.join('\n')).toMatch(/^error \[export_failed\]: The users export job job_\w+ failed on Auth0's side; nothing was imported/);
      expect(await snapshot()).toEqual(before);
    }));

  it('refuses a truncated gzip file with a clear error and changes nothing', () =>
    withTenant(async ({ fake, importUsers, snapshot }) => {
      expect((await importUsers()).code).toBe(0);
      fake.deleteUser('auth0|u001');
      fake.setUser('auth0|added', []);
      const before = await snapshot();
      fake.usersExport.script({ truncate: true });
      const { code, stderr } = await importUsers();
      expect(code).toBe(1);
      expect(stderr.join('\n')).toMatch(/\[export_unreadable\].*truncated or not gzip.*nothing was imported/);
      expect(await snapshot()).toEqual(before);
    }));

  it('logs progress while the job runs, and gives up on a job that never completes after --timeout', () =>
    withTenant(async ({ fake, importUsers, users }) => {
      fake.usersExport.script({ outcome: 'never' });
      const { code, stderr, stdout } = await importUsers(['--timeout', '1s'], { LOG_LEVEL: 'info' });
      const progress = stdout.filter((l) => l.includes('"users export"')).map((l) => JSON.parse(l) as Record<string, unknown>);
      expect(progress.length).toBeGreaterThanOrEqual(2);
      expect(progress[0]).toMatchObject({ status: 'processing', percentDone: expect.any(Number), timeLeftSeconds: expect.any(Number) });
      expect(code).toBe(1);
      expect(stderr.join('\n')).toMatch(/\[export_timeout\].*did not complete within 1 s.*Raise --timeout/);
      expect(await users()).toEqual([]);
    }));

  it('names the missing read:users scope', () =>
    withTenant(async ({ fake, importUsers }) => {
      fake.setScope('read:refresh_tokens');
      const { code, stderr } = await importUsers();
      expect(code).toBe(1);
      expect(stderr.join('\n')).toContain('The access token lacks the read:users scope (granted: read:refresh_tokens); grant it to the client');
    }));

  it('names create:users when the job read is refused for it', () =>
    withTenant(async ({ fake, importUsers }) => {
      fake.intercept(({ method, path }) =>
        method === 'GET' && path.startsWith('/api/v2/jobs/')
          ? {
              status: 403,
              body: JSON.stringify({
                statusCode: 403,
                error: 'Forbidden',
                message: 'Insufficient scope, expected any of: create:users',
                errorCode: 'insufficient_scope',
              }),
            }
          : undefined,
      );
      const { code, stderr } = await importUsers();
      expect(code).toBe(1);
      expect(stderr.join('\n')).toMatch(/GET \/api\/v2\/jobs\/\S+ answered 403.*grant the create:users scope to the client/);
    }));

  it('stops before writing when removals would cross SYNC_MAX_DELETE_RATIO, unless --allow-mass-delete', () =>
    withTenant(async ({ t, importUsers, removedIds, snapshot }) => {
      expect((await importUsers()).code).toBe(0);
      await loadUsers(
        t.db,
        Array.from({ length: 30 }, (_, i) => `auth0|gone${i}`),
      ); // 30 of 80 held
      const before = await snapshot();
      const refused = await importUsers();
      expect(refused.code).toBe(1);
      expect(refused.stderr.join('\n')).toContain(
        '[mass_delete_guard]: Stopped before writing: this import would mark removed 30 of the 80 users held (38%), more than SYNC_MAX_DELETE_RATIO=0.2 allows; nothing was changed',
      );
      expect(await snapshot()).toEqual(before);
      expect((await importUsers(['--allow-mass-delete'])).code).toBe(0);
      expect(await removedIds()).toHaveLength(30);
    }));

  it('refuses an empty export that would remove every user, even below SYNC_DELETE_GUARD_MIN', () =>
    withTenant(async ({ t, fake, importUsers, removedIds }) => {
      await loadUsers(t.db, ['auth0|a', 'auth0|b']);
      fake.users.clear();
      const { code, stderr } = await importUsers();
      expect(code).toBe(1);
      expect(stderr.join('\n')).toContain('would mark removed 2 of the 2 users held (100%)');
      expect(await removedIds()).toEqual([]);
    }));

  it('retries a job creation that met a 5xx through the client, and names an unknown connection', () =>
    withTenant(async ({ fake, importUsers }) => {
      const created = fake.usersExport.stats.jobsCreated;
      let failures = 0;
      fake.intercept(({ method, path }) => (method === 'POST' && path === '/api/v2/jobs/users-exports' && failures++ === 0 ? { status: 503 } : undefined));
      expect((await importUsers()).code).toBe(0);
      expect(fake.usersExport.stats.jobsCreated - created).toBe(1);
      fake.intercept(undefined);
      const { code, stderr } = await importUsers(['--connection', 'con_doesnotexist00']);
      expect(code).toBe(1);
      expect(stderr.join('\n')).toContain('POST /api/v2/jobs/users-exports answered 404: The connection does not exist.');
    }));

  it('names the flag to fix', () =>
    withTenant(async ({ importUsers }) => {
      expect((await importUsers(['--connection', 'google'])).stderr.join('\n')).toContain('--connection takes a connection ID such as con_');
      expect((await importUsers(['--timeout', 'soon'])).stderr.join('\n')).toContain('--timeout must be a duration');
    }));
});
