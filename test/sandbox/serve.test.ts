import { describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { ROOT } from '../helpers/cli.js';

/** A sandbox process `start` spawns, stopped (SIGTERM, then its exit awaited) after `use`, whether the test passed or threw. */
async function withChild(start: () => ChildProcess, use: (child: ChildProcess) => Promise<void>): Promise<void> {
  const child = start();
  try {
    await use(child);
  } finally {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.kill('SIGTERM');
      await exited;
    }
  }
}

/** Run serve.ts to its end (usage errors and --help exit at once). */
function runServe(args: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const run = spawn(process.execPath, ['--import', 'tsx', 'sandbox/serve.ts', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  run.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  run.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve) => run.on('close', (code) => resolve({ code, stdout, stderr })));
}

describe('sandbox/serve.ts keeps the conventions of the CLI', () => {
  it('--help lists every flag and exits 0; a typo gets a suggestion and exit 64, as does a bad value', async () => {
    const [help, typo, value] = await Promise.all([runServe(['--help']), runServe(['--chnage-every', '5']), runServe(['--fault-rate', '2'])]);
    expect(help.code).toBe(0);
    for (const flag of ['--port <n>', '--users <n>', '--recent', '--change-every <seconds>', '--change-percent <p>', '--for-people', '--no-early-access']) {
      expect(help.stdout).toContain(flag);
    }
    expect(typo).toMatchObject({ code: 64, stderr: "error: unknown option '--chnage-every'\n(Did you mean --change-every?)\n" });
    expect(value).toMatchObject({ code: 64, stderr: "error: option '--fault-rate <f>' argument '2' is invalid. It takes a number from 0 to 1.\n" });
  }, 20_000);
});

