/**
 * Issue #8, part A: whatever Auth0 (or whatever sits at AUTH0_DOMAIN) answers, no secret and no
 * control character reaches stdout, stderr, a table or `status`; the token endpoint never marks
 * anyone deleted; a huge answer is cut off while it streams; short-lived tokens under a tight
 * rate limit do not fail a run.
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { describe, expect, it } from '@jest/globals';
import { createAuth0Client } from '../../src/auth0/client.js';
import { Auth0Error } from '../../src/auth0/errors.js';
import { main } from '../../src/cli/main.js';
import { loadConfig, type Env } from '../../src/core/config.js';
import { rememberSecret, toSafeText } from '../../src/core/upstream-text.js';
import { captureIo, cliDeps, describeServer, loadUsers, type TestDatabase } from '../helpers/db.js';
import { sharedDatabase, withFakeTenant, withTestDatabase } from '../helpers/fixtures.js';
import { fastClock, makeToken } from '../helpers/fake-auth0.js';

const SECRET = `hostile-secret-${randomBytes(12).toString('hex')}`;
const LIST = '/api/v2/refresh-tokens';
/** Clear screen, bell, carriage return: what a hostile body would use to rewrite a terminal. */
const NASTY = '\u001b[2J\u0007\r\nFORGED log line\u001b]0;title\u0007';

type Shape = 'json' | 'text';
interface TokenScript {
  status: number;
  shape: Shape;
  /** For the 404 case: Auth0's words for a missing user. */
  message?: string;
}

/** A hostile tenant: its address, what it has issued (so the tests can look for it), and what it answers next. */
interface HostileTenant {
  url: string;
  /** Every access token it issued. */
  issued: string[];
  /** What the token endpoint answers; undefined: a token with `scope`. */
  tokenScript?: TokenScript;
  scope: string;
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString()));
    req.on('end', () => resolve(body));
  });
}

/** Every secret the server knows, in an answer: a proxy that logs requests into its error pages. */
function echo(req: IncomingMessage, body: string, issued: string[]): string {
  return `you sent ${req.method} ${req.url} authorization=${req.headers.authorization ?? ''} body=${body} ${NASTY} known=${issued.join(',')} ${SECRET} ${'x'.repeat(4000)}`;
}

function answer(res: ServerResponse, status: number, shape: Shape, text: string, extra: Record<string, unknown> = {}): void {
  const body = shape === 'json' ? JSON.stringify({ statusCode: status, error: `Err${NASTY}`, message: text, error_description: text, ...extra }) : text;
  res.writeHead(status, { 'content-type': shape === 'json' ? 'application/json' : 'text/plain' });
  res.end(body);
}

/** Streams `bytes` of a JSON array without ever holding more than one 64 KB chunk. */
function streamHuge(res: ServerResponse, bytes: number, announce: boolean): void {
  res.writeHead(200, { 'content-type': 'application/json', ...(announce ? { 'content-length': String(bytes) } : {}) });
  const chunk = Buffer.from(`${'{"id":"rt_0000000000000000"},'.repeat(2259)}  `); // 65,513 bytes
  let sent = 0;
  let closed = false;
  res.on('close', () => (closed = true));
  res.write('{"refresh_tokens":[');
  const pump = (): void => {
    while (!closed && sent < bytes) {
      sent += chunk.length;
      if (!res.write(chunk)) {
        res.once('drain', pump);
        return;
      }
    }
    if (!closed) res.end('{}]}');
  };
  pump();
}

/**
 * A tenant that echoes, closed after `use`: the token endpoint follows `tokenScript` (or issues a
 * token with a weird scope); the list endpoint answers by user ID: `auth0|ok` has one token,
 * `auth0|<status>-<shape>` answers that status echoing the request, `auth0|huge` /
 * `auth0|huge-announced` stream 300 MB.
 */
async function withHostileTenant<T>(use: (tenant: HostileTenant) => Promise<T>): Promise<T> {
  const tenant: HostileTenant = { url: '', issued: [], scope: `read:refresh_tokens ${NASTY} ${SECRET}` };
  const server = createServer((req, res) => {
    void (async () => {
      const body = await readBody(req);
      const url = new URL(req.url ?? '/', 'http://x');
      if (url.pathname === '/oauth/token') {
        if (tenant.tokenScript) {
          const { status, shape, message } = tenant.tokenScript;
          const text = message ?? echo(req, body, tenant.issued);
          answer(res, status, shape, text, message ? { errorCode: 'inexistent_user', error: message } : { error: `invalid_request ${NASTY} ${SECRET}` });
          return;
        }
        const token = randomBytes(24).toString('base64url');
        tenant.issued.push(token);
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ access_token: token, token_type: 'Bearer', expires_in: 86400, scope: tenant.scope }));
        return;
      }
      const userId = url.searchParams.get('user_id') ?? '';
      if (userId === 'auth0|ok' || userId === 'auth0|kept') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ refresh_tokens: [makeToken(userId, 1)] }));
        return;
      }
      if (userId.startsWith('auth0|huge')) {
        streamHuge(res, 300 * 1024 * 1024, userId === 'auth0|huge-announced');
        return;
      }
      const [status, shape] = userId.slice('auth0|'.length).split('-');
      answer(res, Number(status) || 400, shape === 'text' ? 'text' : 'json', echo(req, body, tenant.issued));
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  tenant.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  try {
    return await use(tenant);
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}

