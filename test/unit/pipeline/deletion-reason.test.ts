import { describe, expect, it } from '@jest/globals';
import {
  decideDeletionReason,
  SESSION_ENDING_REASONS,
  toDeletedToken,
  toLogExplanations,
  TOKENS_PER_APPLICATION,
  type LogExplanation,
} from '../../../src/pipeline/deletion-reason.js';
import { toChangedUsers, USER_EVENT_TYPES, type LogLookups } from '../../../src/pipeline/log-events.js';
import type { Auth0LogEntry } from '../../../src/auth0/logs.js';

const NOW = new Date('2026-12-04T12:00:00Z');
const USER = 'auth0|alice';
const LIVE = { expiresAt: '2027-06-01T00:00:00Z', idleExpiresAt: '2026-12-30T00:00:00Z', createdAt: '2026-11-01T00:00:00Z' };
const token = { id: 'rt_1', clientId: 'app', sessionId: 'sess_1', ...LIVE };
const noLookups: LogLookups = { tokenOwners: new Map(), sessionUsers: new Map() };

/** Log ids in Auth0's shape, each new one after the last. */
const logIds = (function* () {
  for (let n = 1; ; n += 1) yield `90020261201${String(n).padStart(20, '0')}`;
})();
const logId = (): string => logIds.next().value as string;
const entry = (fields: Auth0LogEntry): Auth0LogEntry => ({ log_id: logId(), date: NOW.toISOString(), ...fields });
const sapi = (method: string, path: string, body?: unknown, clientId = 'admin-m2m'): Auth0LogEntry =>
  entry({ type: 'sapi', client_id: clientId, user_id: 'admin|root', details: { request: { method, path, body } } });
/** The reason the rule gives `token` after `entries`, with the log id and API client. */
function decide(entries: Auth0LogEntry[], lookups: LogLookups = noLookups, gone = token) {
  const { explanations } = toChangedUsers(entries, lookups);
  return decideDeletionReason(
    gone,
    explanations.filter((e) => e.userId === USER),
    { now: NOW },
  );
}

describe('decideDeletionReason: each reason from the entry that causes it', () => {
  it('srrt of the token: revoked_by_user, with its log id', () => {
    const srrt = entry({ type: 'srrt', user_id: USER, client_id: 'app', details: { credential_id: 'rt_1' } });
    expect(decide([srrt])).toEqual({ reason: 'revoked_by_user', logId: srrt.log_id, clientId: null });
  });

  it('a sapi delete of the token: revoked_by_api, naming the calling client', () => {
    const call = sapi('delete', '/api/v2/refresh-tokens/rt_1');
    const lookups: LogLookups = { tokenOwners: new Map([['rt_1', USER]]), sessionUsers: new Map() };
    expect(decide([call], lookups)).toEqual({ reason: 'revoked_by_api', logId: call.log_id, clientId: 'admin-m2m' });
  });

  it('a sapi revocation by user and client: revoked_by_api for that client’s tokens', () => {
    const call = sapi('post', '/api/v2/refresh-tokens/revoke', { user_id: USER, client_id: 'app' });
    expect(decide([call])).toEqual({ reason: 'revoked_by_api', logId: call.log_id, clientId: 'admin-m2m' });
  });

  it('ferrt: reuse_detected', () => {
    const ferrt = entry({ type: 'ferrt', user_id: USER, client_id: 'app' });
    expect(decide([ferrt])).toEqual({ reason: 'reuse_detected', logId: ferrt.log_id, clientId: null });
  });

  it('slo of its session, and a sapi revocation of its session: session_revoked', () => {
    const slo = entry({ type: 'slo', user_id: USER, details: { session_id: 'sess_1' } });
    expect(decide([slo])).toEqual({ reason: 'session_revoked', logId: slo.log_id, clientId: null });
    const call = sapi('post', '/api/v2/sessions/sess_1/revoke');
    const lookups: LogLookups = { tokenOwners: new Map(), sessionUsers: new Map([['sess_1', [USER]]]) };
    expect(decide([call], lookups)).toEqual({ reason: 'session_revoked', logId: call.log_id, clientId: 'admin-m2m' });
  });

  it('sdu and a sapi delete of the user: user_deleted', () => {
    const sdu = entry({ type: 'sdu', user_id: USER });
    expect(decide([sdu])).toEqual({ reason: 'user_deleted', logId: sdu.log_id, clientId: null });
    const call = sapi('delete', `/api/v2/users/${encodeURIComponent(USER)}`);
    expect(decide([call])).toEqual({ reason: 'user_deleted', logId: call.log_id, clientId: 'admin-m2m' });
  });

  it('resource_cleanup for its application: pruned', () => {
    const cleanup = entry({ type: 'resource_cleanup', user_id: USER, client_id: 'app' });
    expect(decide([cleanup])).toEqual({ reason: 'pruned', logId: cleanup.log_id, clientId: null });
  });

  it('no entry: expired past expires_at or idle_expires_at, otherwise unexplained', () => {
    expect(decide([])).toEqual({ reason: 'unexplained', logId: null, clientId: null });
    expect(decide([], noLookups, { ...token, expiresAt: '2026-12-01T00:00:00Z' })).toMatchObject({ reason: 'expired' });
    expect(decide([], noLookups, { ...token, idleExpiresAt: '2026-12-04T11:59:59Z' })).toMatchObject({ reason: 'expired' });
  });

  it('entries that change nothing (a login, an exchange) explain nothing', () => {
    expect(decide([entry({ type: 's', user_id: USER }), entry({ type: 'sertft', user_id: USER })])).toMatchObject({ reason: 'unexplained' });
  });
});

