import { describe, expect, it } from '@jest/globals';
import { capText, toSafeText } from '../../../src/core/upstream-text.js';

describe('capText', () => {
  it('cuts with an ellipsis and never keeps half a surrogate pair before it (PostgreSQL refuses one)', () => {
    expect(capText('abcdef', 4)).toBe('abc…');
    expect(capText('abc', 4)).toBe('abc');
    const emoji = '😀'; // two UTF-16 units
    expect(capText(`ab${emoji}cd`, 4)).toBe('ab…');
    expect(capText(`abc${emoji}d`, 5)).toBe('abc…');
    expect(/\p{Surrogate}/u.test(toSafeText(emoji.repeat(10), 6))).toBe(false);
  });
});
