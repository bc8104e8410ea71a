import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { streamExport } from '../../src/auth0/users-export.js';
import type { ExportedUser } from '../../src/database.js';

/** A storage host scripted per path; records every request's headers. */
let server: Server;
let base: string;
const seen: { path: string; headers: Record<string, unknown> }[] = [];
const routes = new Map<string, (res: import('node:http').ServerResponse) => void>();

beforeAll(async () => {
  server = createServer((req, res) => {
    seen.push({ path: req.url ?? '', headers: req.headers });
    const route = routes.get((req.url ?? '').split('?')[0]!);
    if (route) route(res);
    else res.writeHead(404).end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

function serveGzip(path: string, text: string) {
  routes.set(path, (res) => res.writeHead(200, { 'content-type': 'application/gzip' }).end(gzipSync(text)));
}

async function collect(path: string, options = {}): Promise<ExportedUser[][]> {
  const batches: ExportedUser[][] = [];
  await streamExport(`${base}${path}`, async (users) => void batches.push(users), options);
  return batches;
}

describe('streamExport', () => {
  it('hands over every user in order, in batches, the last line without a newline too, and sends no Authorization header', async () => {
    const lines = Array.from({ length: 25 }, (_, i) => JSON.stringify({ user_id: `auth0|${i}`, email: `${i}@x`, connection: 'db' }));
    serveGzip('/ok.json.gz', lines.join('\n'));
    const batches = await collect('/ok.json.gz', { batchSize: 10 });
    expect(batches.flat().map((u) => u.userId)).toEqual(Array.from({ length: 25 }, (_, i) => `auth0|${i}`));
    expect(seen.at(-1)!.headers.authorization).toBeUndefined();
  });

  it('does not follow a redirect', async () => {
    routes.set('/moved', (res) => res.writeHead(302, { location: `${base}/elsewhere` }).end());
    await expect(collect('/moved')).rejects.toMatchObject({ code: 'download_failed', message: expect.stringContaining('answered 302') });
    expect(seen.some((r) => r.path === '/elsewhere')).toBe(false);
  });

  it('takes a 403 for an expired link', async () => {
    routes.set('/expired', (res) => res.writeHead(403).end('<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>'));
    await expect(collect('/expired')).rejects.toMatchObject({ code: 'link_expired' });
  });

  it('refuses a line that is not JSON or holds no user_id, naming the line', async () => {
    serveGzip('/garbage.json.gz', '{"user_id":"a"}\nnot json\n');
    await expect(collect('/garbage.json.gz')).rejects.toMatchObject({ code: 'export_unreadable', message: expect.stringContaining('line 2 is not JSON') });
    serveGzip('/noid.json.gz', '{"user_id":"a"}\n{"email":"x"}\n');
    await expect(collect('/noid.json.gz')).rejects.toMatchObject({ code: 'export_unreadable', message: expect.stringContaining('line 2 holds no user_id') });
  });

  it('refuses a line longer than the cap, and a file that is not gzip', async () => {
    serveGzip('/long.json.gz', `{"user_id":"${'a'.repeat(5000)}"}\n`);
    await expect(collect('/long.json.gz', { maxLineBytes: 1000 })).rejects.toMatchObject({ code: 'export_unreadable', message: expect.stringContaining('longer than 1000 bytes') });
    routes.set('/plain', (res) => res.writeHead(200).end('{"user_id":"a"}\n'));
    await expect(collect('/plain')).rejects.toMatchObject({ code: 'export_unreadable', message: expect.stringContaining('truncated or not gzip') });
  });

  it('reports a connection that breaks mid-file as a failed download', async () => {
    const whole = gzipSync(Array.from({ length: 2000 }, (_, i) => JSON.stringify({ user_id: `u${i}`, email: `padding-${'x'.repeat(50)}` })).join('\n'));
    routes.set('/broken', (res) => {
      res.writeHead(200, { 'content-length': whole.length });
      res.write(whole.subarray(0, whole.length >> 1), () => res.destroy());
    });
    const error = await collect('/broken').catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'download_failed' });
  });
});