describe('decideDeletionReason: the most specific word wins', () => {
  const explanation = (fields: Partial<LogExplanation>): LogExplanation => ({ userId: USER, reason: 'revoked_by_user', logId: logId(), ...fields });

  it('an entry naming the token beats one naming its session, which beats expiry', () => {
    const byToken = explanation({ reason: 'revoked_by_api', tokenIds: ['rt_1'] });
    const bySession = explanation({ reason: 'session_revoked', sessionIds: ['sess_1'] });
    const expired = { ...token, expiresAt: '2026-01-01T00:00:00Z' };
    expect(decideDeletionReason(expired, [byToken, bySession], { now: NOW }).reason).toBe('revoked_by_api');
    expect(decideDeletionReason(expired, [bySession], { now: NOW }).reason).toBe('session_revoked');
  });

  it('expiry beats an entry about the whole user; the user-wide entry beats one about other tokens', () => {
    const userWide = explanation({ reason: 'reuse_detected' });
    const otherToken = explanation({ reason: 'revoked_by_user', tokenIds: ['rt_other'] });
    expect(decideDeletionReason({ ...token, expiresAt: '2026-01-01T00:00:00Z' }, [userWide], { now: NOW }).reason).toBe('expired');
    expect(decideDeletionReason(token, [otherToken, userWide], { now: NOW }).reason).toBe('reuse_detected');
  });

  it('an entry about the user’s other tokens still explains (as the guard always took it), after everything else', () => {
    const other = explanation({ tokenIds: ['rt_other'] });
    expect(decideDeletionReason(token, [other], { now: NOW })).toEqual({ reason: 'revoked_by_user', logId: other.logId, clientId: null });
  });

  it('a cleanup of another application does not beat the cap rule, but still explains', () => {
    const cleanup = explanation({ reason: 'pruned', clientId: 'other-app' });
    expect(decideDeletionReason(token, [cleanup], { now: NOW })).toMatchObject({ reason: 'pruned', logId: cleanup.logId });
  });

  it('among equals, the latest entry', () => {
    const first = explanation({ reason: 'reuse_detected' });
    const second = explanation({ reason: 'user_deleted' });
    expect(decideDeletionReason(token, [first, second], { now: NOW })).toMatchObject({ reason: 'user_deleted', logId: second.logId });
  });

  it('pruned without an entry: the oldest token of an application whose listing is at the 200 cap', () => {
    const atCap = { count: TOKENS_PER_APPLICATION, oldestCreatedAt: '2026-11-02T00:00:00Z' };
    expect(decideDeletionReason(token, [], { now: NOW, listedForClient: atCap })).toEqual({ reason: 'pruned', logId: null, clientId: null });
    expect(decideDeletionReason(token, [], { now: NOW, listedForClient: { ...atCap, count: 199 } }).reason).toBe('unexplained');
    // Newer than a token still listed: not the cleanup's doing.
    expect(decideDeletionReason(token, [], { now: NOW, listedForClient: { ...atCap, oldestCreatedAt: '2026-10-01T00:00:00Z' } }).reason).toBe('unexplained');
  });

  it('a user the logs say was deleted: user_deleted without the entry, after every entry and rule', () => {
    expect(decideDeletionReason(token, [], { now: NOW, userDeleted: true })).toEqual({ reason: 'user_deleted', logId: null, clientId: null });
    expect(decideDeletionReason(token, [], { now: NOW, userDeleted: false }).reason).toBe('unexplained');
    const other = explanation({ tokenIds: ['rt_other'] });
    expect(decideDeletionReason(token, [other], { now: NOW, userDeleted: true })).toMatchObject({ reason: 'revoked_by_user', logId: other.logId });
    const atCap = { count: TOKENS_PER_APPLICATION, oldestCreatedAt: '2026-11-02T00:00:00Z' };
    expect(decideDeletionReason(token, [], { now: NOW, listedForClient: atCap, userDeleted: true }).reason).toBe('pruned');
    expect(decideDeletionReason({ ...token, expiresAt: '2026-01-01T00:00:00Z' }, [], { now: NOW, userDeleted: true }).reason).toBe('expired');
  });

  it('restricted to the reasons that end a session: any other entry explains nothing', () => {
    const session = { id: 'sess_1', sessionId: 'sess_1', ...LIVE };
    const context = { now: NOW, reasons: SESSION_ENDING_REASONS };
    const aboutTokens = explanation({ reason: 'reuse_detected' });
    const logout = explanation({ reason: 'session_revoked', sessionIds: ['sess_1'] });
    const deleted = explanation({ reason: 'user_deleted' });
    expect(decideDeletionReason(session, [aboutTokens], context).reason).toBe('unexplained');
    expect(decideDeletionReason(session, [aboutTokens], { now: NOW }).reason).toBe('reuse_detected');
    expect(decideDeletionReason(session, [logout, aboutTokens], context)).toMatchObject({ reason: 'session_revoked', logId: logout.logId });
    expect(decideDeletionReason(session, [aboutTokens, deleted], context)).toMatchObject({ reason: 'user_deleted', logId: deleted.logId });
    expect(decideDeletionReason(session, [aboutTokens], { ...context, userDeleted: true }).reason).toBe('user_deleted');
  });
});

