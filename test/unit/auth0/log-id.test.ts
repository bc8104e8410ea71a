import { describe, expect, it } from '@jest/globals';
import { checkLogId, compareLogIds, describeLogId, logIdOf } from '../../../src/auth0/log-id.js';
import { isPastRetention, mayHaveOutlivedRetention, toGapStart } from '../../../src/auth0/log-retention.js';

describe('checkLogId', () => {
  it.each([
    ['90020261201000000000000000000000000000000000000000000001', undefined],
    ['', 'is empty'],
    ['   ', 'is only whitespace'],
    ['9'.repeat(257), 'is longer than 256 characters'],
    ['900\u0000', 'contains a NUL character'],
    ['\u001b[31m900', 'contains a control character'],
    ['900\u202e', 'contains a control character'],
    [900, 'is not a string'],
    [undefined, 'is not a string'],
  ])('%j → %s', (id, expected) => {
    expect(checkLogId(id)).toBe(expected);
  });

  it('logIdOf keeps only good ids; describeLogId prints any id safely', () => {
    expect(logIdOf({ log_id: '901' })).toBe('901');
    expect(logIdOf({ log_id: '9\u00000' })).toBeUndefined();
    expect(logIdOf(undefined)).toBeUndefined();
    expect(describeLogId('\u001b[2J9'.padEnd(600, '0'))).toBe('90000000…000000');
    expect(describeLogId('9002026120100000000000000000523')).toBe('90020261…000523');
    expect(describeLogId('90020261')).toBe('90020261');
  });
});

describe('compareLogIds', () => {
  it.each([
    ['900', '901', -1],
    ['901', '901', 0],
    ['99', '100', -1], // digits: the longer is later
    ['0100', '99', 1],
    ['007', '7', 0],
    ['b', 'a1', 1], // not all digits: string order
    ['100', '99a', -1],
  ])('%s vs %s', (a, b, sign) => {
    expect(Math.sign(compareLogIds(a, b))).toBe(sign);
  });
});

describe('log retention', () => {
  const now = new Date('2026-12-04T12:00:00Z');
  const daysAgo = (d: number) => new Date(now.getTime() - d * 86_400_000);

  it('the gap starts at the last entry read, or when the follower last found nothing new', () => {
    const base = { logId: '900', lastEntryDate: daysAgo(10), newestLogId: null, lookedAt: daysAgo(3) };
    expect(toGapStart(base)).toEqual(daysAgo(10));
    expect(toGapStart({ ...base, newestLogId: '905' })).toEqual(daysAgo(10));
    expect(toGapStart({ ...base, newestLogId: '900' })).toEqual(new Date(daysAgo(3).getTime() - 15 * 60_000));
    expect(toGapStart({ ...base, lastEntryDate: null })).toBeUndefined();
  });

  it('asks for the oldest entry only when the gap is older than a day and the first new entry jumps', () => {
    expect(mayHaveOutlivedRetention(daysAgo(10), daysAgo(5), now)).toBe(true);
    expect(mayHaveOutlivedRetention(daysAgo(10), new Date(daysAgo(10).getTime() + 60_000), now)).toBe(false);
    expect(mayHaveOutlivedRetention(daysAgo(0.5), daysAgo(0.1), now)).toBe(false);
    expect(mayHaveOutlivedRetention(undefined, daysAgo(1), now)).toBe(false);
    expect(isPastRetention(daysAgo(10), daysAgo(5))).toBe(true);
    expect(isPastRetention(daysAgo(10), daysAgo(30))).toBe(false);
    expect(isPastRetention(daysAgo(10), undefined)).toBe(false);
  });
});
