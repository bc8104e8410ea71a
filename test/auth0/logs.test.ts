import { describe, expect, it } from '@jest/globals';
import { createAuth0Client, type Auth0Client } from '../../src/auth0/client.js';
import {
  fetchNewestLog,
  fetchOldestLog,
  LogsError,
  nextLink,
  nextLogBatch,
  readLogs,
  toNextCursor,
  type LogPage,
  type ReadLogsOptions,
} from '../../src/auth0/logs.js';
import { HOSTILE_LOG_IDS } from '../../sandbox/logs.js';
import { hasControlCharacter } from '../../src/core/upstream-text.js';
import { configFor, fastClock, type FakeAuth0 } from '../helpers/fake-auth0.js';
import { withFakeTenant } from '../helpers/fixtures.js';

/** Every page readLogs yields from `from`, through `client`. */
async function readAllWith(client: Auth0Client, from: string, options: ReadLogsOptions = {}): Promise<LogPage[]> {
  const pages: LogPage[] = [];
  for await (const page of readLogs(client, from, options)) pages.push(page);
  return pages;
}

/** A fake tenant and a client of it, with `readAll` through that client (or `using`): closed after `use`. */
function withClient(use: (w: ReturnType<typeof world>) => Promise<void>): Promise<void> {
  return withFakeTenant(async (fake) => {
    const client = createAuth0Client(configFor(fake, undefined).auth0, { clock: fastClock });
    try {
      await use(world(fake, client));
    } finally {
      client.close();
    }
  });
}

function world(fake: FakeAuth0, client: Auth0Client) {
  const readAll = (from: string, options: ReadLogsOptions = {}, using = client) => readAllWith(using, from, options);
  return { fake, client, readAll };
}

