import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { sql } from 'kysely';
import { main } from '../../src/cli/main.js';
import { runCli } from '../helpers/cli.js';
import { captureIo, cliDeps, loadUsers, type TestDatabase } from '../helpers/db.js';
import { sharedDatabase, withTempDir, withTestDatabase } from '../helpers/fixtures.js';
import { envFor, makeToken, type FakeAuth0 } from '../helpers/fake-auth0.js';

// Operator input and malformed values (issue #8, part B): every mistake is one sentence naming
// the flag, line or path, exit 64 (a usage error), and no run is started or left `running`.

/** What a test works with: its emptied database, its tenant, its temporary directory, and helpers bound to them. */
function world(t: TestDatabase, fake: FakeAuth0, dir: string) {
  /** User IDs the fake Auth0 was asked about (a user costs two requests); empty it with `asked.length = 0`. */
  const asked: string[] = [];
  fake.intercept((ctx) => {
    if (ctx.userId !== undefined) asked.push(ctx.userId);
    return undefined;
  });
  const askedUsers = () => [...new Set(asked)].sort();

  async function sync(args: string[]) {
    const out = captureIo();
    const code = await main(['sync', ...args], envFor(fake, t.url), out.io, cliDeps(t));
    return { code, stdout: out.stdout, stderr: out.stderr.join('\n') };
  }

  const runCount = async () => (await t.db.selectFrom('auth0.sync_runs').select('id').execute()).length;

  /** Exit 64 (usage) with one sentence containing `expected`, nothing asked of Auth0, no run recorded. */
  async function expectRefused(args: string[], expected: string | RegExp): Promise<string> {
    const before = await runCount();
    const { code, stderr } = await sync(args);
    expect(code).toBe(64);
    if (typeof expected === 'string') expect(stderr).toContain(expected);
    else expect(stderr).toMatch(expected);
    expect(stderr.split('\n')).toHaveLength(1);
    expect(stderr).not.toMatch(/\n\s+at |\u001b|\u0000/);
    expect(await runCount()).toBe(before);
    expect(asked).toEqual([]);
    return stderr;
  }

  async function file(name: string, content: string | Buffer): Promise<string> {
    const target = path.join(dir, name);
    await writeFile(target, content);
    return target;
  }

  return { t, fake, dir, asked, askedUsers, sync, runCount, expectRefused, file };
}

// Empty tables per test (`--only-failed` and the run counts must see only this test's runs), a
// tenant of two users and a temporary directory of its own.
const { withEmptyDatabaseAndTenant } = sharedDatabase();
function withTenant(use: (w: ReturnType<typeof world>) => Promise<void>): Promise<void> {
  return withEmptyDatabaseAndTenant((t, fake) =>
    withTempDir(async (dir) => {
      fake.setUser('auth0|1', [makeToken('auth0|1', 1)]);
      fake.setUser('auth0|2', [makeToken('auth0|2', 1)]);
      await use(world(t, fake, dir));
    }, 'input-test-'),
  );
}

