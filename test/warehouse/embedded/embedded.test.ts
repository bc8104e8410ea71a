import { existsSync, writeFileSync } from 'node:fs';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { acquireDirLock } from '../../../src/warehouse/embedded/dir-lock.js';
import { main } from '../../../src/cli/main.js';
import { FatalError } from '../../../src/core/errors.js';
import { RunLockedError } from '../../../src/warehouse/run-lock.js';
import { captureIo } from '../../helpers/db.js';
import { withFakeTenant, withTempDir } from '../../helpers/fixtures.js';
import { runCli, startCli, type CliRun } from '../../helpers/cli.js';
import { makeToken, type FakeAuth0 } from '../../helpers/fake-auth0.js';

describe('the embedded database (no DATABASE_URL)', () => {
  /**
   * `migrate` run once for the block, as a process, in a directory of its own (PGlite's initdb
   * takes seconds), removed after its last test; a test copies it (`migratedCopy`).
   */
  const template: { dir?: string; migrated?: CliRun } = {};
  beforeAll(async () => {
    template.dir = await mkdtemp(path.join(os.tmpdir(), 'rt-embedded-template-'));
    template.migrated = await runCli(['migrate'], { PGLITE_DATA_DIR: path.join(template.dir, 'pglite-migrated'), LOG_LEVEL: 'info' }, { timeoutMs: 60_000 });
  }, 90_000);
  afterAll(async () => {
    if (template.dir) await rm(template.dir, { recursive: true, force: true });
  });

  /** What a test works with: a temporary directory and a tenant of its own, the migrated template, and helpers bound to them. */
  function withWorld(use: (w: ReturnType<typeof world>) => Promise<void>): Promise<void> {
    return withTempDir(
      (dir) =>
        withFakeTenant(async (fake) => {
          fake.setUser('auth0|1', [makeToken('auth0|1', 1), makeToken('auth0|1', 2)]);
          await use(world(dir, fake));
        }),
      'rt-embedded-',
    );
  }
  function world(dir: string, fake: FakeAuth0) {
    const migrated = template.migrated!;
    const migratedDir = path.join(template.dir!, 'pglite-migrated');
    // Each test has a data directory of its own.
    const env = (name = 'pglite') => ({
      PGLITE_DATA_DIR: path.join(dir, name),
      AUTH0_DOMAIN: fake.url,
      AUTH0_CLIENT_ID: 'test-client',
      AUTH0_CLIENT_SECRET: 'test-secret',
      LOG_LEVEL: 'info',
    });
    /** A migrated data directory of its own, copied from the one migrated above. */
    const migratedCopy = async (name: string) => {
      expect(migrated.code).toBe(0);
      await cp(migratedDir, env(name).PGLITE_DATA_DIR, { recursive: true });
      return env(name);
    };
    return { dir, migrated, migratedDir, env, migratedCopy };
  }

  it(
    'migrates, syncs and reports status, saying once that it is embedded and how to use a server',
    () =>
      withWorld(async ({ migrated, migratedDir, env, migratedCopy }) => {
        expect(migrated.code).toBe(0);
        expect(migrated.stderr.trim()).toBe(
          `DATABASE_URL is not set: using the embedded PostgreSQL (PGlite) in ${migratedDir}. Set DATABASE_URL=postgres://… to use a server.`,
        );
        expect(migrated.stdout).toContain('applied: 2026_11_26_1100_reporting_views');

        const synced = await runCli(['sync', '--user', 'auth0|1'], await migratedCopy('pglite'), { timeoutMs: 60_000 });
        expect(synced.code).toBe(0);
        expect(synced.stdout).toMatch(/"msg":"sync finished".*"usersSynced":1.*"tokensSeen":2/);

        const status = await runCli(['status'], env(), { timeoutMs: 60_000 });
        expect(status.code).toBe(0);
        expect(status.stdout).toContain('succeeded');
      }),
    90_000,
  );

  it(
    'a command that needs a database creates none: it says where it looked, what to run, and where the demo keeps its own',
    () =>
      withWorld(async ({ dir, migratedDir, env }) => {
        const nowhere = path.join(dir, 'not-yet', 'pglite');
        const demo = migratedDir; // stands for the demo's directory
        const run = async (argv: string[]) => {
          const out = captureIo();
          const code = await main(argv, { ...env(), PGLITE_DATA_DIR: nowhere, DEMO_DATA_DIR: demo }, out.io);
          return { code, stderr: out.stderr.filter((line) => !line.startsWith('DATABASE_URL is not set')).join('\n') };
        };
        const expected =
          `error [data_dir_empty]: There is no embedded database in ${nowhere} yet: npm run migrate creates it (then npm run sync fills it), ` +
          `or set PGLITE_DATA_DIR to the directory that holds one (DATABASE_URL for a server); nothing was created. ` +
          `The demo's database is in ${demo}: set PGLITE_DATA_DIR=${demo} to use it.`;
        expect(await run(['status'])).toEqual({ code: 5, stderr: expected });
        expect(await run(['migrate', '--list'])).toEqual({ code: 1, stderr: expected });
        expect(await run(['sync'])).toEqual({ code: 1, stderr: expected });
        expect(await run(['worker'])).toEqual({ code: 1, stderr: expected });
        expect(existsSync(path.join(dir, 'not-yet'))).toBe(false);
      }),
    90_000,
  );

  it(
    'a second process on the same directory exits 3 instead of corrupting it',
    () =>
      withWorld(async ({ env, migratedCopy }) => {
        // A migrated directory: the worker refuses one with pending migrations.
        const worker = startCli(['worker'], { ...(await migratedCopy('pglite-worker')), SYNC_SCHEDULE: '0 0 1 1 *' }, { timeoutMs: 60_000 });
        try {
          await worker.waitFor('worker started');
          const second = await runCli(['sync'], env('pglite-worker'), { timeoutMs: 30_000 });
          expect(second.code).toBe(3);
          expect(second.stderr).toMatch(/The embedded database .* is in use by another process \(worker, pid \d+/);
          expect(second.stderr).toContain('set DATABASE_URL');
        } finally {
          worker.child.kill('SIGTERM');
          expect((await worker.done).code).toBe(0);
        }
      }),
    90_000,
  );
});

describe('acquireDirLock', () => {
  it('refuses a directory held by a live process and takes over one whose process is gone', () =>
    withTempDir(async (dir) => {
      const target = path.join(dir, 'locked');
      const release = acquireDirLock(target, 'first');
      expect(() => acquireDirLock(target, 'second')).toThrow(RunLockedError);
      release();
      writeFileSync(`${target}.lock`, JSON.stringify({ pid: 2 ** 22 + 7, host: os.hostname(), command: 'dead', since: '' }));
      const again = acquireDirLock(target, 'third');
      again();
    }));

  it('is one sentence naming the directory (status: exit 5), not exit 3, when the lock file cannot be created', () =>
    withTempDir(async (dir) => {
      const file = path.join(dir, 'a-file');
      writeFileSync(file, 'not a directory');
      const target = path.join(file, 'pglite');
      expect(() => acquireDirLock(target, 'x')).toThrow(FatalError);
      expect(() => acquireDirLock(target, 'x')).toThrow(expect.objectContaining({ code: 'data_dir_unusable' }) as never);

      const out = captureIo();
      expect(await main(['migrate'], { PGLITE_DATA_DIR: target }, out.io)).toBe(1);
      expect(out.stderr.at(-1)).toBe(
        `error [data_dir_unusable]: The embedded database directory ${target} cannot be used (a part of the path is a file, not a directory); set PGLITE_DATA_DIR to a writable directory, or DATABASE_URL to use a PostgreSQL server.`,
      );
    }));
});
