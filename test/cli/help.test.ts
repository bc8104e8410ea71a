import { readFileSync } from 'node:fs';
import { describe, expect, it } from '@jest/globals';
import { sql } from 'kysely';
import { main } from '../../src/cli/main.js';
import type { Env } from '../../src/core/config.js';
import type { NewSyncRun } from '../../src/warehouse/schema.js';
import { createLogger, toPrettyLine } from '../../src/core/log.js';
import { runCli } from '../helpers/cli.js';
import { captureIo, cliDeps, loadUsers, TEST_TENANT, type TestDatabase } from '../helpers/db.js';
import { sharedDatabase, withTestDatabase } from '../helpers/fixtures.js';

// The command line's own surface (issue #11): help and version with no side effect, usage errors
// with their own exit code, `status --json`, `migrate --list`, and the pretty log format.

const COMMANDS = ['migrate', 'sync', 'import-users', 'worker', 'status', 'db'];
const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

// One migrated database for the file; a test that writes rows takes it emptied.
const { withDatabase, withEmptyDatabase } = sharedDatabase();

async function cli(argv: string[], env: Env = {}, t?: TestDatabase) {
  const out = captureIo();
  // No configuration at all: help must not need any (and must never reach the database).
  const code = await main(argv, env, out.io, t ? cliDeps(t) : { openDatabase: () => Promise.reject(new Error('opened the database')) });
  return { code, stdout: out.stdout.join('\n'), stderr: out.stderr.join('\n') };
}

/** Tables in the auth0 schema (the migrations create them). */
const tables = async (t: TestDatabase) =>
  (await sql<{ n: number }>`select count(*)::int as n from information_schema.tables where table_schema = 'auth0'`.execute(t.db)).rows[0]!.n;

describe('--help and --version', () => {
  it.each(COMMANDS)('%s --help prints its flags on stdout, exits 0 and does nothing', async (command) => {
    const run = await cli([command, '--help']);
    expect(run).toMatchObject({ code: 0, stderr: '' });
    expect(run.stdout).toContain(`Usage: auth0-refresh-token-sync ${command} [options]`);
    expect(run.stdout).toContain('-h, --help');
  });

  it.each(COMMANDS)('%s --help names its exit codes and the environment variables it reads; the overview lists it with its exit codes', async (command) => {
    const { stdout } = await cli([command, '--help']);
    expect(stdout).toMatch(/\nExit codes: 0 .*64 usage error\.\n/);
    expect(stdout).toContain('Environment (also read from .env in the working directory):');
    const overview = await cli(['--help']);
    expect(overview.stdout).toMatch(new RegExp(`\\n  ${command} +0 .*64 usage error\\n`));
  });

  it('sync --help names the variables it needs', async () => {
    const { stdout } = await cli(['sync', '--help']);
    for (const name of [
      'DATABASE_URL',
      'PGLITE_DATA_DIR',
      'AUTH0_DOMAIN',
      'AUTH0_CLIENT_ID',
      'AUTH0_CLIENT_SECRET',
      'SOURCE_USERS_TABLE',
      'SYNC_MAX_USERS',
      'LOG_LEVEL',
    ]) {
      expect(stdout).toContain(name);
    }
  });

  it('help comes from the parser definitions: every sync flag is listed', async () => {
    const { stdout } = await cli(['help', 'sync']);
    for (const flag of [
      '--user <id>',
      '--users-file <path>',
      '--only-failed',
      '--stale <since>',
      '--max-users <n>',
      '--max-duration <duration>',
      '--dry-run',
      '--allow-mass-delete',
      '--from-logs',
    ]) {
      expect(stdout).toContain(flag);
    }
  });

  it('migrate --help applies nothing', () =>
    withTestDatabase(
      async (fresh) => {
        const run = await cli(['migrate', '--help'], { DATABASE_URL: fresh.url }, fresh);
        expect(run.code).toBe(0);
        expect(await tables(fresh)).toBe(0);
        const listed = await cli(['migrate', '--list'], { DATABASE_URL: fresh.url }, fresh);
        expect(listed.code).toBe(0);
        expect(listed.stdout).toMatch(/^pending +2026_11_26_0900_create_warehouse$/m);
        expect(listed.stdout).toMatch(/\d+ pending: run `npm run migrate` to apply them\./);
        expect(await tables(fresh)).toBe(0); // --list applies nothing either
      },
      { migrate: false },
    ));

  it('--version prints package.json version; no command prints help on stderr and exits 64', async () => {
    expect(await cli(['--version'])).toEqual({ code: 0, stdout: version, stderr: '' });
    expect(await cli(['-V'])).toEqual({ code: 0, stdout: version, stderr: '' });
    const none = await cli([]);
    expect(none.code).toBe(64);
    expect(none.stderr).toContain('Commands:');
    expect(none.stderr).toContain('64 usage error');
  });

  it('--version and --help work from a real process too', async () => {
    const run = await runCli(['--version'], {});
    expect(run).toMatchObject({ code: 0, stdout: `${version}\n`, stderr: '' });
    const help = await runCli(['worker', '--help'], {});
    expect(help.code).toBe(0);
    expect(help.stderr).toBe('');
  });
});

