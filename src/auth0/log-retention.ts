/**
 * Whether the tenant's log retention has dropped entries the follower never read (issue #18).
 * Auth0 keeps logs 1, 5, 10 or 30 days by plan and does not document what checkpoint mode
 * answers for a `from` past retention (/work/shared/auth0-logs.md): it may refuse it, answer
 * `[]`, or answer from the oldest entry it still holds. The last case looks like an ordinary
 * page, so it is told by dates. Pure.
 */
import { compareLogIds } from './log-id.js';

/** Starter plan's retention: nothing younger than this can have been dropped. */
export const SHORTEST_RETENTION_MS = 24 * 3600_000;
/** Auth0 indexes entries "seconds to minutes" after they happen: an entry dated this long before a read may still have been missing from it. */
export const INDEXING_SLACK_MS = 15 * 60_000;
/** A first new entry dated this much after the gap's start hints at entries missing between. */
export const JUMP_MS = 5 * 60_000;

export interface CheckpointDates {
  logId: string;
  /** The newest date among the entries read up to the checkpoint. */
  lastEntryDate: Date | null;
  /** The tenant's newest entry when the follower last looked; equal to `logId` when it was caught up. */
  newestLogId: string | null;
  /** When the follower last looked (log_checkpoint.updated_at). */
  lookedAt: Date;
}

/**
 * The earliest date an entry the follower has not read can carry: the checkpoint's last entry
 * date, or, when the last follow found nothing after the checkpoint, the moment it looked (less
 * the indexing slack): entries dated before were read or did not exist. Undefined without dates.
 */
export function toGapStart(checkpoint: CheckpointDates): Date | undefined {
  const base = checkpoint.lastEntryDate;
  if (!base) return undefined;
  const caughtUp = checkpoint.newestLogId !== null && compareLogIds(checkpoint.newestLogId, checkpoint.logId) === 0;
  if (!caughtUp) return base;
  const seenUntil = new Date(checkpoint.lookedAt.getTime() - INDEXING_SLACK_MS);
  return seenUntil > base ? seenUntil : base;
}

/**
 * Whether the oldest retained entry is worth one request: the gap began longer ago than the
 * shortest retention, and the earliest date among the first new entries lies well after it
 * (an entry dated right after the gap's start proves retention has not cut into it).
 */
export function mayHaveOutlivedRetention(gapStart: Date | undefined, firstDate: Date | undefined, now: Date): boolean {
  if (!gapStart || !firstDate) return false;
  return now.getTime() - gapStart.getTime() > SHORTEST_RETENTION_MS && firstDate.getTime() - gapStart.getTime() > JUMP_MS;
}

/** Retention cut into the gap: the oldest entry still held is dated after the gap began. */
export function isPastRetention(gapStart: Date, oldestRetained: Date | undefined): boolean {
  return oldestRetained !== undefined && oldestRetained > gapStart;
}
