/**
 * `npm run import-users` on the exports a bad day brings (issue #24, and #18's removals): every
 * failure one sentence naming the line, caps on what the file inflates to, duplicates taken,
 * hostile IDs refused, the log follower started where the export began.
 */
import { describe, expect, it } from '@jest/globals';
import { sql } from 'kysely';
import { main } from '../../src/cli/main.js';
import { createDb, openDatabase } from '../../src/warehouse/connection.js';
import { runCli } from '../helpers/cli.js';
import { captureIo, cliDeps, loadUsers, type TestDatabase } from '../helpers/db.js';
import { sharedDatabase } from '../helpers/fixtures.js';
import { envFor, skippingClock, type FakeAuth0 } from '../helpers/fake-auth0.js';

const TENANT = Array.from({ length: 50 }, (_, i) => `auth0|u${String(i).padStart(3, '0')}`);

/** What a test works with: its database, its fake tenant, and helpers bound to both. */
function world(t: TestDatabase, fake: FakeAuth0) {
  async function importUsers(args: string[] = [], extra: Record<string, string> = {}, own = false) {
    const out = captureIo();
    // `own`: a pool of the command's own (a test that kills its connection must not poison t.db's).
    const deps = own ? { openDatabase, clock: skippingClock() } : { ...cliDeps(t), clock: skippingClock() };
    const code = await main(['import-users', ...args], envFor(fake, t.url, extra), out.io, deps);
    return { code, ...out, text: [...out.stdout, ...out.stderr].join('\n') };
  }

  const users = () => t.db.selectFrom('auth0.users').selectAll().orderBy('user_id').execute();
  const removedIds = async () => (await users()).filter((u) => u.removed_at !== null).map((u) => u.user_id);
  const snapshot = async () => (await sql`select * from auth0.users order by user_id`.execute(t.db)).rows;
  const checkpoint = () => t.db.selectFrom('auth0.log_checkpoint').selectAll().executeTakeFirst();

  return { t, fake, importUsers, users, removedIds, snapshot, checkpoint };
}

// Each test gets an emptied database (one clone for the file) and a fresh tenant of 50 users
// whose client lacks read:logs (the tests that need it grant it).
const { withEmptyDatabaseAndTenant } = sharedDatabase();
function withTenant(use: (w: ReturnType<typeof world>) => Promise<void>): Promise<void> {
  return withEmptyDatabaseAndTenant(
    async (t, fake) => {
      fake.setScope('read:refresh_tokens read:users');
      for (const id of TENANT) fake.setUser(id, []);
      await use(world(t, fake));
    },
    { usersExport: { pollsToComplete: 1 } },
  );
}

