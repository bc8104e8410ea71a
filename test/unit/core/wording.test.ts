import { describe, expect, it } from '@jest/globals';
import { plural, shortenId } from '../../../src/core/wording.js';

// Issue #19: sentences for people say "1 user", never "user(s)"; long log IDs are shortened in
// them (kept whole in JSON and tables). The sentences themselves: test/cli/sentences.test.ts.

describe('wording', () => {
  it('plural', () => {
    expect([plural(0, 'user'), plural(1, 'user'), plural(2, 'user'), plural(1, 'entry', 'entries'), plural(3, 'entry', 'entries')]).toEqual([
      '0 users',
      '1 user',
      '2 users',
      '1 entry',
      '3 entries',
    ]);
  });

  it('shortenId keeps short IDs, shortens long ones to their first 8 and last 6 characters', () => {
    expect(shortenId('9002026120100000000000000000042')).toBe('90020261…000042');
    expect(shortenId('12345678901234567890123456789012345678901234567890123456')).toBe('12345678…123456');
    expect(shortenId('1234567890123456789')).toBe('1234567890123456789');
  });
});
