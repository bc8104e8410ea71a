import { describe, expect, it } from '@jest/globals';
import { describeCrossing } from '../../../src/pipeline/delete-guard.js';
import { emptyCounts } from '../../../src/warehouse/run-records.js';

// Issue #22: one rule for tokens and sessions, with the same settings.
const guard = { maxRatio: 0.2, minUsers: 5 };
const totals = (extra: Partial<ReturnType<typeof emptyCounts>>) => ({ ...emptyCounts(), usersSynced: 10, ...extra });

describe('describeCrossing with sessions', () => {
  it('measures a full pass on its sessions as on its tokens', () => {
    expect(describeCrossing(guard, totals({ tokensHeld: 20, sessionsHeld: 20, sessionsUnexplained: 4 }))).toBeUndefined();
    expect(describeCrossing(guard, totals({ tokensHeld: 20, sessionsHeld: 20, sessionsUnexplained: 5 }))).toBe(
      'mark deleted 5 of the 20 live sessions held for its users with no log entry or expiry to explain it (25%), more than SYNC_MAX_DELETE_RATIO=0.2 allows',
    );
    expect(describeCrossing(guard, totals({ tokensHeld: 10, tokensUnexplained: 10, sessionsHeld: 10, sessionsUnexplained: 10 }))).toMatch(
      /^mark deleted 10 of the 10 live tokens .* and mark deleted 10 of the 10 live sessions /,
    );
    // Before SYNC_DELETE_GUARD_MIN users are done nothing is measured.
    expect(describeCrossing(guard, totals({ usersSynced: 4, sessionsHeld: 4, sessionsUnexplained: 4 }))).toBeUndefined();
  });

  it('adds up the sessions earlier runs deleted unexplained against the live sessions, for any other run', () => {
    const window = { gone: 0, tokens: 0, sessions: 9, liveTokens: 100, liveSessions: 50 };
    expect(describeCrossing({ ...guard, window }, totals({ usersSynced: 1, sessionsUnexplained: 1 }))).toBeUndefined();
    expect(describeCrossing({ ...guard, window }, totals({ usersSynced: 1, sessionsUnexplained: 2 }))).toBe(
      "bring to 11 of the warehouse's 50 live sessions those marked deleted in the last day with no log entry or expiry to explain it (22%), more than SYNC_MAX_DELETE_RATIO=0.2 allows",
    );
  });
});