describe('import-users on a bad day', () => {
  it('takes duplicates anywhere in the file: one row per user, the last line wins, counted', () =>
    withTenant(async ({ fake, importUsers, users }) => {
      fake.usersExport.script({
        generate: 5000,
        insert: {
          3: '{"user_id":"auth0|exp0000001","email":"second@example.org"}', // same batch as its first line
          4500: '{"user_id":"auth0|exp0000002","email":"late@example.org"}', // a later batch
          4800: '{"user_id":"auth0|exp0000001","email":"third@example.org"}',
        },
      });
      const { code, stdout } = await importUsers();
      expect(stdout.join('\n')).toContain('Imported 5000 users');
      expect(stdout).toContain('2 users appeared more than once; the last line of each was kept.');
      expect(code).toBe(0);
      const rows = await users();
      expect(rows).toHaveLength(5000);
      expect(rows.find((u) => u.user_id === 'auth0|exp0000001')!.email).toBe('third@example.org');
      expect(rows.find((u) => u.user_id === 'auth0|exp0000002')!.email).toBe('late@example.org');
    }));

  it('skips hostile user IDs, counted with their line printed safely; never inserts them; exit 2; removals apply to the others', () =>
    withTenant(async ({ t, fake, importUsers, users, removedIds }) => {
      const hostile = [
        'auth0|\\u001b[2J\\u001b[31mred', // ANSI escapes
        'auth0|bell\\u0007', // BEL
        'auth0|\\u202eevil', // bidi override
        'auth0|line\\r\\nbreak', // CR/LF
        `auth0|${'x'.repeat(600)}`, // too long
        'auth0|nul\\u0000', // NUL: PostgreSQL would refuse the batch
      ];
      const insert = Object.fromEntries(hostile.map((id, i) => [10 + i, `{"user_id":"${id}"}`]));
      // A held user with a refused ID is not marked removed for being absent; one really gone is.
      await loadUsers(t.db, ['auth0|bell\u0007', 'auth0|gone']);
      fake.usersExport.script({ insert });
      const { code, stdout, text } = await importUsers();
      expect(stdout.join('\n')).toContain('Imported 50 users');
      expect(stdout).toContain(
        '6 lines of the export skipped: line 10 holds user ID "auth0|red", which contains a control character; ' +
          'line 11 holds user ID "auth0|bell", which contains a control character; line 12 holds user ID "auth0|evil", which contains a control character; ' +
          'line 13 holds user ID "auth0|line  break", which contains a control character; ' +
          `line 14 holds user ID "auth0|${'x'.repeat(73)}…", which is longer than 512 characters; line 15 holds user ID "auth0|nul", which contains a NUL character.`,
      );
      expect(stdout).toContain('The users on them were neither added nor marked removed. Exit 2.');
      expect(code).toBe(2);
      expect(text).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f\u202e]/);
      expect((await users()).map((u) => u.user_id)).toEqual([...TENANT, 'auth0|bell\u0007', 'auth0|gone'].sort());
      expect(await removedIds()).toEqual(['auth0|gone']);
    }));

  it('skips lines it cannot read and marks nobody removed (any user may be on them); IMPORT_MAX_BAD_LINES=0 refuses the file whole', () =>
    withTenant(async ({ t, fake, importUsers, users, removedIds, snapshot }) => {
      await loadUsers(t.db, ['auth0|gone']);
      fake.usersExport.script({ insert: { 3: 'not json', 7: '{"email":"no-id@example.org"}', 20: `{"user_id":"auth0|${'a'.repeat(2 * 2 ** 20)}"}` } });
      const before = await snapshot();
      const refused = await importUsers([], { IMPORT_MAX_BAD_LINES: '0' });
      expect(refused.code).toBe(1);
      expect(refused.stderr.join('\n')).toMatch(/^error \[export_unreadable\]: The users export file is refused: line 3 is not JSON; nothing was imported\.$/);
      expect(await snapshot()).toEqual(before);

      const { code, stdout } = await importUsers();
      expect(stdout).toContain(`3 lines of the export skipped: line 3 is not JSON; line 7 holds no user_id; line 20 is longer than ${2 ** 20} characters.`);
      expect(stdout).toContain('No user was marked removed: a line that could not be read may hold any user. Exit 2.');
      expect(code).toBe(2);
      expect(await users()).toHaveLength(51);
      expect(await removedIds()).toEqual([]);
    }));

  it('names the line on a file large enough to stream: a bad line, too many bad lines, IMPORT_MAX_LINES, and changes nothing', () =>
    withTenant(async ({ t, fake, importUsers, snapshot }) => {
      await loadUsers(t.db, ['auth0|held']);
      const before = await snapshot();
      fake.usersExport.script({ generate: 200_000, insert: { 199_000: 'not json' } });
      const started = Date.now();
      const bad = await importUsers([], { IMPORT_MAX_BAD_LINES: '0' });
      const seconds = (Date.now() - started) / 1000;
      expect(bad.stderr.join('\n')).toBe('error [export_unreadable]: The users export file is refused: line 199000 is not JSON; nothing was imported.');
      expect(bad.code).toBe(1);
      console.log(`200,000-line file refused at line 199,000 in ${seconds} s`);

      fake.usersExport.script({ generate: 3000, insert: { 10: 'not json', 2000: '{}', 2500: '[]' } });
      const many = await importUsers([], { IMPORT_MAX_BAD_LINES: '2' });
      expect(many.stderr.join('\n')).toBe(
        'error [export_unreadable]: The users export file is refused: more than 2 lines of it cannot be taken (line 10 is not JSON; line 2000 holds no user_id; line 2500 holds no user_id); nothing was imported. Raise IMPORT_MAX_BAD_LINES to import the rest regardless.',
      );

      fake.usersExport.script({ generate: 120_000 });
      const long = await importUsers([], { IMPORT_MAX_LINES: '100000' });
      expect(long.stderr.join('\n')).toMatch(
        /^error \[export_too_large\]: The users export file on 127\.0\.0\.1:\d+ holds more than 100000 lines \(line 100001 is one too many\); refused, nothing was imported\. Raise IMPORT_MAX_LINES/,
      );
      expect(long.code).toBe(1);
      expect(await snapshot()).toEqual(before);
    }));

  it('says what the database answered, and at which line, when a batch fails late in a large file', () =>
    withTenant(async ({ t, fake, importUsers, snapshot }) => {
      await loadUsers(t.db, ['auth0|held']);
      const before = await snapshot();
      const kill = () =>
        void sql`select pg_terminate_backend(pid) from pg_stat_activity
               where datname = current_database() and pid <> pg_backend_pid() and query like '%users_import_staging%'`.execute(t.db);
      fake.usersExport.script({ generate: 200_000, onLine: { line: 199_000, run: kill } });
      const { code, stderr } = await importUsers([], {}, true);
      expect(stderr.join('\n')).toMatch(
        /^error \[import_write_failed\]: Staging the users export up to line \d+ failed: the database answered "[^"]*(terminat|connection)[^"]*"; nothing was imported\.$/,
      );
      expect(code).toBe(1);
      expect(await snapshot()).toEqual(before);

      // And when applying: the database's own message.
      fake.usersExport.script({});
      await sql`create function auth0.refuse_import() returns trigger language plpgsql as $$
      begin raise exception 'no room left on the warehouse disk' using errcode = '53100'; end $$`.execute(t.db);
      await sql`create trigger refuse_import before insert on auth0.users for each row execute function auth0.refuse_import()`.execute(t.db);
      try {
        const applying = await importUsers();
        expect(applying.stderr).toEqual([
          'error [import_write_failed]: Applying the users export to auth0.users failed: the database answered "no room left on the warehouse disk"; nothing was imported.',
        ]);
        expect(applying.code).toBe(1);
      } finally {
        await sql`drop trigger refuse_import on auth0.users`.execute(t.db);
        await sql`drop function auth0.refuse_import()`.execute(t.db);
      }
      expect(await snapshot()).toEqual(before);
    }));

  it('refuses a gzip bomb of one long line and one of a valid line repeated, with flat memory and nothing changed', () =>
    withTenant(async ({ t, fake, snapshot }) => {
      const bombs = [
        { unit: 'x'.repeat(1024), times: 2 ** 20 }, // 1 GiB, one line
        { unit: `${JSON.stringify({ user_id: 'auth0|u001', email: 'a@example.com' })}\n`, times: Math.floor(2 ** 30 / 48) }, // 1 GiB, 22 million lines
      ];
      const runImport = async () => {
        const run = await runCli(['import-users'], envFor(fake, t.url), {
          // As `npm run import-users` runs it (package.json): a 4 MB young generation.
          nodeArgs: ['--max-semi-space-size=4', '--import', './test/helpers/print-peak-rss.ts'],
          timeoutMs: 25_000,
        });
        return { ...run, peakMb: Number(/peak-rss-kb=(\d+)/.exec(run.stderr)?.[1]) / 1024 };
      };
      // What the same command takes for an ordinary 50-user export, in the same kind of process.
      fake.usersExport.script({ insert: { 51: '{"user_id":"auth0|held"}' } });
      const baseline = await runImport();
      expect(baseline.code).toBe(0);
      console.log(`ordinary import of 51 users: peak RSS ${baseline.peakMb.toFixed(0)} MB`);
      const before = await snapshot();
      for (const bomb of bombs) {
        fake.usersExport.script({ bomb });
        const run = await runImport();
        console.log(
          `gzip bomb of ${JSON.stringify(bomb.unit.slice(0, 20))}… × ${bomb.times}: refused (${/at line \d+/.exec(run.stderr)?.[0]}), peak RSS ${run.peakMb.toFixed(0)} MB`,
        );
        expect(run.stderr).toMatch(
          /error \[export_too_large\]: The users export file on 127\.0\.0\.1:\d+ inflates to more than 100 times its compressed size \(\d+ bytes from \d+, at line \d+\): a gzip bomb/,
        );
        expect(run.code).toBe(1);
        // 1 GiB inflated, yet no more memory than an ordinary import, give or take the collector.
        expect(run.peakMb).toBeLessThan(baseline.peakMb + 60);
      }
      expect(await snapshot()).toEqual(before);
    }));

  it('stores the tenant newest log entry from before the export as the follower first checkpoint, and leaves a stored one alone', () =>
    withTenant(async ({ t, fake, importUsers, users, checkpoint }) => {
      fake.setScope('read:refresh_tokens read:users read:logs');
      const newest = fake.logs.newestId()!;
      expect(newest).toBeDefined();
      // A user who signs up once the export job exists (its file no longer can hold them).
      let signedUp = false;
      fake.intercept(({ method, path }) => {
        if (method === 'GET' && path.startsWith('/api/v2/jobs/job_') && !signedUp) {
          signedUp = true;
          fake.setUser('auth0|late', []);
        }
        return undefined;
      });
      try {
        const { code, stdout } = await importUsers();
        expect(code).toBe(0);
        expect(stdout).toContain(`The log follower had no checkpoint: it starts at ${newest}, the tenant's newest entry when the export began.`);
      } finally {
        fake.intercept(undefined);
      }
      expect(signedUp).toBe(true);
      expect((await users()).map((u) => u.user_id)).not.toContain('auth0|late');
      expect(await checkpoint()).toMatchObject({ log_id: newest });
      expect(fake.logs.newestId()).not.toBe(newest);

      // The first follow reads from there: the sign-up during the export is not missed.
      const out = captureIo();
      expect(await main(['sync', '--from-logs'], envFor(fake, t.url), out.io, cliDeps(t))).toBe(0);
      expect((await users()).map((u) => u.user_id)).toContain('auth0|late');

      const followed = (await checkpoint())!.log_id;
      const again = await importUsers();
      expect(again.stdout.join('\n')).not.toContain('log follower');
      expect((await checkpoint())!.log_id).toBe(followed);
    }));

  it('with a database role that may not write the checkpoint, imports all the same and says so in one log line', () =>
    withTenant(async ({ t, fake, users, checkpoint }) => {
      fake.setScope('read:refresh_tokens read:users read:logs');
      const role = `importer_${process.pid}`;
      await sql`drop role if exists ${sql.id(role)}`.execute(t.db);
      await sql`create role ${sql.id(role)} login`.execute(t.db);
      await sql`grant usage on schema auth0 to ${sql.id(role)}`.execute(t.db);
      await sql`grant select on all tables in schema auth0 to ${sql.id(role)}`.execute(t.db);
      await sql`grant insert, update on auth0.users to ${sql.id(role)}`.execute(t.db);
      const url = new URL(t.url!);
      url.username = role;
      url.password = '';
      const db = createDb(url.toString());
      try {
        const out = captureIo();
        const code = await main(['import-users'], envFor(fake, t.url, { LOG_LEVEL: 'info' }), out.io, {
          openDatabase: async () => ({ db, ownsDatabase: false, close: async () => {} }),
          clock: skippingClock(),
        });
        expect(out.stderr).toEqual([]);
        expect(code).toBe(0);
        expect(out.stdout.filter((l) => l.includes('may not write auth0.log_checkpoint'))).toHaveLength(1);
        expect(await users()).toHaveLength(50);
        expect(await checkpoint()).toBeUndefined();
      } finally {
        await db.destroy();
        await sql`drop owned by ${sql.id(role)}`.execute(t.db);
        await sql`drop role if exists ${sql.id(role)}`.execute(t.db);
      }
    }));

  it('without read:logs, imports all the same, stores no checkpoint, and says so in one log line', () =>
    withTenant(async ({ importUsers, checkpoint }) => {
      const { code, stdout } = await importUsers([], { LOG_LEVEL: 'info' });
      expect(code).toBe(0);
      expect(stdout.filter((l) => l.includes('lacks read:logs'))).toHaveLength(1);
      expect(await checkpoint()).toBeUndefined();
    }));

  it('never marks removed a user inserted or created after the export job was requested (issue #18)', () =>
    withTenant(async ({ t, importUsers, removedIds }) => {
      await loadUsers(t.db, ['auth0|old', 'auth0|followed', 'auth0|created-later']);
      await sql`update auth0.users set loaded_at = now() - interval '1 day'`.execute(t.db);
      // Inserted by the follower after the job was requested; created in Auth0 after it.
      await sql`update auth0.users set loaded_at = now() + interval '1 hour' where user_id = 'auth0|followed'`.execute(t.db);
      await sql`update auth0.users set created_at = now() + interval '1 hour' where user_id = 'auth0|created-later'`.execute(t.db);
      const { code, stdout } = await importUsers();
      expect(stdout.join('\n')).toContain('1 marked removed');
      expect(code).toBe(0);
      expect(await removedIds()).toEqual(['auth0|old']);
    }));
});