describe('toDeletedToken and toLogExplanations', () => {
  it('reads the stored JSON, leaving out what is not a string', () => {
    expect(toDeletedToken('rt_1', { client_id: 'app', session_id: null, expires_at: 5, created_at: '2026-01-01T00:00:00Z' })).toEqual({
      id: 'rt_1',
      clientId: 'app',
      sessionId: undefined,
      createdAt: '2026-01-01T00:00:00Z',
      expiresAt: undefined,
      idleExpiresAt: undefined,
    });
    expect(toDeletedToken('rt_1', null)).toMatchObject({ id: 'rt_1' });
  });

  it('reads stored explanations back for their user, dropping anything malformed', () => {
    const stored = [
      { userId: 'someone-else', reason: 'srrt-not-a-reason' },
      { reason: 'expired' }, // never from a log entry
      { reason: 'revoked_by_api', logId: 'L1', callerClientId: 'm2m', tokenIds: ['rt_1', 7] },
      'junk',
      null,
    ];
    expect(toLogExplanations(USER, stored)).toEqual([{ userId: USER, reason: 'revoked_by_api', logId: 'L1', callerClientId: 'm2m', tokenIds: ['rt_1'] }]);
  });
});

describe('one table of event types', () => {
  it('every type that explains a loss also names its user (USER_EVENT_TYPES)', () => {
    const explaining = [...USER_EVENT_TYPES].filter((type) => toChangedUsers([entry({ type, user_id: USER })], noLookups).explanations.length > 0);
    expect(explaining.sort()).toEqual(['ferrt', 'resource_cleanup', 'scp', 'sdu', 'slo', 'srrt']);
  });
});
