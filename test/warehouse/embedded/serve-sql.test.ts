import { execFile, execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { EXIT, main } from '../../../src/cli/main.js';
import { acquireDirLock } from '../../../src/warehouse/embedded/dir-lock.js';
import { dbCommand, serveEmbeddedDatabase } from '../../../src/warehouse/embedded/serve-sql.js';
import { RunLockedError } from '../../../src/warehouse/run-lock.js';
import { captureIo } from '../../helpers/db.js';
import { withFakeTenant, withTempDir } from '../../helpers/fixtures.js';
import { ROOT, startCli } from '../../helpers/cli.js';
import { generateTenant } from '../../helpers/fake-auth0.js';

const PSQL = ['/usr/bin/psql', '/usr/local/bin/psql'].find((p) => existsSync(p));

/**
 * A directory written by the job itself (migrated, then synced from a fake tenant dated around
 * today), made once for the file (PGlite's initdb takes seconds) and removed after its last test;
 * the tests only read it. Each test also gets a temporary directory of its own (`dir`).
 */
function sharedSyncedDirectory() {
  const held: { dir?: string; liveTokens?: number } = {};
  beforeAll(async () => {
    held.dir = await mkdtemp(path.join(os.tmpdir(), 'rt-embedded-sql-'));
    const dataDir = path.join(held.dir, 'pglite');
    held.liveTokens = await withFakeTenant(async (fake) => {
      const tenant = generateTenant({ users: 3, seed: 5, maxTokensPerUser: 4, datesAround: Date.now() });
      for (const [userId, tokens] of tenant) fake.setUser(userId, tokens);
      const env = { PGLITE_DATA_DIR: dataDir, AUTH0_DOMAIN: fake.url, AUTH0_CLIENT_ID: 'test-client', AUTH0_CLIENT_SECRET: 'test-secret', LOG_LEVEL: 'warn' };
      const { io, stderr } = captureIo();
      expect(await main(['migrate'], env, io)).toBe(0);
      const users = [...tenant.keys()].flatMap((id) => ['--user', id]);
      expect({ code: await main(['sync', ...users], env, io), stderr }).toEqual({ code: 0, stderr: expect.any(Array) });
      return [...tenant.values()].flat().length;
    });
  }, 90_000);
  afterAll(async () => {
    if (held.dir) await rm(held.dir, { recursive: true, force: true });
  });
  return function withWorld(use: (w: { dir: string; dataDir: string; liveTokens: number }) => Promise<void>): Promise<void> {
    const { dir: shared, liveTokens } = held;
    if (!shared || liveTokens === undefined) throw new Error('sharedSyncedDirectory(): take it inside a test');
    return withTempDir((dir) => use({ dir, dataDir: path.join(shared, 'pglite'), liveTokens }), 'rt-embedded-sql-test-');
  };
}
const withWorld = sharedSyncedDirectory();

async function query<T>(url: string, text: string): Promise<T[]> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return (await client.query(text)).rows as T[];
  } finally {
    await client.end();
  }
}

