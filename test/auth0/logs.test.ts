import { afterEach, beforeEach, describe, expect, it } from '@jest/globals';
import { createAuth0Client, type Auth0Client } from '../../src/auth0/client.js';
import { fetchNewestLog, LogsError, nextLink, readLogs, type LogPage } from '../../src/auth0/logs.js';
import { configFor, fastClock, startFakeAuth0, type FakeAuth0 } from '../helpers/fake-auth0.js';

let fake: FakeAuth0;
let client: Auth0Client;

beforeEach(async () => {
  fake = await startFakeAuth0();
  client = createAuth0Client(configFor(fake, undefined).auth0, { clock: fastClock });
});
afterEach(async () => {
  client.close();
  await fake.close();
});

async function readAll(from: string, options = {}, using = client): Promise<LogPage[]> {
  const pages: LogPage[] = [];
  for await (const page of readLogs(using, from, options)) pages.push(page);
  return pages;
}

describe('readLogs', () => {
  it('follows the Link pages in log_id order until an empty page', async () => {
    const start = fake.logs.append({ type: 's', user_id: 'auth0|0' });
    for (let i = 1; i <= 250; i++) fake.logs.append({ type: 's', user_id: `auth0|${i}` });
    fake.resetStats();
    const pages = await readAll(String(start.log_id));
    expect(pages.map((p) => p.entries.length)).toEqual([100, 100, 50]);
    const users = pages.flatMap((p) => p.entries.map((e) => e.user_id));
    expect(users).toEqual(Array.from({ length: 250 }, (_, i) => `auth0|${i + 1}`));
    expect(pages.at(-1)!.next).toBe(fake.logs.newestId());
    expect(fake.stats.logRequests).toBe(4); // three pages and the empty one
  });

  it('keeps only from and take of the Link, never its host', async () => {
    const start = fake.logs.append({ type: 's', user_id: 'auth0|a' });
    const second = fake.logs.append({ type: 's', user_id: 'auth0|b' });
    fake.logs.append({ type: 's', user_id: 'auth0|c' });
    const seen: string[] = [];
    fake.intercept((ctx) => {
      if (ctx.path !== '/api/v2/logs') return undefined;
      seen.push(`${ctx.query.get('from')}/${ctx.query.get('take')}`);
      if (ctx.query.get('from') !== start.log_id) return undefined;
      return {
        status: 200,
        body: JSON.stringify([second]),
        headers: { link: `<https://evil.example/steal?from=${String(second.log_id)}&take=7>; rel="next"` },
      };
    });
    const pages = await readAll(String(start.log_id), { take: 3 });
    expect(pages.flatMap((p) => p.entries.map((e) => e.user_id))).toEqual(['auth0|b', 'auth0|c']);
    expect(seen).toEqual([`${String(start.log_id)}/3`, `${String(second.log_id)}/7`, `${fake.logs.newestId()}/7`]);
  });

  it('continues after the last entry when the Link does not move on', async () => {
    const start = fake.logs.append({ type: 's', user_id: 'auth0|a' });
    fake.logs.append({ type: 's', user_id: 'auth0|b' });
    fake.intercept((ctx) =>
      ctx.path === '/api/v2/logs' && ctx.query.get('from') === start.log_id
        ? { status: 200, body: JSON.stringify(fake.logs.entries.slice(1)), headers: { link: `<${fake.url}/api/v2/logs?from=${String(start.log_id)}&take=100>; rel="next"` } }
        : undefined,
    );
    const pages = await readAll(String(start.log_id));
    expect(pages).toHaveLength(1);
    expect(pages[0]!.next).toBe(fake.logs.newestId());
  });

  it('reports an expired checkpoint and a missing scope as LogsError', async () => {
    const old = fake.logs.append({ type: 's', user_id: 'auth0|a' });
    fake.logs.append({ type: 's', user_id: 'auth0|b' });
    fake.logs.append({ type: 's', user_id: 'auth0|c' });
    // The checkpoint itself may go: only entries after it that are gone lose history.
    fake.logs.expireBefore(fake.logs.entries[1]!.log_id as string);
    expect((await readAll(String(old.log_id))).flatMap((p) => p.entries)).toHaveLength(2);
    fake.logs.expireBefore(fake.logs.newestId()!);
    await expect(readAll(String(old.log_id))).rejects.toMatchObject({ name: 'LogsError', code: 'log_checkpoint_expired' });

    fake.setScope('read:refresh_tokens');
    const narrow = createAuth0Client(configFor(fake, undefined).auth0, { clock: fastClock });
    try {
      const error = await readAll(fake.logs.newestId()!, {}, narrow).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(LogsError);
      expect(error).toMatchObject({ code: 'logs_forbidden', message: expect.stringContaining('grant it the read:logs scope') });
    } finally {
      narrow.close();
    }
  });
});

describe('fetchNewestLog', () => {
  it('reads the newest entry in search mode, or nothing from an empty tenant', async () => {
    expect(await fetchNewestLog(client)).toBeUndefined();
    fake.logs.append({ type: 's', user_id: 'auth0|a' });
    const newest = fake.logs.append({ type: 'slo', user_id: 'auth0|b' });
    expect(await fetchNewestLog(client)).toEqual(newest);
  });
});

describe('the sandbox logs in search mode', () => {
  it('sorts by date, pages with per_page, and stops at 1,000 results', async () => {
    for (let i = 1; i <= 5; i++) fake.logs.append({ type: 's', user_id: `auth0|${i}` });
    const users = (body: unknown) => (body as { user_id: string }[]).map((e) => e.user_id);
    expect(users(await client.getJson('/api/v2/logs', { sort: 'date:1', per_page: 2, page: 1 }))).toEqual(['auth0|3', 'auth0|4']);
    expect(users(await client.getJson('/api/v2/logs', { sort: 'date:-1', per_page: 2, page: 0 }))).toEqual(['auth0|5', 'auth0|4']);
    await expect(client.getJson('/api/v2/logs', { per_page: 100, page: 10 })).rejects.toMatchObject({ status: 400 });
  });
});

describe('nextLink', () => {
  it.each([
    ['<https://t.auth0.com/api/v2/logs?from=900&take=50>; rel="next"', { from: '900', take: 50 }],
    ['<https://t/api/v2/logs?from=1&take=100>; rel="prev", </api/v2/logs?from=2&take=999>; rel=next', { from: '2', take: undefined }],
    ['<https://t/api/v2/logs>; rel="next"', { from: undefined, take: undefined }],
    ['garbage', undefined],
    [undefined, undefined],
  ])('%s → %j', (header, expected) => {
    expect(nextLink(header)).toEqual(expected);
  });
});