/** No secret, no control character but a tab or line break (pg_dump's own): raw, or escaped by JSON or COPY. */
function expectSafeOf(issued: string[], text: string): void {
  expect(text).not.toContain(SECRET);
  for (const token of issued) expect(text).not.toContain(token);
  expect(text).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f]/);
  expect(text).not.toMatch(/\\u001b|\\u0007|\\r|\\\\r/i);
}

/** What a CLI test works with: its emptied database, its hostile tenant, and helpers bound to both. */
function world(t: TestDatabase, tenant: HostileTenant) {
  function envOf(extra: Env = {}): Env {
    return {
      DATABASE_URL: t.url,
      AUTH0_DOMAIN: tenant.url,
      AUTH0_CLIENT_ID: 'hostile-client',
      AUTH0_CLIENT_SECRET: SECRET,
      LOG_LEVEL: 'debug',
      // One route: an echoing 404 must not switch the run to the other (issue #12's `auto`).
      AUTH0_TOKENS_ENDPOINT: 'refresh-tokens',
      ...extra,
    };
  }

  async function run(argv: string[], extra: Env = {}) {
    const out = captureIo();
    const code = await main(argv, envOf(extra), out.io, cliDeps(t));
    const failed = out.logs().find((line) => line.msg === 'sync failed');
    return { code, text: [...out.stdout, ...out.stderr].join('\n'), stderr: out.stderr, errorCode: failed?.code };
  }

  /** Every row of every auth0.* table, as pg_dump writes them. */
  async function dumpTables(): Promise<string> {
    const { stdout } = await promisify(execFile)('pg_dump', ['--data-only', '--schema=auth0', t.url!], { maxBuffer: 64 * 1024 * 1024 });
    return stdout.replace(/^\\(un)?restrict .*$/gm, ''); // pg_dump's own meta-commands
  }

  const expectSafe = (text: string) => expectSafeOf(tenant.issued, text);
  return { t, tenant, run, dumpTables, expectSafe };
}

