import { describe, expect, it } from '@jest/globals';
import { Auth0Error } from '../../../src/auth0/errors.js';
import { collectAll, listPages, toObjectPage, type Page } from '../../../src/auth0/pages.js';
import { checkIdValue } from '../../../src/core/upstream-text.js';

/** A listing answering `answers` in turn, recording the `from` each page was asked with. */
function scripted(answers: Array<Page<number> | Auth0Error>, maxPages = 10) {
  const froms: Array<string | undefined> = [];
  let call = 0;
  const listing = {
    what: 'numbers of u1',
    maxPages,
    fetchPage: async (from: string | undefined) => {
      froms.push(from);
      const answer = answers[Math.min(call++, answers.length - 1)]!;
      if (answer instanceof Auth0Error) throw answer;
      return answer;
    },
  };
  return { listing, froms };
}

const drain = async (listing: Parameters<typeof listPages<number>>[0]) => {
  const pages: number[][] = [];
  for await (const page of listPages(listing)) pages.push(page);
  return pages;
};

describe('listPages', () => {
  it('follows next with from and stops on a page without next, or on an empty page that still carries next', async () => {
    const ends = scripted([{ items: [1, 2], next: 'a' }, { items: [3] }]);
    expect(await drain(ends.listing)).toEqual([[1, 2], [3]]);
    expect(ends.froms).toEqual([undefined, 'a']);
    const empty = scripted([
      { items: [1], next: 'a' },
      { items: [], next: 'b' },
    ]);
    expect(await drain(empty.listing)).toEqual([[1]]);
  });

  it('fails as too_many_pages past maxPages pages holding items, but allows the empty page confirming the end', async () => {
    const endless = scripted(
      Array.from({ length: 5 }, (_, i) => ({ items: [i], next: `c${i}` })),
      3,
    );
    await expect(drain(endless.listing)).rejects.toMatchObject({
      code: 'too_many_pages',
      message: 'Listing numbers of u1 did not end after 3 pages (SYNC_MAX_PAGES_PER_USER)',
    });
    const exact = scripted([{ items: [1], next: 'a' }, { items: [2], next: 'b' }, { items: [] }], 2);
    expect(await drain(exact.listing)).toEqual([[1], [2]]);
  });

  it('fails as bad_response at once when next is the from just sent', async () => {
    const stuck = scripted([{ items: [1], next: 'same' }]);
    await expect(drain(stuck.listing)).rejects.toMatchObject({
      code: 'bad_response',
      message: 'Listing numbers of u1 answered the same cursor twice: the listing does not advance',
    });
    expect(stuck.froms).toEqual([undefined, 'same']);
  });
});

describe('collectAll', () => {
  it('starts again once on cursor_expired, dropping what was collected', async () => {
    const expired = new Auth0Error('cursor_expired', 'expired');
    let starts = 0;
    const items = await collectAll(() => {
      starts += 1;
      return listPages(scripted(starts === 1 ? [{ items: [1], next: 'a' }, expired] : [{ items: [1], next: 'a' }, { items: [2] }]).listing);
    });
    expect(items).toEqual([1, 2]);
    expect(starts).toBe(2);
  });

  it('throws a second cursor_expired, and any other error at once', async () => {
    const expired = new Auth0Error('cursor_expired', 'expired');
    let starts = 0;
    await expect(
      collectAll(() => {
        starts += 1;
        return listPages(scripted([expired]).listing);
      }),
    ).rejects.toBe(expired);
    expect(starts).toBe(2);
    const gone = new Auth0Error('user_not_found', 'gone');
    starts = 0;
    await expect(
      collectAll(() => {
        starts += 1;
        return listPages(scripted([gone]).listing);
      }),
    ).rejects.toBe(gone);
    expect(starts).toBe(1);
  });
});

describe('toObjectPage', () => {
  it('reads {key: [...], next} and refuses anything else as bad_response', () => {
    expect(toObjectPage({ things: [1], next: 'n' }, 'GET /x', 'things')).toEqual({ items: [1], next: 'n' });
    expect(toObjectPage({ things: [], next: null }, 'GET /x', 'things')).toEqual({ items: [], next: undefined });
    expect(toObjectPage({ things: [], next: '' }, 'GET /x', 'things')).toEqual({ items: [], next: undefined });
    for (const [body, words] of [
      [[], 'GET /x answered with JSON that is not an object'],
      [null, 'GET /x answered with JSON that is not an object'],
      [{ other: [] }, 'GET /x answered without a things array'],
      [{ things: [], next: 7 }, 'GET /x answered with a next cursor that is not a string'],
    ] as const) {
      expect(() => toObjectPage(body, 'GET /x', 'things')).toThrow(expect.objectContaining({ code: 'bad_response', message: words }));
    }
  });
});

describe('checkIdValue', () => {
  it('is checkIdText for a string, "is not a string" for anything else', () => {
    expect(checkIdValue('tok_1', 16)).toBeUndefined();
    expect(checkIdValue('', 16)).toBe('is empty');
    expect(checkIdValue('x'.repeat(17), 16)).toBe('is longer than 16 characters');
    for (const id of [7, null, undefined, {}]) expect(checkIdValue(id, 16)).toBe('is not a string');
  });
});