describe('--users-file', () => {
  it('is checked in full before the run: a bad line far down leaves no run and asks Auth0 nothing', () =>
    withTenant(async ({ expectRefused, file }) => {
      const lines = Array.from({ length: 10_000 }, (_, i) => `auth0|${i}`);
      lines.push('   \t ');
      await expectRefused(['--users-file', await file('late.txt', lines.join('\n'))], /--users-file .*late\.txt: line 10001 holds only whitespace/);
    }));

  it.each([
    ['a line over the ID cap', 'auth0|1\n' + 'x'.repeat(513) + '\n', 'line 2: the user ID is longer than 512 characters'],
    ['a NUL byte', Buffer.from('auth0|1\nauth0|\u00002\n'), 'line 2 contains a NUL byte'],
    ['invalid UTF-8', Buffer.concat([Buffer.from('auth0|1\n\n'), Buffer.from([0x61, 0xff, 0xfe, 0x0a])]), 'line 3 is not valid UTF-8'],
    ['a whitespace-only line', 'auth0|1\n  \t\nauth0|2\n', 'line 2 holds only whitespace'],
    ['a control character inside an ID', 'auth0|1\nauth0|\u001b[2Jx\n', 'line 2: the user ID contains a control character'],
    ['an endless line', 'auth0|1\n' + 'y'.repeat(100_000), 'line 2 is longer than 2048 bytes'],
  ])('refuses %s, naming the line', (_name, content, expected) =>
    withTenant(async ({ expectRefused, file }) => {
      await expectRefused(['--users-file', await file('bad.txt', content)], expected);
    }),
  );

  it('refuses /dev/zero (one endless line of NUL bytes) without reading it all', () =>
    withTenant(async ({ expectRefused }) => {
      await expectRefused(['--users-file', '/dev/zero'], '--users-file /dev/zero: line 1 contains a NUL byte');
    }));

  it('exits 64 with one line and no stack trace as a real process', () =>
    withTenant(async ({ t, fake }) => {
      const run = await runCli(['sync', '--users-file', '/dev/zero'], envFor(fake, t.url));
      expect(run.code).toBe(64);
      expect(run.stderr.trim()).toBe('error [usage]: --users-file /dev/zero: line 1 contains a NUL byte; is this a text file of user IDs?');
    }));

  it('refuses a directory, a missing file and an empty path, naming the path', () =>
    withTenant(async ({ dir, expectRefused }) => {
      await expectRefused(['--users-file', dir], `--users-file ${dir} is a directory`);
      await expectRefused(['--users-file', path.join(dir, 'missing.txt')], `--users-file ${path.join(dir, 'missing.txt')} does not exist`);
      await expectRefused(['--users-file', ''], '--users-file needs a path');
      // A path with a terminal escape is echoed without it.
      const stderr = await expectRefused(['--users-file', path.join(dir, 'x\u001b]0;pwned\u0007.txt')], 'does not exist');
      expect(stderr).not.toContain('\u001b');
    }));

  it('skips empty lines (CRLF too) and # comments, trims IDs, and syncs each once', () =>
    withTenant(async ({ t, askedUsers, sync, file }) => {
      const target = await file('ok.txt', '\uFEFFauth0|1\r\n\r\n# a comment\n  auth0|2  \n\nauth0|1\n');
      const { code, stderr } = await sync(['--users-file', target]);
      expect(stderr).toBe('');
      expect(code).toBe(0);
      expect(askedUsers()).toEqual(['auth0|1', 'auth0|2']);
      const run = await t.db.selectFrom('auth0.sync_runs').selectAll().orderBy('id', 'desc').executeTakeFirstOrThrow();
      expect(run).toMatchObject({ status: 'succeeded', users_total: 2, users_synced: 2 });
    }));
});

describe('flags', () => {
  const label = (args: string[]) => JSON.stringify(args.map((arg) => (arg.length > 20 ? `${arg.slice(0, 8)}… (${arg.length} characters)` : arg)));
  it.each(
    (
      [
        [['--user', ''], '--user needs a user ID'],
        [['--user', '   '], '--user needs a user ID'],
        [['--user', 'auth0|1', '--user', 'x'.repeat(600)], 'the user ID is longer than 512 characters'],
        [['--user', 'auth0|\u0007bell'], 'the user ID contains a control character'],
        [['--max-users', '0x10'], '--max-users takes a whole number'],
        [['--max-users', '1e3'], '--max-users takes a whole number'],
        [['--max-users', '+5'], '--max-users takes a whole number'],
        [['--max-users', '0'], '--max-users takes a whole number'],
        [['--max-users', '2.0'], '--max-users takes a whole number'],
        [['--max-users', '9007199254740993'], '--max-users takes a whole number'],
        [['--max-users', '1000000001'], '--max-users takes a whole number from 1 to 1,000,000,000'],
        [['--max-duration', '500ms'], '--max-duration takes a duration from 1s'],
        [['--max-duration', '0s'], '--max-duration takes a duration from 1s'],
        [['--max-duration', '99999999999999999999w'], '--max-duration takes a duration'],
        [['--stale', '2026-02-31'], '--stale takes a duration such as 24h or 7d, or a date that exists'],
        [['--stale', '0000-01-01'], '--stale takes a duration'],
        [['--stale', '2999-01-01'], '--stale "2999-01-01" is in the future'],
        [['--stale', 'yesterday'], '--stale takes a duration'],
      ] as const
    ).map(([args, expected]) => ({ name: label([...args]), args: [...args], expected })),
  )('refuses $name naming the flag', ({ args, expected }) => withTenant(({ expectRefused }) => expectRefused(args, expected).then(() => {})));

  it('still takes plain values', () =>
    withTenant(async ({ t, sync }) => {
      await loadUsers(t.db, ['auth0|1']);
      const { code, stderr } = await sync(['--max-users', '5', '--max-duration', '1s']);
      expect(stderr).toBe('');
      expect(code).toBe(0);
      expect((await sync(['--stale', '2026-02-28', '--dry-run'])).code).toBe(0);
    }));
});

