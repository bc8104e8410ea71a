import { FatalError } from '../errors.js';
import { withBatch, type RunCounts } from '../run-records.js';
import type { WritePlan } from '../warehouse/model.js';

/**
 * Bounds on what one run may delete: the share of the live tokens held for the users it listed
 * that it may mark deleted, and the share of its users it may record as gone from Auth0. Both
 * are measured once `minUsers` users are done. One misconfiguration (valid credentials for
 * the wrong tenant: every user answers 404) must not mark the warehouse deleted; directory
 * sync engines guard the same way ("prevent accidental deletes"), and rsync has --max-delete.
 */
export interface DeleteGuard {
  /** SYNC_MAX_DELETE_RATIO, 0..1. */
  maxRatio: number;
  /** SYNC_DELETE_GUARD_MIN. */
  minUsers: number;
}

/** The guard stopped the run; nothing of the batch that would have crossed it was written. */
export class MassDeleteError extends FatalError {
  constructor(message: string) {
    super('mass_delete_guard', message);
  }
}

/** What a run has done, as far as the guard measures it. */
type GuardTotals = Pick<RunCounts, 'usersSynced' | 'usersNotFound' | 'usersFailed' | 'tokensHeld' | 'tokensDeleted'>;

/**
 * Throws MassDeleteError when writing `plan` on top of what the run wrote so far (`counts`)
 * would cross the guard. Called before every batch write, so the check holds from the first one.
 */
export function checkDeleteGuard(guard: DeleteGuard, counts: RunCounts, plan: WritePlan): void {
  const crossed = describeCrossing(guard, withBatch(counts, plan.outcomes, plan.counts));
  if (!crossed) return;
  throw new MassDeleteError(
    `Stopped before writing: this run would ${crossed}, more than SYNC_MAX_DELETE_RATIO=${guard.maxRatio} allows; ` +
      `nothing of it was marked deleted. Check that AUTH0_DOMAIN and the credentials point at the right tenant; ` +
      `if Auth0 really lost them, rerun with --allow-mass-delete (or SYNC_MAX_DELETE_RATIO=1).`,
  );
}

/**
 * What crosses the guard in these totals ("mark deleted 90 of the 100 live tokens …"), or
 * undefined when nothing does or fewer than `minUsers` users are done. Pure; a dry run uses it to
 * say whether a real run would stop.
 */
export function describeCrossing(guard: DeleteGuard, totals: GuardTotals): string | undefined {
  const listed = totals.usersSynced + totals.usersNotFound;
  if (listed + totals.usersFailed < guard.minUsers) return undefined;
  const gone = totals.usersNotFound;
  const { tokensHeld: held, tokensDeleted: deleted } = totals;
  const parts = [];
  if (deleted > 0 && deleted > guard.maxRatio * held) {
    parts.push(`mark deleted ${deleted} of the ${held} live tokens held for its users (${percent(deleted, held)})`);
  }
  if (gone > 0 && gone > guard.maxRatio * listed) parts.push(`record ${gone} of ${listed} users as gone from Auth0 (${percent(gone, listed)})`);
  return parts.length > 0 ? parts.join(' and ') : undefined;
}

const percent = (part: number, whole: number) => `${whole === 0 ? 100 : Math.round((100 * part) / whole)}%`;
