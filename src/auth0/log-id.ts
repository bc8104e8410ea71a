import { checkIdValue, stripControlCharacters } from '../core/upstream-text.js';
import { shortenId } from '../core/wording.js';

/**
 * Longest log id the follower accepts, in characters. Auth0's are 56 digits today
 * (`900202…`); 256 leaves room for a change of format and keeps a hostile answer (issue #18:
 * 600 characters, escapes) out of the checkpoint, `sync_runs.args` and every message.
 */
export const MAX_LOG_ID_LENGTH = 256;

/**
 * What is wrong with a log id from an answer (`is not a string`, `is empty`, `is longer than 256
 * characters`, `contains a control character`); undefined when the follower can store it and
 * read on from it. The same rule as `checkUserId` (src/core/user-id.ts). Pure.
 */
export function checkLogId(id: unknown): string | undefined {
  return checkIdValue(id, MAX_LOG_ID_LENGTH);
}

/** The entry's `log_id` when it passes `checkLogId`, else undefined. Pure. */
export function logIdOf(entry: { log_id?: unknown } | undefined): string | undefined {
  const id = entry?.log_id;
  return typeof id === 'string' && checkLogId(id) === undefined ? id : undefined;
}

const DIGITS = /^\d+$/;

/**
 * Order of two log ids, as checkpoint mode sorts them: ids of digits compare as numbers (the
 * longer is later, then digit by digit; Auth0's are fixed-width today, but a width change must
 * not send the follower back in time); any other pair in plain string order. Negative when `a`
 * comes first, 0 when equal. Pure.
 */
export function compareLogIds(a: string, b: string): number {
  if (DIGITS.test(a) && DIGITS.test(b)) {
    const x = a.replace(/^0+(?=\d)/, '');
    const y = b.replace(/^0+(?=\d)/, '');
    if (x.length !== y.length) return x.length - y.length;
    return x < y ? -1 : x > y ? 1 : 0;
  }
  return a < b ? -1 : a > b ? 1 : 0;
}

/** A log id for a sentence people read: control characters stripped, a long one shortened (`shortenId`). */
export function describeLogId(id: string): string {
  return shortenId(stripControlCharacters(id));
}
