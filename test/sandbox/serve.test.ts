import { afterEach, describe, expect, it } from '@jest/globals';
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { ROOT } from '../helpers/cli.js';

let child: ChildProcess | undefined;
afterEach(async () => {
  if (child && child.exitCode === null) {
    const exited = new Promise((resolve) => child!.once('exit', resolve));
    child.kill('SIGTERM');
    await exited;
  }
  child = undefined;
});

describe('src/sandbox/serve.ts', () => {
  it('--no-early-access serves only GET /api/v2/users/{user_id}/refresh-tokens', async () => {
    child = spawn(process.execPath, ['--import', 'tsx', 'src/sandbox/serve.ts', '--users', '3', '--no-early-access'], {
      cwd: ROOT,
      stdio: ['pipe', 'pipe', 'inherit'],
    });
    const lines = createInterface({ input: child.stdout! });
    const ready = JSON.parse(await new Promise<string>((resolve) => lines.once('line', resolve))) as { url: string; earlyAccess: boolean };
    expect(ready.earlyAccess).toBe(false);
    const tokenRes = await fetch(`${ready.url}/oauth/token`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ grant_type: 'client_credentials', client_id: 'test-client', client_secret: 'test-secret', audience: `${ready.url}/api/v2/` }),
    });
    const headers = { authorization: `Bearer ${((await tokenRes.json()) as { access_token: string }).access_token}` };
    const ea = await fetch(`${ready.url}/api/v2/refresh-tokens?user_id=${encodeURIComponent('auth0|user000001')}`, { headers });
    expect(ea.status).toBe(404);
    const users = await fetch(`${ready.url}/api/v2/users/${encodeURIComponent('auth0|user000001')}/refresh-tokens`, { headers });
    expect(users.status).toBe(200);
    expect(Array.isArray(((await users.json()) as { tokens: unknown }).tokens)).toBe(true);
  }, 20_000);
});
