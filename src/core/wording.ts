/**
 * Small helpers for sentences people read (never for JSON, logs' fields or tables, which keep
 * every value whole).
 */

/** `1 user`, `2 users`, `0 users`: no "user(s)". `plural` defaults to `word` + s. */
export function plural(count: number, word: string, pluralWord = `${word}s`): string {
  return `${count} ${count === 1 ? word : pluralWord}`;
}

/**
 * A long ID (a tenant log ID runs to 56 digits) shortened for a sentence to its first 8 and last
 * 6 characters, `90020261…000042`, as git shortens a commit hash: enough to tell two apart at a
 * glance; `status --json`, the tables and the logs keep it whole. Short IDs stay as they are.
 */
export function shortenId(id: string): string {
  return id.length > 20 ? `${id.slice(0, 8)}…${id.slice(-6)}` : id;
}
