import { describe, expect, it } from '@jest/globals';
import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import type { BadLine } from '../../src/auth0/users-export-lines.js';
import { streamExport } from '../../src/auth0/users-export.js';
import type { ExportedUser } from '../../src/core/exported-user.js';

/** A storage host scripted per path (`routes`), recording every request's headers (`seen`), closed after `use`. */
async function withStorage(use: (w: ReturnType<typeof world>) => Promise<void>): Promise<void> {
  const seen: { path: string; headers: Record<string, unknown> }[] = [];
  const routes = new Map<string, (res: ServerResponse) => void>();
  const server = createServer((req, res) => {
    seen.push({ path: req.url ?? '', headers: req.headers });
    const route = routes.get((req.url ?? '').split('?')[0]!);
    if (route) route(res);
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  try {
    await use(world(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen, routes));
  } finally {
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  }
}

/** `count` valid user lines (`auth0|0`…), with `replace` putting raw text in place of some lines (1-based). */
function exportText(count: number, replace: Record<number, string> = {}): string {
  const lines: string[] = [];
  for (let i = 1; i <= count; i++) lines.push(replace[i] ?? `{"user_id":"auth0|${i}","email":"u${i}@example.com","connection":"db"}`);
  return `${lines.join('\n')}\n`;
}

/** What a test works with: the storage host's address, what it saw, its routes, and helpers bound to them. */
function world(base: string, seen: { path: string; headers: Record<string, unknown> }[], routes: Map<string, (res: ServerResponse) => void>) {
  function serveGzip(path: string, text: string) {
    routes.set(path, (res) => res.writeHead(200, { 'content-type': 'application/gzip' }).end(gzipSync(text)));
  }

  async function collect(path: string, options = {}): Promise<ExportedUser[][]> {
    const batches: ExportedUser[][] = [];
    await streamExport(`${base}${path}`, async (users) => void batches.push(users), options);
    return batches;
  }

  return { base, seen, routes, serveGzip, collect };
}

describe('streamExport', () => {
  it('hands over every user in order, in batches, the last line without a newline too, and sends no Authorization header', () =>
    withStorage(async ({ seen, serveGzip, collect }) => {
      const lines = Array.from({ length: 25 }, (_, i) => JSON.stringify({ user_id: `auth0|${i}`, email: `${i}@x`, connection: 'db' }));
      serveGzip('/ok.json.gz', lines.join('\n'));
      const batches = await collect('/ok.json.gz', { batchSize: 10 });
      expect(batches.flat().map((u) => u.userId)).toEqual(Array.from({ length: 25 }, (_, i) => `auth0|${i}`));
      expect(seen.at(-1)!.headers.authorization).toBeUndefined();
    }));

  it('does not follow a redirect', () =>
    withStorage(async ({ base, seen, routes, collect }) => {
      routes.set('/moved', (res) => res.writeHead(302, { location: `${base}/elsewhere` }).end());
      await expect(collect('/moved')).rejects.toMatchObject({ code: 'download_failed', message: expect.stringContaining('answered 302') });
      expect(seen.some((r) => r.path === '/elsewhere')).toBe(false);
    }));

  it('takes a 403 for an expired link', () =>
    withStorage(async ({ routes, collect }) => {
      routes.set('/expired', (res) => res.writeHead(403).end('<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>'));
      await expect(collect('/expired')).rejects.toMatchObject({ code: 'link_expired' });
    }));

  it('refuses a line that is not JSON or holds no user_id, naming the line', () =>
    withStorage(async ({ serveGzip, collect }) => {
      serveGzip('/garbage.json.gz', '{"user_id":"a"}\nnot json\n');
      await expect(collect('/garbage.json.gz')).rejects.toMatchObject({ code: 'export_unreadable', message: expect.stringContaining('line 2 is not JSON') });
      serveGzip('/noid.json.gz', '{"user_id":"a"}\n{"email":"x"}\n');
      await expect(collect('/noid.json.gz')).rejects.toMatchObject({ code: 'export_unreadable', message: expect.stringContaining('line 2 holds no user_id') });
    }));

  it('refuses a line longer than the cap, and a file that is not gzip', () =>
    withStorage(async ({ routes, serveGzip, collect }) => {
      serveGzip('/long.json.gz', `{"user_id":"${'a'.repeat(5000)}"}\n`);
      await expect(collect('/long.json.gz', { maxLineBytes: 1000 })).rejects.toMatchObject({
        code: 'export_unreadable',
        message: expect.stringContaining('line 1 is longer than 1000 characters'),
      });
      routes.set('/plain', (res) => res.writeHead(200).end('{"user_id":"a"}\n'));
      await expect(collect('/plain')).rejects.toMatchObject({ code: 'export_unreadable', message: expect.stringContaining('truncated or not gzip') });
    }));

  it('reports a connection that breaks mid-file as a failed download', () =>
    withStorage(async ({ routes, collect }) => {
      const whole = gzipSync(Array.from({ length: 2000 }, (_, i) => JSON.stringify({ user_id: `u${i}`, email: `padding-${'x'.repeat(50)}` })).join('\n'));
      routes.set('/broken', (res) => {
        res.writeHead(200, { 'content-length': whole.length });
        res.write(whole.subarray(0, whole.length >> 1), () => res.destroy());
      });
      const error = await collect('/broken').catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'download_failed' });
    }));

  it('names the line and the reason on a file large enough to stream, instead of "The operation was aborted"', () =>
    withStorage(async ({ serveGzip, collect }) => {
      serveGzip('/big-garbage.json.gz', exportText(300_000, { 299_000: 'not json' }));
      await expect(collect('/big-garbage.json.gz')).rejects.toMatchObject({
        code: 'export_unreadable',
        message: expect.stringContaining('line 299000 is not JSON'),
      });
      serveGzip('/big-noid.json.gz', exportText(300_000, { 250_001: '{"email":"x"}' }));
      await expect(collect('/big-noid.json.gz')).rejects.toMatchObject({ message: expect.stringContaining('line 250001 holds no user_id') });
      serveGzip('/big-long.json.gz', exportText(300_000, { 200_000: `{"user_id":"${'a'.repeat(5000)}"}` }));
      await expect(collect('/big-long.json.gz', { maxLineBytes: 1000 })).rejects.toMatchObject({
        message: expect.stringContaining('line 200000 is longer than 1000 characters'),
      });
      serveGzip('/big-badid.json.gz', exportText(300_000, { 123_456: '{"user_id":"auth0|\\u001b[31mred"}' }));
      await expect(collect('/big-badid.json.gz')).rejects.toMatchObject({
        message: expect.stringContaining('line 123456 holds user ID "auth0|red", which contains a control character'),
      });
    }));

  it('lets an error thrown by onBatch through as it was thrown, late in a large file', () =>
    withStorage(async ({ base, serveGzip }) => {
      serveGzip('/big.json.gz', exportText(300_000));
      const thrown = new Error('the database refused batch 100');
      let calls = 0;
      const error = await streamExport(`${base}/big.json.gz`, async () => {
        if (++calls === 100) throw thrown;
      }).catch((e: unknown) => e);
      expect(error).toBe(thrown);
    }));

  it('skips bad lines through onBadLine, an over-long one without holding it, and reads on', () =>
    withStorage(async ({ serveGzip, collect }) => {
      const long = `{"user_id":"${'a'.repeat(300_000)}"}`;
      serveGzip('/mixed.json.gz', exportText(10, { 2: 'not json', 4: long, 6: '{"email":"x"}', 8: '{"user_id":"auth0|\\u0000"}', 9: '' }));
      const bad: BadLine[] = [];
      const batches = await collect('/mixed.json.gz', { maxLineBytes: 1000, onBadLine: (b: BadLine) => void bad.push(b) });
      expect(batches.flat().map((u) => u.userId)).toEqual(['auth0|1', 'auth0|3', 'auth0|5', 'auth0|7', 'auth0|10']);
      expect(bad.map((b) => [b.line, b.reason])).toEqual([
        [2, 'not_json'],
        [4, 'too_long'],
        [6, 'no_user_id'],
        [8, 'bad_user_id'],
      ]);
      expect(bad[3]!.problem).toBe('holds user ID "auth0|", which contains a NUL character');
    }));

  it('refuses a file past IMPORT_MAX_LINES, and one that inflates past the ratio (a gzip bomb), naming the cap', () =>
    withStorage(async ({ serveGzip, collect }) => {
      serveGzip('/lines.json.gz', exportText(1000));
      await expect(collect('/lines.json.gz', { maxLines: 999 })).rejects.toMatchObject({
        code: 'export_too_large',
        message: expect.stringContaining('more than 999 lines (line 1000 is one too many)'),
      });
      serveGzip('/bomb.json.gz', 'x'.repeat(64 * 2 ** 20));
      await expect(collect('/bomb.json.gz')).rejects.toMatchObject({
        code: 'export_too_large',
        message: expect.stringMatching(/inflates to more than 100 times its compressed size .* at line 1\)/),
      });
    }));
});