describe('usage errors exit 64 with one sentence and a suggestion', () => {
  it.each([
    [['synk'], "error: unknown command 'synk'\n(Did you mean sync?)"],
    [['sync', '--usr', 'x'], "error: unknown option '--usr'\n(Did you mean --user?)"],
    [['status', '--jsn'], "error: unknown option '--jsn'\n(Did you mean --json?)"],
    [['migrate', '--lst'], "error: unknown option '--lst'\n(Did you mean --list?)"],
    [['sync', '--max-users'], "error: option '--max-users <n>' argument missing"],
    [['status', 'now'], "error: too many arguments for 'status'. Expected 0 arguments but got 1."],
  ])('%j', async (argv, message) => {
    const run = await cli(argv);
    expect(run).toEqual({ code: 64, stdout: '', stderr: message });
  });

  it('a bad flag value is a usage error too, while bad configuration stays exit 1', () =>
    withDatabase(async (migrated) => {
      const value = await cli(['sync', '--max-users', '0'], {
        DATABASE_URL: migrated.url,
        AUTH0_DOMAIN: 'x.auth0.com',
        AUTH0_CLIENT_ID: 'id',
        AUTH0_CLIENT_SECRET: 's',
      });
      expect(value.code).toBe(64);
      expect(value.stderr).toMatch(/^error \[usage\]: --max-users takes a whole number/);
      const config = await cli(['sync']);
      expect(config.code).toBe(1);
      expect(config.stderr).toContain('AUTH0_DOMAIN is required');
      // One mistake, one exit code: the wrong flag is 64 with no configuration at all too.
      const both = await cli(['sync', '--max-users', '0']);
      expect(both.code).toBe(64);
      expect(both.stderr).toMatch(/^error \[usage\]: --max-users takes a whole number/);
    }));
});

describe("npm's own flags (npm run sync --dry-run, without --)", () => {
  it('refuses to run, in one sentence saying to put the flags after --', () =>
    withDatabase(async (migrated) => {
      const npm = { npm_lifecycle_event: 'sync', npm_config_dry_run: 'true' };
      const run = await cli(
        ['sync'],
        { ...npm, DATABASE_URL: migrated.url, AUTH0_DOMAIN: 'x.auth0.com', AUTH0_CLIENT_ID: 'id', AUTH0_CLIENT_SECRET: 's' },
        migrated,
      );
      expect(run).toEqual({
        code: 64,
        stdout: '',
        stderr: "error [usage]: npm kept --dry-run for itself, so nothing was run: put the command's flags after --, as in npm run sync -- --dry-run",
      });
      const status = await cli(['status'], { npm_lifecycle_event: 'status', npm_config_json: 'true' });
      expect(status.code).toBe(64);
      expect(status.stderr).toContain('npm run status -- --json');
      const values = await cli(['sync'], { npm_lifecycle_event: 'sync', npm_config_user: 'true', npm_config_stale: '7d' });
      expect(values.stderr).toContain('npm run sync -- --user <id> --stale=7d');
    }));

  it("npm's settings that are not the command's flags, and the same variables outside npm, change nothing", () =>
    withDatabase(async (migrated) => {
      const env = { npm_lifecycle_event: 'status', npm_config_dry_run: 'true', npm_config_registry: 'https://registry.npmjs.org/' };
      expect((await cli(['status'], { ...env, DATABASE_URL: migrated.url }, migrated)).code).not.toBe(64);
      expect((await cli(['status'], { npm_config_json: 'true', DATABASE_URL: migrated.url }, migrated)).code).not.toBe(64);
    }));
});