describe('npm run db: the embedded database over the PostgreSQL wire protocol', () => {
  it(
    'answers pg and psql on 127.0.0.1 while holding the directory lock, and releases it when stopped',
    () =>
      withWorld(async ({ dataDir, liveTokens }) => {
        const stop = new AbortController();
        const { io, stdout, stderr } = captureIo();
        const done = dbCommand({ port: '0' }, { PGLITE_DATA_DIR: dataDir }, io, stop.signal);
        while (stdout.length === 0 && stderr.length < 2) await new Promise((r) => setTimeout(r, 50));
        try {
          expect(stdout[0]).toMatch(/^psql "postgres:\/\/postgres@127\.0\.0\.1:\d+\/postgres"$/);
          expect(stderr[0]).toMatch(new RegExp(`^Serving the embedded database in .*pglite on 127\\.0\\.0\\.1:\\d+ \\(one connection at a time`));
          const url = /"(.*)"/.exec(stdout[0]!)![1]!;

          const [row] = await query<{ n: number }>(url, 'select count(*)::int as n from auth0.active_refresh_tokens');
          expect(row).toEqual({ n: liveTokens });
          // The reporting views answer too.
          const perClient = await query<{ active_tokens: number }>(url, 'select active_tokens::int from auth0.refresh_tokens_per_client');
          expect(perClient.reduce((sum, r) => sum + r.active_tokens, 0)).toBe(liveTokens);

          // Every query of the Reporting section (docs/warehouse.md) runs through it.
          const readme = readFileSync(path.join(ROOT, 'docs', 'warehouse.md'), 'utf8');
          const reporting = readme.slice(readme.indexOf('\n## Reporting\n'), readme.indexOf('\n## Change history\n'));
          const queries = [...reporting.matchAll(/```sql\n([\s\S]*?)```/g)].map((m) => m[1]!);
          expect(queries.length).toBeGreaterThanOrEqual(4);
          for (const text of queries) await expect(query(url, text)).resolves.toEqual(expect.any(Array));

          // The job cannot open the directory meanwhile: the lock admits one process.
          expect(() => acquireDirLock(dataDir, 'sync')).toThrow(RunLockedError);

          if (PSQL) {
            const { stdout: out } = await promisify(execFile)(PSQL, [url, '-At', '-c', 'select count(*) from auth0.refresh_tokens']);
            expect(out.trim()).toBe(String(liveTokens));
          }
        } finally {
          stop.abort();
          expect(await done).toBe(0);
        }
        expect(existsSync(`${dataDir}.lock`)).toBe(false);
        expect(stderr.at(-1)).toBe('Stopped; the embedded database is free for the job again.');
      }),
    60_000,
  );

  it(
    'answers a second client with a PostgreSQL error saying it takes one connection at a time, and logs it',
    () =>
      withWorld(async ({ dataDir }) => {
        const stop = new AbortController();
        const { io, stdout, stderr } = captureIo();
        const done = dbCommand({ port: '0' }, { PGLITE_DATA_DIR: dataDir }, io, stop.signal);
        while (stdout.length === 0 && stderr.length < 2) await new Promise((r) => setTimeout(r, 50));
        const first = new pg.Client({ connectionString: /"(.*)"/.exec(stdout[0]!)![1]! });
        try {
          await first.connect();
          const url = /"(.*)"/.exec(stdout[0]!)![1]!;
          await expect(query(url, 'select 1')).rejects.toMatchObject({
            code: '53300',
            severity: 'FATAL',
            message: expect.stringContaining('the embedded database takes one connection at a time and another client is connected'),
          });
          expect(stderr.at(-1)).toMatch(/^Refused a second client \(127\.0\.0\.1:\d+\): the embedded database takes one connection at a time\.$/);
          expect((await first.query('select 2 as two')).rows).toEqual([{ two: 2 }]); // the first is untouched
          await first.end();
          // The next one is let in (once the server has seen the first one's socket close).
          let next: unknown;
          for (let i = 0; i < 20 && next === undefined; i++) {
            next = await query(url, 'select 3 as three').catch(() => new Promise((r) => setTimeout(r, 100)));
          }
          expect(next).toEqual([{ three: 3 }]);
        } finally {
          await first.end().catch(() => {});
          stop.abort();
          expect(await done).toBe(0);
        }
        expect(existsSync(`${dataDir}.lock`)).toBe(false);
      }),
    60_000,
  );

  it(
    "with PGLITE_DATA_DIR unset and an empty .data/pglite (no tables), serves the demo's and says so",
    () =>
      withWorld(async ({ dir, dataDir }) => {
        const cwd = path.join(dir, 'checkout');
        const { PGlite } = await import('@electric-sql/pglite');
        await mkdir(path.join(cwd, '.data'), { recursive: true });
        const empty = await PGlite.create(path.join(cwd, '.data', 'pglite'));
        await empty.close();
        execFileSync('npm', ['run', '-s', 'build'], { cwd: ROOT, env: { PATH: process.env.PATH, HOME: process.env.HOME } });
        const child = spawn(process.execPath, [path.join(ROOT, 'dist/src/cli/main.js'), 'db', '--port', '0'], {
          cwd,
          env: { PATH: process.env.PATH, DEMO_DATA_DIR: dataDir },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let out = '';
        child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
        child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
        const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
        try {
          for (let i = 0; i < 600 && !out.includes('psql "') && child.exitCode === null; i++) await new Promise((r) => setTimeout(r, 50));
          expect(out).toContain(`The embedded database in .data/pglite holds no tables yet (npm run migrate creates them): serving the demo's, in ${dataDir}.`);
          const url = /psql "(.*)"/.exec(out)![1]!;
          expect(await query<{ n: number }>(url, 'select count(*)::int as n from auth0.refresh_tokens')).toEqual([{ n: expect.any(Number) }]);
        } finally {
          child.kill('SIGTERM');
          expect(await exited).toBe(0);
        }
        expect(existsSync(`${dataDir}.lock`)).toBe(false);
      }),
    90_000,
  );

  it(
    'as a process: prints the psql command, and SIGINT stops it cleanly (exit 0, lock released)',
    () =>
      withWorld(async ({ dataDir }) => {
        const cli = startCli(['db', '--port', '0'], { PGLITE_DATA_DIR: dataDir }, { timeoutMs: 60_000 });
        await cli.waitFor('psql "postgres://postgres@127.0.0.1:');
        const url = /"(.*)"/.exec(cli.stdout)![1]!;
        expect(await query(url, 'select 1 as one')).toEqual([{ one: 1 }]);
        cli.child.kill('SIGINT');
        const result = await cli.done;
        expect({ code: result.code, stderr: result.stderr }).toEqual({ code: 0, stderr: expect.stringContaining('Stopped;') });
        expect(existsSync(`${dataDir}.lock`)).toBe(false);
      }),
    60_000,
  );

  it('says what to fix: no database in the directory, DATABASE_URL set, a bad port', () =>
    withWorld(async ({ dir, dataDir }) => {
      const empty = path.join(dir, 'empty');
      await mkdir(empty);
      await expect(serveEmbeddedDatabase(empty, { port: 0 })).rejects.toMatchObject({
        code: 'data_dir_empty',
        message: expect.stringContaining('yet: npm run migrate creates it (then npm run sync fills it)'),
      });
      expect(existsSync(path.join(empty, 'PG_VERSION'))).toBe(false); // nothing created

      const server = captureIo();
      expect(await dbCommand({}, { DATABASE_URL: 'postgres://db.example/warehouse' }, server.io, new AbortController().signal)).toBe(1);
      expect(server.stderr).toEqual([expect.stringContaining('DATABASE_URL is set: the warehouse is that PostgreSQL server; query it with psql')]);

      const port = captureIo();
      expect(await main(['db'], { PGLITE_DATA_DIR: dataDir, PGLITE_PORT: 'abc' }, port.io)).toBe(EXIT.usage);
      expect(port.stderr.join('\n')).toContain("--port (or PGLITE_PORT) must be a port number from 0 to 65535, got 'abc'.");
      expect(existsSync(`${dataDir}.lock`)).toBe(false);
    }));
});