describe('sandbox/serve.ts', () => {
  it(
    '--no-early-access serves only GET /api/v2/users/{user_id}/refresh-tokens',
    () =>
      withChild(
        () =>
          spawn(process.execPath, ['--import', 'tsx', 'sandbox/serve.ts', '--users', '3', '--no-early-access'], {
            cwd: ROOT,
            stdio: ['pipe', 'pipe', 'inherit'],
          }),
        async (child) => {
          const lines = createInterface({ input: child.stdout! });
          const ready = JSON.parse(await new Promise<string>((resolve) => lines.once('line', resolve))) as { url: string; earlyAccess: boolean };
          expect(ready.earlyAccess).toBe(false);
          const tokenRes = await fetch(`${ready.url}/oauth/token`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({
              grant_type: 'client_credentials',
              client_id: 'test-client',
              client_secret: 'test-secret',
              audience: `${ready.url}/api/v2/`,
            }),
          });
          const headers = { authorization: `Bearer ${((await tokenRes.json()) as { access_token: string }).access_token}` };
          const ea = await fetch(`${ready.url}/api/v2/refresh-tokens?user_id=${encodeURIComponent('auth0|user000001')}`, { headers });
          expect(ea.status).toBe(404);
          const users = await fetch(`${ready.url}/api/v2/users/${encodeURIComponent('auth0|user000001')}/refresh-tokens?include_totals=true`, { headers });
          expect(users.status).toBe(200);
          expect(Array.isArray(((await users.json()) as { tokens: unknown }).tokens)).toBe(true);
        },
      ),
    20_000,
  );

  it(
    'npm run sandbox (--for-people --recent): prints the variables for the job; tokens are dated around today; --change-every changes users',
    () =>
      withChild(
        () =>
          spawn(
            process.execPath,
            [
              '--import',
              'tsx',
              'sandbox/serve.ts',
              '--users',
              '20',
              '--recent',
              '--change-every',
              '1',
              '--change-percent',
              '50',
              '--port',
              '0',
              '--for-people',
            ],
            { cwd: ROOT, stdio: ['pipe', 'pipe', 'inherit'] },
          ),
        async (child) => {
          let out = '';
          child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
          while (!out.includes('Ctrl-C stops the tenant.')) {
            if (child.exitCode !== null) throw new Error(`exited ${child.exitCode}: ${out}`);
            await new Promise((r) => setTimeout(r, 50));
          }
          expect(out).toMatch(
            /^Sandbox Auth0 tenant on http:\/\/127\.0\.0\.1:\d+: 20 users, \d+ refresh tokens, dated around today; 50% of the users change every 1 s\./,
          );
          const url = /export AUTH0_DOMAIN=(http:\/\/127\.0\.0\.1:\d+)\n/.exec(out)![1]!;
          expect(out).toContain('export AUTH0_CLIENT_ID=test-client\n');
          expect(out).toContain('export AUTH0_CLIENT_SECRET=test-secret');
          expect(out).toContain('export PGLITE_DATA_DIR=.data/sandbox\n');
          // The first follow only records its checkpoint: the recipe says so.
          expect(out).toContain('npm run sync -- --from-logs   # the first follow only sets its checkpoint');

          const tokenRes = await fetch(`${url}/oauth/token`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({ grant_type: 'client_credentials', client_id: 'test-client', client_secret: 'test-secret', audience: `${url}/api/v2/` }),
          });
          const headers = { authorization: `Bearer ${((await tokenRes.json()) as { access_token: string }).access_token}` };
          const tokensOf = async (user: string) => {
            const res = await fetch(`${url}/api/v2/users/${encodeURIComponent(user)}/refresh-tokens?include_totals=true`, { headers });
            return ((await res.json()) as { tokens: { id: string; created_at: string; last_exchanged_at: string }[] }).tokens;
          };
          const users = Array.from({ length: 20 }, (_, i) => `auth0|user${String(i + 1).padStart(6, '0')}`);
          const before = (await Promise.all(users.map(tokensOf))).flat();
          expect(before.length).toBeGreaterThan(0);
          const yearAgo = Date.now() - 366 * 86_400_000;
          for (const token of before) {
            expect(Date.parse(token.created_at)).toBeGreaterThan(yearAgo);
            expect(Date.parse(token.last_exchanged_at)).toBeLessThanOrEqual(Date.now());
          }
          // Within a few seconds (however slow the machine), the tenant has changed under the same ids.
          let changed = false;
          for (let i = 0; i < 100 && !changed; i++) {
            await new Promise((r) => setTimeout(r, 200));
            const ids = new Set(before.map((t) => t.id));
            changed = (await Promise.all(users.map(tokensOf))).flat().some((t) => !ids.has(t.id));
          }
          expect(changed).toBe(true);
        },
      ),
    60_000,
  );

  it(
    '--logs-* flags make the logs misbehave: a hostile Link, an expired from answered [] (after `expire` on stdin)',
    () =>
      withChild(
        () =>
          spawn(process.execPath, ['--import', 'tsx', 'sandbox/serve.ts', '--users', '2', '--logs-hostile-next', '--logs-expired', 'empty'], {
            cwd: ROOT,
            stdio: ['pipe', 'pipe', 'inherit'],
          }),
        async (child) => {
          const lines = createInterface({ input: child.stdout! });
          const nextLine = () => new Promise<string>((resolve) => lines.once('line', resolve));
          const ready = JSON.parse(await nextLine()) as { url: string };
          const tokenRes = await fetch(`${ready.url}/oauth/token`, {
            method: 'POST',
            headers: { 'content-type': 'application/json' },
            body: JSON.stringify({
              grant_type: 'client_credentials',
              client_id: 'test-client',
              client_secret: 'test-secret',
              audience: `${ready.url}/api/v2/`,
            }),
          });
          const headers = { authorization: `Bearer ${((await tokenRes.json()) as { access_token: string }).access_token}` };
          const res = await fetch(`${ready.url}/api/v2/logs?from=1&take=10`, { headers });
          expect(res.status).toBe(200);
          const link = /^<([^>]*)>/.exec(res.headers.get('link') ?? '')![1]!;
          expect(new URL(link).searchParams.get('from')).toMatch(/\u001b|\u0000|^9{1}0{599}$/);
          // The tenant has no entries yet: `expire` on one drops nothing, and answers the oldest.
          child.stdin!.write('expire 1\n');
          expect(JSON.parse(await nextLine())).toEqual({ oldest: null });
        },
      ),
    20_000,
  );

  it(
    'refuses an unknown --logs-expired',
    () =>
      withChild(
        () =>
          spawn(process.execPath, ['--import', 'tsx', 'sandbox/serve.ts', '--logs-expired', 'sometimes'], {
            cwd: ROOT,
            stdio: ['ignore', 'pipe', 'pipe'],
          }),
        async (child) => {
          let err = '';
          child.stderr!.on('data', (chunk: Buffer) => (err += chunk.toString()));
          const code = await new Promise((resolve) => child.once('exit', resolve));
          expect(code).toBe(64); // a usage error, as every other flag's
          expect(err).toContain("argument 'sometimes' is invalid. Allowed choices are refuse, empty, oldest.");
        },
      ),
    20_000,
  );
});