describe('user IDs from the source table', () => {
  it('fails a bad ID (too long, control characters) as that user, without asking Auth0, and syncs the rest', () =>
    withTenant(async ({ t, asked, askedUsers, sync }) => {
      const long = 'auth0|' + 'z'.repeat(3000);
      const escape = 'auth0|\u001b[31mred\u202e';
      await sql`truncate auth0.users`.execute(t.db);
      await loadUsers(t.db, ['auth0|1', long, escape]);
      const { code, stderr } = await sync([]);
      expect(code).toBe(2);
      expect(stderr).toContain('2 of 3 users failed');
      expect(askedUsers()).toEqual(['auth0|1']);

      const failed = await t.db
        .selectFrom('auth0.user_sync_state')
        .select(['user_id', 'status', 'error_code', 'error'])
        .where('error_code', '=', 'invalid_user_id')
        .orderBy('user_id')
        .execute();
      expect(failed).toHaveLength(2);
      const [escaped, cut] = failed[0]!.user_id === escape ? [failed[0]!, failed[1]!] : [failed[1]!, failed[0]!];
      // The key stays the ID itself (never another user's), cut just past the limit when too long.
      expect(escaped).toMatchObject({ user_id: escape, status: 'failed', error: 'The user ID "auth0|red" contains a control character.' });
      expect(cut.user_id).toHaveLength(513);
      expect(cut.error).toMatch(/^The user ID "auth0\|z+…" is longer than 512 characters\.$/);

      // Retrying the failed users fails them the same way, still without asking Auth0.
      asked.length = 0;
      expect((await sync(['--only-failed'])).code).toBe(2);
      expect(asked).toEqual([]);

      // status shows them without the escapes.
      const out = captureIo();
      expect(await main(['status'], { DATABASE_URL: t.url }, out.io, cliDeps(t))).toBe(2);
      const text = out.stdout.join('\n');
      expect(text).toContain('invalid_user_id');
      expect(text).not.toMatch(/[\u001b\u202e]/);
      await sql`truncate auth0.users`.execute(t.db);
    }));
});

describe('values from the API', () => {
  it('fails the user naming the field for an oversized token id or a date that does not exist, not with a SQL error', () =>
    withTenant(async ({ t, fake, sync }) => {
      fake.setUser('auth0|big', [makeToken('auth0|big', 1, { id: 'rt_' + 'x'.repeat(5000) })]);
      fake.setUser('auth0|feb', [makeToken('auth0|feb', 1, { created_at: '2026-02-31T00:00:00Z' })]);
      const { code } = await sync(['--user', 'auth0|big', '--user', 'auth0|feb', '--user', 'auth0|1']);
      expect(code).toBe(2);
      const states = await t.db
        .selectFrom('auth0.user_sync_state')
        .select(['user_id', 'status', 'error_code', 'error'])
        .where('user_id', 'in', ['auth0|big', 'auth0|feb'])
        .orderBy('user_id')
        .execute();
      expect(states).toEqual([
        { user_id: 'auth0|big', status: 'failed', error_code: 'invalid_record', error: 'refresh_tokens[0].id is longer than 512 bytes' },
        { user_id: 'auth0|feb', status: 'failed', error_code: 'invalid_record', error: expect.stringContaining('created_at is not a date that exists') },
      ]);
    }));
});

describe('status', () => {
  it('before migrate says to run npm run migrate (exit 5: cannot read), not a raw SQL error', () =>
    withTestDatabase(
      async (empty) => {
        const out = captureIo();
        const code = await main(['status'], { DATABASE_URL: empty.url }, out.io, cliDeps(empty));
        expect(code).toBe(5);
        expect(out.stderr.join('\n')).toMatch(/^error \[pending_migrations\]: .*run `npm run migrate` first\.$/);
      },
      { migrate: false },
    ));

  it('exits 5, not 1, when the database cannot be reached, so alerting tells it from a failed run', async () => {
    const out = captureIo();
    // Port 1 on loopback: nothing listens there, the connection is refused at once.
    const code = await main(['status'], { DATABASE_URL: 'postgres://postgres@127.0.0.1:1/none' }, out.io);
    expect(code).toBe(5);
    expect(out.stderr.join('\n')).toMatch(/^error \[database_unavailable\]: cannot use DATABASE_URL: /);
  });
});