describeServer('hostile upstream (CLI, real database)', () => {
  // An emptied database per test (the first one expects exactly its own users' rows) and a hostile tenant of its own.
  const { withEmptyDatabase } = sharedDatabase();
  const withTenant = (use: (w: ReturnType<typeof world>) => Promise<void>) => withEmptyDatabase((t) => withHostileTenant((tenant) => use(world(t, tenant))));

  it('keeps list-call errors that echo the bearer token and the secret out of outputs and tables', () =>
    withTenant(async ({ t, run, dumpTables, expectSafe }) => {
      const users = ['auth0|ok', 'auth0|400-json', 'auth0|400-text', 'auth0|418-json', 'auth0|418-text'];
      await loadUsers(t.db, users);
      const synced = await run(['sync', ...users.flatMap((u) => ['--user', u])]);
      expect(synced.code).toBe(2);
      const states = await t.db.selectFrom('auth0.user_sync_state').selectAll().orderBy('user_id').execute();
      expect(states.map((s) => [s.user_id, s.status, s.error_code])).toEqual([
        ['auth0|400-json', 'failed', 'bad_request'],
        ['auth0|400-text', 'failed', 'bad_request'],
        ['auth0|418-json', 'failed', 'bad_request'],
        ['auth0|418-text', 'failed', 'bad_request'],
        ['auth0|ok', 'synced', null],
      ]);
      // The echo was 4 KB: the stored message is capped near 1 KB, and still says what happened.
      for (const state of states.filter((s) => s.status === 'failed')) {
        expect(state.error!.length).toBeLessThan(1200);
        expect(state.error).toMatch(/^GET \/api\/v2\/refresh-tokens answered \d{3}: /);
        expect(state.error).toContain('[redacted]');
      }
      expectSafe(synced.text);

      for (const status of [401, 403]) {
        for (const shape of ['json', 'text']) {
          const user = `auth0|${status}-${shape}`;
          await loadUsers(t.db, [user]);
          const refused = await run(['sync', '--user', user, '--user', 'auth0|ok']);
          expect(refused.code).toBe(1);
          expect(refused.errorCode).toBe(status === 401 ? 'unauthorized' : 'forbidden');
          expect(refused.stderr).toHaveLength(1);
          expectSafe(refused.text);
        }
      }

      // An echoing 404 is not Auth0's "no such user": that user fails (or, before the route has
      // answered once, the run stops as endpoint_unavailable); nothing is marked deleted.
      for (const shape of ['json', 'text']) {
        const user = `auth0|404-${shape}`;
        await loadUsers(t.db, [user]);
        const echoed = await run(['sync', '--user', user, '--user', 'auth0|ok']);
        expect([1, 2]).toContain(echoed.code);
        if (echoed.code === 1) expect(echoed.errorCode).toBe('endpoint_unavailable');
        expectSafe(echoed.text);
        const state = await t.db.selectFrom('auth0.user_sync_state').selectAll().where('user_id', '=', user).executeTakeFirst();
        expect(state?.status ?? 'not written').not.toBe('not_found');
      }
      const deleted = await t.db.selectFrom('auth0.refresh_tokens').select('id').where('deleted_at', 'is not', null).execute();
      expect(deleted).toEqual([]);

      const status = await run(['status']);
      expect(status.text).toContain('auth0|400-json');
      expectSafe(status.text);
      expectSafe(await dumpTables());
    }));

  it('keeps a weird scope out of outputs, and refuses it when it lacks read:refresh_tokens', () =>
    withTenant(async ({ tenant, run, dumpTables, expectSafe }) => {
      tenant.scope = `read:users ${NASTY} ${SECRET} ${'s'.repeat(3000)}`;
      const refused = await run(['sync', '--user', 'auth0|ok']);
      expect(refused.code).toBe(1);
      expect(refused.errorCode).toBe('missing_scope');
      expect(refused.stderr.join('\n').length).toBeLessThan(1000);
      expectSafe(refused.text);
      expectSafe(await dumpTables());
    }));

  it.each([400, 401, 403, 404, 307, 418].flatMap((status) => (['json', 'text'] as const).map((shape) => ({ status, shape }))))(
    'stops the run with one sentence when the token endpoint answers $status ($shape), echoing the secret',
    ({ status, shape }) =>
      withTenant(async ({ tenant, run, dumpTables, expectSafe }) => {
        tenant.tokenScript = { status, shape };
        const refused = await run(['sync', '--user', 'auth0|ok']);
        expect(refused.code).toBe(1);
        expect(refused.stderr).toHaveLength(1);
        expect(refused.errorCode).toBe(status === 401 || status === 403 ? 'invalid_credentials' : 'token_refused');
        expect(refused.stderr[0]).toContain(`POST /oauth/token answered ${status}`);
        expect(refused.stderr[0]!.length).toBeLessThan(600);
        expectSafe(refused.text);
        expectSafe(await dumpTables());
      }),
  );

  it('never marks tokens deleted when the token endpoint says "The user does not exist."', () =>
    withTenant(async ({ t, tenant, run }) => {
      await loadUsers(t.db, ['auth0|kept']);
      expect((await run(['sync', '--user', 'auth0|kept'])).code).toBe(0);
      tenant.tokenScript = { status: 404, shape: 'json', message: 'The user does not exist.' };
      const refused = await run(['sync', '--user', 'auth0|kept']);
      expect(refused.code).toBe(1);
      expect(refused.errorCode).toBe('token_refused');
      const tokens = await t.db.selectFrom('auth0.refresh_tokens').select(['deleted_at']).where('user_id', '=', 'auth0|kept').execute();
      expect(tokens).toEqual([{ deleted_at: null }]);
      const state = await t.db.selectFrom('auth0.user_sync_state').selectAll().where('user_id', '=', 'auth0|kept').executeTakeFirstOrThrow();
      expect(state.status).toBe('synced');
    }));

  it('cuts a 300 MB answer off while it streams, fails that user, and keeps memory flat', () =>
    withTenant(async ({ t, run, expectSafe }) => {
      const users = ['auth0|ok', 'auth0|huge', 'auth0|huge-announced'];
      await loadUsers(t.db, users);
      global.gc?.();
      const before = process.memoryUsage().rss;
      let peak = before;
      const sampler = setInterval(() => (peak = Math.max(peak, process.memoryUsage().rss)), 5);
      try {
        const synced = await run(['sync', ...users.flatMap((u) => ['--user', u])], { AUTH0_MAX_RESPONSE_BYTES: String(10 * 1024 * 1024) });
        expect(synced.code).toBe(2);
        expectSafe(synced.text);
      } finally {
        clearInterval(sampler);
      }
      peak = Math.max(peak, process.memoryUsage().rss);
      const states = await t.db
        .selectFrom('auth0.user_sync_state')
        .select(['user_id', 'status', 'error_code'])
        .where('user_id', 'in', users)
        .orderBy('user_id')
        .execute();
      expect(states).toEqual([
        { user_id: 'auth0|huge', status: 'failed', error_code: 'response_too_large' },
        { user_id: 'auth0|huge-announced', status: 'failed', error_code: 'response_too_large' },
        { user_id: 'auth0|ok', status: 'synced', error_code: null },
      ]);
      expect((peak - before) / 1024 / 1024).toBeLessThan(150);
    }));
});

