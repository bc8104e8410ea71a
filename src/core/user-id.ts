import { capText, checkIdText, toPrintable } from './upstream-text.js';

/**
 * Longest user ID the job accepts, in characters (UTF-16 code units). Auth0 IDs are short
 * (`auth0|` plus 24 hex digits, `google-oauth2|` plus ~21 digits); 512 leaves room for any
 * custom connection and keeps every index on a user ID far below PostgreSQL's btree row limit
 * (about 2,700 bytes).
 */
export const MAX_USER_ID_LENGTH = 512;

/**
 * What is wrong with a user ID, as the end of a sentence (`is empty`, `is longer than 512
 * characters`, `contains a control character`); undefined when the job can use it. Pure.
 * The same check applies to `--user`, `--users-file` lines and source-table IDs.
 */
export function checkUserId(id: string): string | undefined {
  return checkIdText(id, MAX_USER_ID_LENGTH);
}

/** A user ID made safe to print: control characters stripped, at most 80 characters. */
export function describeUserId(id: string): string {
  return JSON.stringify(toPrintable(id, 80));
}

/**
 * The key under which an invalid ID's failure is recorded in `user_sync_state`. It stays the
 * ID itself where PostgreSQL can store and index it, so it can never be the key of another,
 * valid user (stripping control characters could turn `auth0|\u0007x` into a real `auth0|x`);
 * a NUL or an unpaired surrogate becomes U+001A (ASCII SUB) and an over-long ID is cut one character past the limit,
 * so the key still fails `checkUserId` and a retry (`--only-failed`) fails it again without
 * calling Auth0.
 */
export function invalidUserIdKey(id: string): string {
  // An unpaired surrogate would reach PostgreSQL as U+FFFD (UTF-8 cannot encode it), which is
  // valid: SUB keeps the key invalid, as for a NUL.
  const storable = id.replaceAll('\u0000', '\u001a').replace(/\p{Surrogate}/gu, '\u001a');
  return storable.length > MAX_USER_ID_LENGTH ? capText(storable, MAX_USER_ID_LENGTH + 1) : storable;
}
