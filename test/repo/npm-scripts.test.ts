import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync, statSync } from 'node:fs';
import { symlink } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { main } from '../../src/cli/main.js';
import { ROOT } from '../helpers/cli.js';
import { captureIo } from '../helpers/db.js';
import { withFakeTenant, withTempDir } from '../helpers/fixtures.js';
import { makeToken, type FakeAuth0 } from '../helpers/fake-auth0.js';

// Issue #19: the long-running npm scripts end in `exec node …`, so the signal sent to
// `npm run …` reaches the process that holds the port and the directory lock (npm forwards
// SIGTERM and SIGINT to its child; with `build && node …` that child was sh, which kept node).

/** `npm run -s <script> -- …args` with only `env` set (and what npm needs to run); the processes it starts are added to `started`. */
function startNpm(started: Set<number>, script: string, args: string[], env: Record<string, string>) {
  const child = spawn('npm', ['run', '-s', script, '--', ...args], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, HOME: process.env.HOME, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString()));
  const killer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  const closed = new Promise<void>((resolve) => child.on('close', () => resolve()));
  // npm's own exit code, then its output to the end (a node that outlived npm would hold the
  // pipes open: wait for them a moment only).
  const done = new Promise<number | null>((resolve) =>
    child.on('exit', (code) => {
      clearTimeout(killer);
      void Promise.race([closed, new Promise((r) => setTimeout(r, 2000))]).then(() => resolve(code));
    }),
  );
  return {
    child,
    done,
    output: () => out,
    async waitFor(pattern: RegExp): Promise<RegExpExecArray> {
      for (;;) {
        const match = pattern.exec(out);
        if (match) return match;
        if (child.exitCode !== null) throw new Error(`npm run ${script} exited ${child.exitCode}: ${out}`);
        await new Promise((r) => setTimeout(r, 50));
      }
    },
    /** The processes npm started (with `exec`, node itself). */
    children: () => {
      const pids = execFileSync('ps', ['-o', 'pid=', '--ppid', String(child.pid)], { encoding: 'utf8' })
        .split('\n')
        .map((line) => Number(line.trim()))
        .filter((pid) => pid > 0);
      for (const pid of pids) started.add(pid);
      return pids;
    },
  };
}

const isAlive = (pid: number) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

const refuses = (port: number) =>
  new Promise<boolean>((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.once('connect', () => {
      socket.destroy();
      resolve(false);
    });
    socket.once('error', () => resolve(true));
  });

/** What a test works with: a temporary directory, and `startNpm` whose processes are killed after `use` (a test that fails must not leave one holding a port). */
function withWorld(
  use: (w: { dir: string; startNpm: (script: string, args: string[], env: Record<string, string>) => ReturnType<typeof startNpm> }) => Promise<void>,
): Promise<void> {
  return withTempDir(async (dir) => {
    const started = new Set<number>();
    try {
      await use({ dir, startNpm: (script, args, env) => startNpm(started, script, args, env) });
    } finally {
      for (const pid of [...started].filter(isAlive)) process.kill(pid, 'SIGKILL');
    }
  }, 'rt-npm-scripts-');
}

/** `withWorld`, an embedded database migrated in `dataDir` (in the test's directory) and a tenant of one user. */
function withMigrated(use: (w: Parameters<Parameters<typeof withWorld>[0]>[0] & { dataDir: string; fake: FakeAuth0 }) => Promise<void>): Promise<void> {
  return withWorld((w) =>
    withFakeTenant(async (fake) => {
      fake.setUser('auth0|1', [makeToken('auth0|1', 1)]);
      const dataDir = path.join(w.dir, 'pglite');
      const { io, stderr } = captureIo();
      expect({ code: await main(['migrate'], { PGLITE_DATA_DIR: dataDir, LOG_LEVEL: 'warn' }, io), stderr }).toEqual({ code: 0, stderr: expect.any(Array) });
      await use({ ...w, dataDir, fake });
    }),
  );
}

describe('the bin entry', () => {
  // What `npx auth0-refresh-token-sync` and an installed package run: the built file package.json
  // names, executable, through a symlink as npm links bins. (Asking npx itself depends on npm's
  // hidden lockfile being current, which a checkout in use seldom keeps.)
  it(
    'is the built program, executable through a link, and --help prints the overview',
    () =>
      withWorld(async ({ dir }) => {
        execFileSync('npm', ['run', '-s', 'build'], { cwd: ROOT, env: { PATH: process.env.PATH, HOME: process.env.HOME } });
        const { bin } = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { bin: Record<string, string> };
        const target = path.join(ROOT, bin['auth0-refresh-token-sync']!);
        expect(statSync(target).mode & 0o111).not.toBe(0);
        const link = path.join(dir, 'auth0-refresh-token-sync');
        await symlink(target, link);
        const help = execFileSync(link, ['--help'], { cwd: dir, env: { PATH: process.env.PATH, HOME: process.env.HOME }, encoding: 'utf8' });
        expect(help).toMatch(/^Usage: auth0-refresh-token-sync \[options\] \[command\]/);
        expect(help).toMatch(/\n  status +0 /);
      }),
    60_000,
  );
});

describe('a signal to npm reaches the command', () => {
  it(
    'npm run db: SIGTERM, then SIGINT, stop it; no process, port or lock is left',
    () =>
      withMigrated(async ({ dataDir, startNpm }) => {
        for (const signal of ['SIGTERM', 'SIGINT'] as const) {
          const npm = startNpm('db', ['--port', '0'], { PGLITE_DATA_DIR: dataDir });
          const port = Number((await npm.waitFor(/psql "postgres:\/\/postgres@127\.0\.0\.1:(\d+)\//))[1]);
          const children = npm.children();
          expect(children).toHaveLength(1);
          expect(existsSync(`${dataDir}.lock`)).toBe(true);
          npm.child.kill(signal);
          expect({ signal, code: await npm.done }).toEqual({ signal, code: 0 });
          expect(npm.output()).toContain('Stopped; the embedded database is free for the job again.');
          expect(children.filter(isAlive)).toEqual([]);
          expect(await refuses(port)).toBe(true);
          expect(existsSync(`${dataDir}.lock`)).toBe(false);
        }
      }),
    90_000,
  );

  it(
    'npm run worker and npm run sandbox stop on SIGINT and SIGTERM',
    () =>
      withMigrated(async ({ dataDir, fake, startNpm }) => {
        const worker = startNpm('worker', [], {
          PGLITE_DATA_DIR: dataDir,
          AUTH0_DOMAIN: fake.url,
          AUTH0_CLIENT_ID: 'test-client',
          AUTH0_CLIENT_SECRET: 'test-secret',
          SYNC_SCHEDULE: '0 0 1 1 *',
          LOG_LEVEL: 'info',
        });
        await worker.waitFor(/worker started/);
        const workerChildren = worker.children();
        worker.child.kill('SIGINT');
        expect(await worker.done).toBe(0);
        expect(workerChildren.filter(isAlive)).toEqual([]);
        expect(existsSync(`${dataDir}.lock`)).toBe(false);

        const sandbox = startNpm('sandbox', ['--port', '0', '--users', '3'], {});
        const port = Number((await sandbox.waitFor(/AUTH0_DOMAIN=http:\/\/127\.0\.0\.1:(\d+)\n/))[1]);
        const sandboxChildren = sandbox.children();
        sandbox.child.kill('SIGTERM');
        expect(await sandbox.done).toBe(0);
        expect(sandboxChildren.filter(isAlive)).toEqual([]);
        expect(await refuses(port)).toBe(true);
      }),
    90_000,
  );
});
