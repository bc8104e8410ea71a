import { describe, expect, it } from '@jest/globals';
import { logEntriesForRemoval, logEntriesForUserDeletion, type TokenRemoval } from '../../../sandbox/logs.js';
import { makeToken } from '../../../sandbox/tenant.js';
import { decideDeletionReason, toDeletedToken } from '../../../src/pipeline/deletion-reason.js';
import { toChangedUsers, type LogLookups } from '../../../src/pipeline/log-events.js';
import type { Auth0LogEntry } from '../../../src/auth0/logs.js';

/**
 * The sandbox writes, for each way a token goes, the entries Auth0 writes (issue #22); read by
 * the job's own rule they give the reason the cause should. No server: the entries get log ids here.
 */
const USER = 'auth0|sandbox-user';
const NOW = new Date('2026-12-04T12:00:00Z');
const live = { expires_at: '2027-12-01T00:00:00Z', idle_expires_at: '2027-01-01T00:00:00Z' };
const tokens = [makeToken(USER, 1, { ...live, session_id: 'sess-a' }), makeToken(USER, 2, { ...live, session_id: 'sess-b' })];
const lookups: LogLookups = {
  tokenOwners: new Map(tokens.map((t) => [String(t.id), USER])),
  sessionUsers: new Map([
    ['sess-a', [USER]],
    ['sess-b', [USER]],
  ]),
};

function reasonsAfter(entries: Record<string, unknown>[]) {
  const numbered = entries.map((entry, i) => ({ log_id: `90020261201${String(i + 1).padStart(20, '0')}`, ...entry }) as Auth0LogEntry);
  const { explanations } = toChangedUsers(numbered, lookups);
  return tokens.map((token) => decideDeletionReason(toDeletedToken(String(token.id), token), explanations, { now: NOW }));
}

describe('the sandbox’s removal entries, read by the job', () => {
  it.each<[TokenRemoval, string, string | null]>([
    [{ by: 'user' }, 'revoked_by_user', null],
    [{ by: 'api', clientId: 'admin-m2m' }, 'revoked_by_api', 'admin-m2m'],
    [{ by: 'reuse' }, 'reuse_detected', null],
    [{ by: 'logout' }, 'session_revoked', null],
    [{ by: 'session_api', clientId: 'admin-m2m' }, 'session_revoked', 'admin-m2m'],
    [{ by: 'cleanup' }, 'pruned', null],
  ])('%o gives %s', (cause, reason, clientId) => {
    const decisions = reasonsAfter(logEntriesForRemoval(USER, tokens, cause));
    for (const decision of decisions) expect(decision).toMatchObject({ reason, clientId, logId: expect.stringMatching(/^9002/) });
  });

  it('names each token or session it removes: one entry each for a revocation, one per session for a logout', () => {
    expect(logEntriesForRemoval(USER, tokens, { by: 'user' }).map((e) => (e.details as { credential_id: string }).credential_id)).toEqual(
      tokens.map((t) => t.id),
    );
    expect(logEntriesForRemoval(USER, tokens, { by: 'logout' }).map((e) => (e.details as { session_id: string }).session_id)).toEqual(['sess-a', 'sess-b']);
    const [first, second] = reasonsAfter(logEntriesForRemoval(USER, tokens, { by: 'user' }));
    expect(first!.logId).not.toBe(second!.logId); // each token its own entry
  });

  it('logs nothing for an expiry, so an unexpired token is unexplained', () => {
    expect(logEntriesForRemoval(USER, tokens, { by: 'expiry' })).toEqual([]);
    expect(reasonsAfter([]).map((d) => d.reason)).toEqual(['unexplained', 'unexplained']);
  });

  it('a user deleted: sdu, or a sapi delete naming the admin client', () => {
    expect(reasonsAfter(logEntriesForUserDeletion(USER)).map((d) => [d.reason, d.clientId])).toEqual([
      ['user_deleted', null],
      ['user_deleted', null],
    ]);
    expect(reasonsAfter(logEntriesForUserDeletion(USER, { clientId: 'admin-m2m' })).map((d) => [d.reason, d.clientId])).toEqual([
      ['user_deleted', 'admin-m2m'],
      ['user_deleted', 'admin-m2m'],
    ]);
  });
});
