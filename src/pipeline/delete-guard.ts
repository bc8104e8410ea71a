import { FatalError } from '../core/errors.js';
import { withBatch, type RunCounts } from '../warehouse/run-records.js';
import type { SessionWritePlan, WritePlan } from '../warehouse/model.js';

/**
 * Bounds on what runs may delete without an explanation (issue #18). A deletion is explained
 * when the tenant's own logs explain it for that user (a revocation, a logout, a password change,
 * a block, the user's deletion) or the token had expired; explained deletions never count. One
 * misconfiguration (valid credentials for the wrong tenant: every user answers 404) must not
 * mark the warehouse deleted; directory sync engines guard the same way ("prevent accidental
 * deletes"), and rsync has --max-delete.
 *
 * - A full pass (every source user, no budget) is measured on its own: the share of the live
 *   tokens held for the users it listed that it may mark deleted unexplained, and the share of
 *   its users it may record as gone unexplained, once `minUsers` users are done.
 * - Any other run (a follow of the logs, a budgeted pass, `--user`) is measured together with
 *   the runs before it (`window`): since the last full pass they may record at most `minUsers`
 *   users as gone from Auth0 with no log entry of their deletion, and within a day they may mark
 *   deleted unexplained at most `maxRatio` of the warehouse's live tokens. So twenty small runs
 *   with the wrong credentials stop as one big run would. (A run big enough on its own is also
 *   measured as a full pass is.)
 *
 * Sessions (issue #22) are measured by the same rule and settings as tokens, side by side: the
 * share of live sessions a run may mark deleted with no log entry (a logout, a session revoked,
 * the user's deletion) or expiry to explain it. A sessions route answering empty lists for every
 * user stops the run as a tokens route doing so would.
 */
export interface DeleteGuard {
  /** SYNC_MAX_DELETE_RATIO, 0..1. */
  maxRatio: number;
  /** SYNC_DELETE_GUARD_MIN. */
  minUsers: number;
  /** For a run that is not a full pass: what the runs before it deleted unexplained. */
  window?: UnexplainedWindow;
}

export interface UnexplainedWindow {
  /** Users recorded gone with no log entry of their deletion, since the last full pass. */
  gone: number;
  /** Tokens marked deleted unexplained in the last day (and since the last full pass). */
  tokens: number;
  /**
   * Live tokens in the warehouse, counted once, when the run first deletes a token unexplained
   * (a count of a large table is not worth paying on every follow that deletes nothing).
   */
  liveTokens?: number;
  /** Sessions marked deleted unexplained in the last day (and since the last full pass). */
  sessions: number;
  /** Live sessions in the warehouse, counted as `liveTokens` is. */
  liveSessions?: number;
}

/** The guard stopped the run; nothing of the batch that would have crossed it was written. */
export class MassDeleteError extends FatalError {
  constructor(message: string) {
    super('mass_delete_guard', message);
  }
}

/** What a run has done, as far as the guard measures it. */
type GuardTotals = Pick<
  RunCounts,
  'usersSynced' | 'usersNotFound' | 'usersFailed' | 'tokensHeld' | 'usersGoneUnexplained' | 'tokensUnexplained' | 'sessionsHeld' | 'sessionsUnexplained'
>;

/**
 * Throws MassDeleteError when writing `plan` on top of what the run wrote so far (`counts`)
 * would cross the guard. Called before every batch write, so the check holds from the first one.
 */
export function checkDeleteGuard(guard: DeleteGuard, counts: RunCounts, plan: WritePlan, sessions?: SessionWritePlan): void {
  const crossed = describeCrossing(guard, withBatch(counts, plan.outcomes, plan.counts, sessions?.counts));
  if (!crossed) return;
  const remedy = guard.window
    ? 'if Auth0 really lost them, run a full pass (npm run sync), which measures them against every user, or rerun with --allow-mass-delete.'
    : 'if Auth0 really lost them, rerun with --allow-mass-delete (or SYNC_MAX_DELETE_RATIO=1).';
  throw new MassDeleteError(
    `Stopped before writing: this run would ${crossed}; nothing of it was marked deleted. ` +
      `Check that AUTH0_DOMAIN and the credentials point at the right tenant; ${remedy}`,
  );
}

/**
 * What crosses the guard in these totals ("mark deleted 90 of the 100 live tokens …"), or
 * undefined when nothing does. Pure; a dry run uses it to say whether a real run would stop.
 */
export function describeCrossing(guard: DeleteGuard, totals: GuardTotals): string | undefined {
  const limit = `more than SYNC_MAX_DELETE_RATIO=${guard.maxRatio} allows`;
  const parts = [];
  const listed = totals.usersSynced + totals.usersNotFound;
  if (listed + totals.usersFailed >= guard.minUsers) {
    for (const { noun, held, deleted } of deletions(totals)) {
      if (deleted > 0 && deleted > guard.maxRatio * held) {
        parts.push(
          `mark deleted ${deleted} of the ${held} live ${noun} held for its users with no log entry or expiry to explain it (${percent(deleted, held)}), ${limit}`,
        );
      }
    }
    const gone = totals.usersGoneUnexplained;
    if (gone > 0 && gone > guard.maxRatio * listed) {
      parts.push(`record ${gone} of ${listed} users as gone from Auth0 with no log entry of their deletion (${percent(gone, listed)}), ${limit}`);
    }
  }
  if (guard.window && parts.length === 0) {
    const { window } = guard;
    const gone = window.gone + totals.usersGoneUnexplained;
    if (gone > guard.minUsers) {
      parts.push(
        `bring to ${gone} the users recorded gone from Auth0 since the last full pass with no log entry of their deletion, ` +
          `more than SYNC_DELETE_GUARD_MIN=${guard.minUsers} allows between full passes`,
      );
    }
    const earlier = { tokens: [window.tokens, window.liveTokens], sessions: [window.sessions, window.liveSessions] } as const;
    for (const { noun, deleted: now } of deletions(totals)) {
      const [before, counted] = earlier[noun];
      const deleted = before + now;
      // Counted (measureLive) whenever `deleted` is above 0.
      const live = counted ?? 0;
      if (deleted > 0 && deleted > guard.maxRatio * live) {
        parts.push(
          `bring to ${deleted} of the warehouse's ${live} live ${noun} those marked deleted in the last day with no log entry or expiry to explain it (${percent(deleted, live)}), ${limit}`,
        );
      }
    }
  }
  return parts.length > 0 ? parts.join(' and ') : undefined;
}

/** What the one rule measures, for tokens and for sessions alike: live ones held, and of them deleted unexplained. */
const deletions = (totals: GuardTotals) =>
  [
    { noun: 'tokens', held: totals.tokensHeld, deleted: totals.tokensUnexplained },
    { noun: 'sessions', held: totals.sessionsHeld, deleted: totals.sessionsUnexplained },
  ] as const;

const percent = (part: number, whole: number) => `${whole === 0 ? 100 : Math.round((100 * part) / whole)}%`;
