import { FatalError } from '../errors.js';
import type { RunCounts } from '../runs.js';
import type { WritePlan } from './plan.js';

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
  override name = 'MassDeleteError';
  constructor(message: string) {
    super('mass_delete_guard', message);
  }
}

/**
 * Throws MassDeleteError when writing `plan` on top of what the run wrote so far (`counts`)
 * would cross the guard. Called before every batch write, so the check holds from the first one.
 */
export function checkDeleteGuard(guard: DeleteGuard, counts: RunCounts, plan: WritePlan): void {
  const users = counts.usersSynced + counts.usersNotFound + counts.usersFailed + plan.outcomes.length;
  if (users < guard.minUsers) return;
  const listed = counts.usersSynced + counts.usersNotFound + plan.outcomes.filter((o) => o.status !== 'failed').length;
  const gone = counts.usersNotFound + plan.outcomes.filter((o) => o.status === 'not_found').length;
  const held = counts.tokensHeld + plan.counts.held;
  const deleted = counts.tokensDeleted + plan.counts.deleted;
  const tooManyTokens = deleted > 0 && deleted > guard.maxRatio * held;
  const tooManyUsers = gone > 0 && gone > guard.maxRatio * listed;
  if (!tooManyTokens && !tooManyUsers) return;
  const parts = [];
  if (tooManyTokens) parts.push(`mark deleted ${deleted} of the ${held} live tokens held for its users (${percent(deleted, held)})`);
  if (tooManyUsers) parts.push(`record ${gone} of ${listed} users as gone from Auth0 (${percent(gone, listed)})`);
  throw new MassDeleteError(
    `Stopped before writing: this run would ${parts.join(' and ')}, more than SYNC_MAX_DELETE_RATIO=${guard.maxRatio} allows; ` +
      `nothing of it was marked deleted. Check that AUTH0_DOMAIN and the credentials point at the right tenant; ` +
      `if Auth0 really lost them, rerun with --allow-mass-delete (or SYNC_MAX_DELETE_RATIO=1).`,
  );
}

const percent = (part: number, whole: number) => `${whole === 0 ? 100 : Math.round((100 * part) / whole)}%`;
