import { describe, expect, it } from '@jest/globals';
import { createTenantLog, HOSTILE_LOG_IDS, type LogEntryJson } from '../../../sandbox/logs.js';

const ORIGIN = 'http://127.0.0.1:1';

function tenantWith(n: number, quirks = {}) {
  const log = createTenantLog(quirks);
  for (let i = 1; i <= n; i++) log.append({ type: 's', user_id: `auth0|${i}` });
  return log;
}
const idAt = (log: ReturnType<typeof createTenantLog>, i: number) => String(log.entries[i]!.log_id);

function page(log: ReturnType<typeof createTenantLog>, from: string, take = 100) {
  const answer = log.answer(new URLSearchParams({ from, take: String(take) }), ORIGIN);
  const link = /^<([^>]*)>; rel="next"$/.exec(answer.headers.link ?? '')?.[1];
  return {
    status: answer.status,
    body: answer.status === 200 ? (JSON.parse(answer.body) as LogEntryJson[]) : answer.body,
    next: link ? new URL(link).searchParams.get('from') : undefined,
  };
}
const ids = (body: unknown) => (body as LogEntryJson[]).map((e) => e.log_id);

describe('the sandbox logs, behaving', () => {
  it('answers the entries after from, and [] with next back to from when nothing is new', () => {
    const log = tenantWith(3);
    expect(page(log, idAt(log, 0))).toEqual({ status: 200, body: log.entries.slice(1), next: idAt(log, 2) });
    expect(page(log, idAt(log, 2))).toEqual({ status: 200, body: [], next: idAt(log, 2) });
  });
});

describe('the sandbox logs, misbehaving (LogQuirks)', () => {
  it('inclusiveFrom repeats the from entry first', () => {
    const log = tenantWith(3, { inclusiveFrom: true });
    expect(ids(page(log, idAt(log, 0)).body)).toEqual([idAt(log, 0), idAt(log, 1), idAt(log, 2)]);
    expect(ids(page(log, idAt(log, 2)).body)).toEqual([idAt(log, 2)]);
  });

  it('stuckNext points the Link at the from just called', () => {
    const log = tenantWith(3, { stuckNext: true });
    expect(page(log, idAt(log, 0))).toMatchObject({ next: idAt(log, 0) });
  });

  it('answers an expired from with a 400, [] or the oldest entry held', () => {
    const log = tenantWith(4);
    const old = idAt(log, 0);
    log.expireBefore(idAt(log, 2));
    expect(page(log, old).status).toBe(400);
    log.setQuirks({ expired: 'empty' });
    expect(page(log, old)).toEqual({ status: 200, body: [], next: old });
    log.setQuirks({ expired: 'oldest' });
    expect(page(log, old)).toMatchObject({ status: 200, next: idAt(log, 1) });
    expect((page(log, old).body as LogEntryJson[]).map((e) => e.user_id)).toEqual(['auth0|3', 'auth0|4']);
  });

  it('duplicates every entry, and outOfOrder sends a page newest first with the Link past it', () => {
    const log = tenantWith(3, { duplicates: true, outOfOrder: true });
    const answer = page(log, idAt(log, 0));
    expect(ids(answer.body)).toEqual([idAt(log, 2), idAt(log, 2), idAt(log, 1), idAt(log, 1)]);
    expect(answer.next).toBe(idAt(log, 2));
  });

  it('hostileIds adds an entry with a hostile log_id, hostileNext puts one in the Link', () => {
    const log = tenantWith(2, { hostileIds: true, hostileNext: true });
    const answers = [0, 1, 2].map(() => page(log, idAt(log, 0)));
    const seen = answers.flatMap((a) => [(a.body as LogEntryJson[]).at(-1)!.log_id, a.next]);
    for (const hostile of HOSTILE_LOG_IDS) expect(seen).toContain(hostile);
    expect(HOSTILE_LOG_IDS.some((id) => id.includes('\u0000'))).toBe(true);
    expect(HOSTILE_LOG_IDS.some((id) => id.includes('\u001b['))).toBe(true);
    expect(HOSTILE_LOG_IDS.some((id) => id.length === 600)).toBe(true);
    // No entry of the tenant itself is changed.
    expect(log.entries.map((e) => e.log_id)).not.toContain(HOSTILE_LOG_IDS[0]);
  });

  it('sorts search mode by date, whatever order the entries were appended in', () => {
    const log = createTenantLog();
    log.append({ type: 's', user_id: 'auth0|new', date: '2026-12-03T00:00:00.000Z' });
    log.append({ type: 's', user_id: 'auth0|old', date: '2026-11-20T00:00:00.000Z' });
    const oldest = log.answer(new URLSearchParams({ sort: 'date:1', per_page: '1', page: '0' }), ORIGIN);
    expect((JSON.parse(oldest.body) as LogEntryJson[]).map((e) => e.user_id)).toEqual(['auth0|old']);
  });
});
