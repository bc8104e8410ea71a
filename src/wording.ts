/**
 * Small helpers for sentences people read (never for JSON, logs' fields or tables, which keep
 * every value whole).
 */

/** `1 user`, `2 users`, `0 users`: no "user(s)". `plural` defaults to `word` + s. */
export function plural(count: number, word: string, pluralWord = `${word}s`): string {
  return `${count} ${count === 1 ? word : pluralWord}`;
}

/** Digits in a row from which a number is an ID (a tenant log ID has 30 to 56), not a count. */
const LONG_ID = /\d{20,}/g;

/**
 * Long numeric IDs (tenant log IDs run to 56 digits) shortened in a sentence to their first 8
 * and last 6 digits, `90020261…000042`, as git shortens a commit hash: enough to tell two apart
 * at a glance; `status --json`, the tables and the logs keep them whole.
 */
export function shortenLogIds(sentence: string): string {
  return sentence.replace(LONG_ID, (id) => `${id.slice(0, 8)}…${id.slice(-6)}`);
}