describe('readLogs', () => {
  it('follows the Link pages in log_id order until an empty page', () =>
    withClient(async ({ fake, readAll }) => {
      const start = fake.logs.append({ type: 's', user_id: 'auth0|0' });
      for (let i = 1; i <= 250; i++) fake.logs.append({ type: 's', user_id: `auth0|${i}` });
      fake.resetStats();
      const pages = await readAll(String(start.log_id));
      // The empty answer is the last page, and says why reading stopped.
      expect(pages.map((p) => p.entries.length)).toEqual([100, 100, 50, 0]);
      expect(pages.map((p) => p.end)).toEqual([undefined, undefined, undefined, 'caught_up']);
      const users = pages.flatMap((p) => p.entries.map((e) => e.user_id));
      expect(users).toEqual(Array.from({ length: 250 }, (_, i) => `auth0|${i + 1}`));
      expect(pages.at(-1)!.next).toBe(fake.logs.newestId());
      expect(fake.stats.logRequests).toBe(4); // three pages and the empty one
    }));

  it('keeps only from and take of the Link, never its host', () =>
    withClient(async ({ fake, readAll }) => {
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
    }));

  it('continues after the last entry when the Link does not move on', () =>
    withClient(async ({ fake, readAll }) => {
      const start = fake.logs.append({ type: 's', user_id: 'auth0|a' });
      fake.logs.append({ type: 's', user_id: 'auth0|b' });
      fake.intercept((ctx) =>
        ctx.path === '/api/v2/logs' && ctx.query.get('from') === start.log_id
          ? {
              status: 200,
              body: JSON.stringify(fake.logs.entries.slice(1)),
              headers: { link: `<${fake.url}/api/v2/logs?from=${String(start.log_id)}&take=100>; rel="next"` },
            }
          : undefined,
      );
      const pages = await readAll(String(start.log_id));
      expect(pages).toHaveLength(2);
      expect(pages[0]!.next).toBe(fake.logs.newestId());
      expect(pages[1]).toMatchObject({ entries: [], end: 'caught_up' });
    }));

  it('ends on an inclusive from (the checkpoint entry answered again) instead of reading it forever', () =>
    withClient(async ({ fake, readAll }) => {
      fake.logs.setQuirks({ inclusiveFrom: true });
      const start = fake.logs.append({ type: 's', user_id: 'auth0|a' });
      fake.logs.append({ type: 's', user_id: 'auth0|b' });
      fake.logs.append({ type: 's', user_id: 'auth0|c' });
      fake.resetStats();
      const pages = await readAll(String(start.log_id), { take: 2 });
      expect(pages.flatMap((p) => p.entries.map((e) => e.user_id))).toEqual(['auth0|b', 'auth0|c']);
      expect(pages.at(-1)).toMatchObject({ next: fake.logs.newestId(), end: 'caught_up' });
      expect(pages.reduce((n, p) => n + p.ignored.before_checkpoint + p.ignored.duplicate, 0)).toBe(3);
      expect(fake.stats.logRequests).toBe(3);
      // Only the checkpoint itself: nothing new, caught up at once.
      expect(await readAll(fake.logs.newestId()!)).toEqual([
        { entries: [], next: fake.logs.newestId(), ignored: { bad_log_id: 0, before_checkpoint: 1, duplicate: 0 }, end: 'caught_up' },
      ]);
    }));

  it('calls a full page it cannot read past stuck, not caught up (take 1 and an inclusive from)', () =>
    withClient(async ({ fake, readAll }) => {
      fake.logs.setQuirks({ inclusiveFrom: true });
      const start = fake.logs.append({ type: 's', user_id: 'auth0|a' });
      fake.logs.append({ type: 's', user_id: 'auth0|b' });
      expect(await readAll(String(start.log_id), { take: 1 })).toEqual([
        { entries: [], next: start.log_id, ignored: { bad_log_id: 0, before_checkpoint: 1, duplicate: 0 }, end: 'stuck' },
      ]);
    }));

  it('ends when the Link always points at the same from', () =>
    withClient(async ({ fake, readAll }) => {
      fake.logs.setQuirks({ stuckNext: true });
      const start = fake.logs.append({ type: 's', user_id: 'auth0|a' });
      for (let i = 0; i < 5; i++) fake.logs.append({ type: 's', user_id: `auth0|${i}` });
      const pages = await readAll(String(start.log_id), { take: 2 });
      expect(pages.flatMap((p) => p.entries)).toHaveLength(5);
      expect(pages.at(-1)).toMatchObject({ end: 'caught_up', next: fake.logs.newestId() });
    }));

  it('reads duplicate and out-of-order entries once each', () =>
    withClient(async ({ fake, readAll }) => {
      fake.logs.setQuirks({ duplicates: true, outOfOrder: true });
      const start = fake.logs.append({ type: 's', user_id: 'auth0|0' });
      for (let i = 1; i <= 7; i++) fake.logs.append({ type: 's', user_id: `auth0|${i}` });
      const pages = await readAll(String(start.log_id), { take: 3 });
      const users = pages.flatMap((p) => p.entries.map((e) => String(e.user_id)));
      expect(users.sort()).toEqual(Array.from({ length: 7 }, (_, i) => `auth0|${i + 1}`));
      expect(pages.reduce((n, p) => n + p.ignored.duplicate, 0)).toBe(7);
      expect(pages.at(-1)).toMatchObject({ end: 'caught_up', next: fake.logs.newestId() });
    }));

  it('drops entries with a hostile log_id and ignores a hostile Link, counting them', () =>
    withClient(async ({ fake, readAll }) => {
      fake.logs.setQuirks({ hostileIds: true, hostileNext: true });
      const start = fake.logs.append({ type: 's', user_id: 'auth0|0' });
      for (let i = 1; i <= 6; i++) fake.logs.append({ type: 's', user_id: `auth0|${i}` });
      const pages = await readAll(String(start.log_id), { take: 2 });
      expect(pages.flatMap((p) => p.entries.map((e) => e.user_id))).toEqual(Array.from({ length: 6 }, (_, i) => `auth0|${i + 1}`));
      expect(pages.reduce((n, p) => n + p.ignored.bad_log_id, 0)).toBe(3); // one per page with entries
      for (const page of pages) {
        expect(HOSTILE_LOG_IDS).not.toContain(page.next);
        expect(hasControlCharacter(page.next)).toBe(false);
        for (const entry of page.entries) expect(HOSTILE_LOG_IDS).not.toContain(entry.log_id);
      }
      expect(pages.at(-1)).toMatchObject({ end: 'caught_up', next: fake.logs.newestId() });
    }));

  it('stops at maxPages and at the deadline, saying so on the last page', () =>
    withClient(async ({ fake, readAll }) => {
      const start = fake.logs.append({ type: 's', user_id: 'auth0|0' });
      for (let i = 1; i <= 10; i++) fake.logs.append({ type: 's', user_id: `auth0|${i}` });
      const bounded = await readAll(String(start.log_id), { take: 2, maxPages: 3 });
      expect(bounded).toHaveLength(3);
      expect(bounded.at(-1)).toMatchObject({ end: 'page_limit', next: fake.logs.entries[6]!.log_id });
      let clock = 0;
      const timed = await readAll(String(start.log_id), { take: 2, deadline: 2, now: () => (clock += 1) });
      expect(timed.at(-1)!.end).toBe('time_limit');
      expect(timed.length).toBeLessThan(5);
    }));

  it('gathers pages into batches that carry the end', () =>
    withClient(async ({ fake, client }) => {
      const start = fake.logs.append({ type: 's', user_id: 'auth0|0' });
      for (let i = 1; i <= 5; i++) fake.logs.append({ type: 's', user_id: `auth0|${i}` });
      const pages = readLogs(client, String(start.log_id), { take: 2 });
      const first = await nextLogBatch(pages, String(start.log_id), 2);
      expect(first).toMatchObject({ pages: 2, next: fake.logs.entries[4]!.log_id });
      expect(first.end).toBeUndefined();
      const second = await nextLogBatch(pages, first.next, 2);
      expect(second).toMatchObject({ pages: 2, next: fake.logs.newestId(), end: 'caught_up' });
      expect([...first.entries, ...second.entries]).toHaveLength(5);
    }));

  it('reports an expired checkpoint and a missing scope as LogsError', () =>
    withClient(async ({ fake, readAll }) => {
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
    }));
});