describe('toSafeText', () => {
  it('scrubs a secret in every form, even one an escape sequence was spliced into', () => {
    const secret = `spliced-${randomBytes(8).toString('hex')}`;
    rememberSecret(secret);
    const spliced = `${secret.slice(0, 5)}\u001b[2J${secret.slice(5)}`;
    const text = toSafeText(`a ${secret} b ${JSON.stringify(secret)} c ${encodeURIComponent(secret)} d ${spliced}\u0007\r\n`);
    expect(text).not.toContain(secret);
    expect(text).toBe('a [redacted] b "[redacted]" c [redacted] d [redacted]  ');
    expect(toSafeText('x'.repeat(100_000))).toHaveLength(1024);
  });
});

describe('hostile upstream (client, 5xx answers)', () => {
  function client(tenant: HostileTenant) {
    const config = loadConfig({ AUTH0_DOMAIN: tenant.url, AUTH0_CLIENT_ID: 'c', AUTH0_CLIENT_SECRET: SECRET });
    return createAuth0Client(config.auth0, { clock: fastClock, maxRetries: 1 });
  }

  it.each(['json', 'text'] as const)('retries a token endpoint 502 (%s), then fails token_unavailable with safe text', (shape) =>
    withHostileTenant(async (tenant) => {
      tenant.tokenScript = { status: 502, shape };
      const auth0 = client(tenant);
      try {
        const error = (await auth0.getJson(LIST, { user_id: 'auth0|ok' }).catch((e: unknown) => e)) as Auth0Error;
        expect(error).toBeInstanceOf(Auth0Error);
        expect(error.code).toBe('token_unavailable');
        expect(error.fatal).toBe(true);
        expectSafeOf(tenant.issued, error.message);
        expect(error.message.length).toBeLessThan(600);
      } finally {
        auth0.close();
      }
    }),
  );

  it.each(['json', 'text'] as const)('reports a list 502 (%s) echoing the bearer token as safe, capped text', (shape) =>
    withHostileTenant(async (tenant) => {
      const auth0 = client(tenant);
      try {
        const error = (await auth0.getJson(LIST, { user_id: `auth0|502-${shape}` }).catch((e: unknown) => e)) as Auth0Error;
        expect(error.code).toBe('server_error');
        expectSafeOf(tenant.issued, error.message);
        expect(error.message.length).toBeLessThanOrEqual(1100);
        expect(error.message).toContain('authorization=Bearer [redacted]');
      } finally {
        auth0.close();
      }
    }),
  );
});

describeServer('short-lived access tokens under a tight rate limit', () => {
  it('completes a run with 2-second tokens at 40 req/s burst 5, restarting users whose cursor expired', () =>
    withTestDatabase((db) =>
      withFakeTenant(
        async (fake) => {
          const users = Array.from({ length: 30 }, (_, i) => `auth0|short${String(i).padStart(2, '0')}`);
          for (const user of users)
            fake.setUser(
              user,
              [1, 2, 3, 4, 5].map((n) => makeToken(user, n)),
            );
          await loadUsers(db.db, users);
          let expired = false;
          fake.intercept((ctx) => {
            if (!expired && ctx.count >= 60) {
              expired = true;
              fake.expireCursors();
            }
            return undefined;
          });
          const out = captureIo();
          const code = await main(
            ['sync'],
            {
              DATABASE_URL: db.url,
              AUTH0_DOMAIN: fake.url,
              AUTH0_CLIENT_ID: 'test-client',
              AUTH0_CLIENT_SECRET: 'test-secret',
              LOG_LEVEL: 'warn',
              SYNC_PAGE_SIZE: '2',
            },
            out.io,
            cliDeps(db),
          );
          expect(out.stderr).toEqual([]);
          expect(code).toBe(0);
          const stored = await db.db
            .selectFrom('auth0.refresh_tokens')
            .select((eb) => eb.fn.countAll<string>().as('n'))
            .where('deleted_at', 'is', null)
            .executeTakeFirstOrThrow();
          expect(Number(stored.n)).toBe(150);
          expect(fake.stats.tokenRequests).toBeGreaterThanOrEqual(2);
          expect(fake.stats.tokenRequests).toBeLessThanOrEqual(8);
          expect(fake.stats.byStatus[400]).toBeGreaterThanOrEqual(1); // some cursor did expire mid-listing
        },
        { tokenLifetimeSeconds: 2, rateLimit: { perSecond: 40, burst: 5 } },
      ),
    ));
});
