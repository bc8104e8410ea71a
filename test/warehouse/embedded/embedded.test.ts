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
import { runCli, startCli, type CliRun } from '../../helpers/cli.js';
import { makeToken, startFakeAuth0, type FakeAuth0 } from '../../helpers/fake-auth0.js';

let dir: string;
let fake: FakeAuth0;

beforeAll(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'rt-embedded-'));
  fake = await startFakeAuth0();
  fake.setUser('auth0|1', [makeToken('auth0|1', 1), makeToken('auth0|1', 2)]);
});
afterAll(async () => {
  await fake.close();
  await rm(dir, { recursive: true, force: true });
});

describe('the embedded database (no DATABASE_URL)', () => {
  // Each test has a data directory of its own.
  const env = (name = 'pglite') => ({
    PGLITE_DATA_DIR: path.join(dir, name),
    AUTH0_DOMAIN: fake.url,
    AUTH0_CLIENT_ID: 'test-client',
    AUTH0_CLIENT_SECRET: 'test-secret',
    LOG_LEVEL: 'info',
  });
  /** `migrate` run once, as a process, in a new directory: PGlite's initdb takes seconds. */
  let migrated: CliRun;
  beforeAll(async () => {
    migrated = await runCli(['migrate'], env('pglite-migrated'), { timeoutMs: 60_000 });
  }, 90_000);
  /** A migrated data directory of its own, copied from the one migrated above. */
  const migratedCopy = async (name: string) => {
    expect(migrated.code).toBe(0);
    await cp(env('pglite-migrated').PGLITE_DATA_DIR, env(name).PGLITE_DATA_DIR, { recursive: true });
    return env(name);
  };

  it('migrates, syncs and reports status, saying once that it is embedded and how to use a server', async () => {
    expect(migrated.code).toBe(0);
    expect(migrated.stderr.trim()).toBe(
      `DATABASE_URL is not set: using the embedded PostgreSQL (PGlite) in ${env('pglite-migrated').PGLITE_DATA_DIR}. Set DATABASE_URL=postgres://… to use a server.`,
    );
    expect(migrated.stdout).toContain('applied: 2026_11_26_1100_reporting_views');

    const synced = await runCli(['sync', '--user', 'auth0|1'], await migratedCopy('pglite'), { timeoutMs: 60_000 });
    expect(synced.code).toBe(0);
    expect(synced.stdout).toMatch(/"msg":"sync finished".*"usersSynced":1.*"tokensSeen":2/);

    const status = await runCli(['status'], env(), { timeoutMs: 60_000 });
    expect(status.code).toBe(0);
    expect(status.stdout).toContain('succeeded');
  }, 90_000);

  it('a command that needs a database creates none: it says where it looked, what to run, and where the demo keeps its own', async () => {
    const nowhere = path.join(dir, 'not-yet', 'pglite');
    const demo = env('pglite-migrated').PGLITE_DATA_DIR; // stands for the demo's directory
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
  }, 90_000);

  it('a second process on the same directory exits 3 instead of corrupting it', async () => {
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
  }, 90_000);
});

describe('acquireDirLock', () => {
  it('refuses a directory held by a live process and takes over one whose process is gone', () => {
    const target = path.join(dir, 'locked');
    const release = acquireDirLock(target, 'first');
    expect(() => acquireDirLock(target, 'second')).toThrow(RunLockedError);
    release();
    writeFileSync(`${target}.lock`, JSON.stringify({ pid: 2 ** 22 + 7, host: os.hostname(), command: 'dead', since: '' }));
    const again = acquireDirLock(target, 'third');
    again();
  });

  it('is one sentence naming the directory (status: exit 5), not exit 3, when the lock file cannot be created', async () => {
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
  });
});