describe('fetchNewestLog', () => {
  it('reads the newest entry in search mode, or nothing from an empty tenant', () =>
    withClient(async ({ fake, client }) => {
      expect(await fetchNewestLog(client)).toBeUndefined();
      fake.logs.append({ type: 's', user_id: 'auth0|a' });
      const newest = fake.logs.append({ type: 'slo', user_id: 'auth0|b' });
      expect(await fetchNewestLog(client)).toEqual(newest);
    }));
});

describe('fetchOldestLog', () => {
  it('reads the oldest retained entry by date', () =>
    withClient(async ({ fake, client }) => {
      expect(await fetchOldestLog(client)).toBeUndefined();
      const oldest = fake.logs.append({ type: 's', user_id: 'auth0|a', date: '2026-11-01T00:00:00.000Z' });
      fake.logs.append({ type: 's', user_id: 'auth0|b', date: '2026-12-01T00:00:00.000Z' });
      expect(await fetchOldestLog(client)).toEqual(oldest);
    }));
});

describe('toNextCursor', () => {
  it.each([
    ['the Link, within the page', '5', '7', '8', '7'],
    ['the last entry when the Link stays put', '5', '5', '8', '8'],
    ['the last entry when the Link jumps past the page', '5', '99', '8', '8'],
    ['the last entry when the Link is hostile', '5', '\u001b[2J9', '8', '8'],
    ['the Link when no entry has a good id', '5', '9', undefined, '9'],
    ['nothing when neither moves on (an inclusive from)', '5', '5', '5', undefined],
    ['nothing on an empty answer', '5', '5', undefined, undefined],
  ])('%s', (_what, cursor, link, last, expected) => {
    expect(toNextCursor(cursor, link, last)).toBe(expected);
  });
});

describe('the sandbox logs in search mode', () => {
  it('sorts by date, pages with per_page, and stops at 1,000 results', () =>
    withClient(async ({ fake, client }) => {
      for (let i = 1; i <= 5; i++) fake.logs.append({ type: 's', user_id: `auth0|${i}` });
      const users = (body: unknown) => (body as { user_id: string }[]).map((e) => e.user_id);
      expect(users(await client.getJson('/api/v2/logs', { sort: 'date:1', per_page: 2, page: 1 }))).toEqual(['auth0|3', 'auth0|4']);
      expect(users(await client.getJson('/api/v2/logs', { sort: 'date:-1', per_page: 2, page: 0 }))).toEqual(['auth0|5', 'auth0|4']);
      await expect(client.getJson('/api/v2/logs', { per_page: 100, page: 10 })).rejects.toMatchObject({ status: 400 });
    }));
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