describe('status --json', () => {
  it('prints one JSON document with stable field names and ISO dates', () =>
    withEmptyDatabase(async (migrated) => {
      await loadUsers(migrated.db, ['auth0|1', 'auth0|2']);
      const run: NewSyncRun = {
        tenant: TEST_TENANT,
        trigger: 'manual',
        status: 'partial',
        started_at: new Date('2026-11-26T10:00:00Z'),
        finished_at: new Date('2026-11-26T10:05:00Z'),
        users_total: 2,
        users_synced: 1,
        users_failed: 1,
      };
      const { id } = await migrated.db.insertInto('auth0.sync_runs').values(run).returning('id').executeTakeFirstOrThrow();
      await migrated.db
        .insertInto('auth0.user_sync_state')
        .values({
          tenant: TEST_TENANT,
          user_id: 'auth0|2',
          status: 'failed',
          last_attempt_at: new Date('2026-11-26T10:04:00Z'),
          error: 'boom',
          error_code: 'http_500',
          last_run_id: id,
        })
        .execute();

      const out = await cli(['status', '--json'], { DATABASE_URL: migrated.url }, migrated);
      expect(out.code).toBe(2); // same exit codes as the tables
      expect(out.stderr).toBe('');
      const doc = JSON.parse(out.stdout) as Record<string, unknown>;
      expect(Object.keys(doc)).toEqual([
        'version',
        'generatedAt',
        'exitCode',
        'lastFinished',
        'runs',
        'failingTotal',
        'failingUsers',
        'staleness',
        'logFollower',
        'deletions',
      ]);
      expect(doc).toMatchObject({
        version: 1,
        generatedAt: expect.stringMatching(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/),
        exitCode: 2,
        lastFinished: {
          id,
          trigger: 'manual',
          status: 'partial',
          startedAt: '2026-11-26T10:00:00.000Z',
          finishedAt: '2026-11-26T10:05:00.000Z',
          usersTotal: 2,
          usersSynced: 1,
          usersFailed: 1,
        },
        failingTotal: 1,
        failingUsers: [
          { userId: 'auth0|2', errorCode: 'http_500', error: 'boom', lastAttemptAt: '2026-11-26T10:04:00.000Z', lastSuccessAt: null, lastRunId: id },
        ],
        staleness: { known: true, source: 'auth0.users.user_id', sourceUsers: 2, neverSynced: 2, oldestSuccessAt: null },
        logFollower: null,
      });
      expect(doc.runs).toHaveLength(1);
    }));
});

describe('log formats', () => {
  it('pretty lines carry time, level, message and key=value fields', () => {
    const line = toPrettyLine({
      time: '2026-11-26T10:00:01.234Z',
      level: 'info',
      msg: 'sync started',
      runId: 7,
      source: 'a b',
      nested: { x: 1 },
      gone: undefined,
    });
    expect(line).toBe('10:00:01.234 INFO  sync started runId=7 source="a b" nested={"x":1}');
  });

  it('LOG_FORMAT picks the format; JSON stays the default off a terminal', () => {
    const lines: string[] = [];
    createLogger({ format: 'pretty', write: (l) => lines.push(l) }).warn('careful', { n: 1 });
    createLogger({ write: (l) => lines.push(l) }).warn('careful', { n: 1 });
    expect(lines[0]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} WARN  careful n=1$/);
    expect(JSON.parse(lines[1]!)).toMatchObject({ level: 'warn', msg: 'careful', n: 1 });
  });
});
