import { describe, expect, it } from '@jest/globals';
import type { Auth0LogEntry } from '../../../src/auth0/logs.js';
import { toChangedUsers, toLookupKeys, USER_EVENT_TYPES, type LogLookups } from '../../../src/pipeline/log-events.js';

const lookups: LogLookups = {
  tokenOwners: new Map([
    ['rt_1', 'auth0|owner1'],
    ['rt_2', 'auth0|owner2'],
    ['dcr_1', 'auth0|device-owner'],
  ]),
  sessionUsers: new Map([
    ['sess_1', ['auth0|s1a', 'auth0|s1b']],
    ['sess_m2m', ['abc@clients']],
  ]),
};

const ADMIN = 'auth0|admin';
const sapi = (method: string, path: string, body?: unknown): Auth0LogEntry => ({
  type: 'sapi',
  user_id: ADMIN,
  client_id: 'mgmt-client',
  details: { request: { method, path, ...(body === undefined ? {} : { body }) } },
});
const usersOf = (...entries: Auth0LogEntry[]) => toChangedUsers(entries, lookups).userIds;

describe('toChangedUsers: event types', () => {
  it.each([...USER_EVENT_TYPES])('%s names its user_id', (type) => {
    expect(usersOf({ type, user_id: 'auth0|u1' })).toEqual(['auth0|u1']);
  });

  it('skips other types, counted', () => {
    const result = toChangedUsers(
      [{ type: 'f', user_id: 'auth0|u1' }, { type: 'seccft', client_id: 'x' }, { type: 'fp', user_id: 'auth0|u2' }, { user_id: 'auth0|u3' }],
      lookups,
    );
    expect(result.userIds).toEqual([]);
    expect(result.read).toBe(4);
    expect(result.skipped).toEqual({ other_type: 4, no_user: 0, machine_client: 0, unresolved: 0, invalid_user: 0 });
  });

  it('skips entries without a user, and machine-to-machine subjects', () => {
    const result = toChangedUsers(
      [{ type: 'sertft' }, { type: 's', user_id: '' }, { type: 'sertft', user_id: 'clientabc@clients' }, { type: 'slo', details: { session_id: 'sess_m2m' } }],
      lookups,
    );
    expect(result.userIds).toEqual([]);
    expect(result.skipped).toEqual({ other_type: 0, no_user: 2, machine_client: 2, unresolved: 0, invalid_user: 0 });
  });

  it('resolves a revocation without a user through its credential, a logout through its session', () => {
    expect(usersOf({ type: 'srrt', details: { credential_id: 'rt_2' } })).toEqual(['auth0|owner2']);
    expect(usersOf({ type: 'slo', details: { session_id: 'sess_1' } })).toEqual(['auth0|s1a', 'auth0|s1b']);
    expect(usersOf({ type: 'sertft', details: { refresh_token: { session_id: 'sess_1' } } })).toEqual(['auth0|s1a', 'auth0|s1b']);
    const unknown = toChangedUsers([{ type: 'srrt', details: { credential_id: 'rt_unknown' } }], lookups);
    expect(unknown.userIds).toEqual([]);
    expect(unknown.skipped.unresolved).toBe(1);
  });

  it('lists each user once, signups and deletions apart', () => {
    const result = toChangedUsers(
      [
        { type: 'ss', user_id: 'auth0|new' },
        { type: 's', user_id: 'auth0|new' },
        { type: 'sertft', user_id: 'auth0|u1' },
        { type: 'sdu', user_id: 'auth0|gone' },
        { type: 'sertft', user_id: 'auth0|u1' },
      ],
      lookups,
    );
    expect(result.userIds).toEqual(['auth0|new', 'auth0|u1', 'auth0|gone']);
    expect(result.signedUp).toEqual(['auth0|new']);
    expect(result.deleted).toEqual(['auth0|gone']);
  });
});

describe('toChangedUsers: sapi by method and path', () => {
  it.each([
    ['delete', '/api/v2/refresh-tokens/rt_1', undefined, ['auth0|owner1']],
    ['delete', '/api/v2/users/auth0%7Cu9/refresh-tokens', undefined, ['auth0|u9']],
    ['delete', '/api/v2/users/samlp%7Ccorp%7Ca%2Fb', undefined, ['samlp|corp|a/b']],
    ['post', '/api/v2/refresh-tokens/revoke', { ids: ['rt_1', 'rt_2', 'rt_unknown'] }, ['auth0|owner1', 'auth0|owner2']],
    ['post', '/api/v2/refresh-tokens/revoke', { user_id: 'auth0|u7', client_id: 'c' }, ['auth0|u7']],
    ['delete', '/api/v2/sessions/sess_1', undefined, ['auth0|s1a', 'auth0|s1b']],
    ['post', '/api/v2/sessions/sess_1/revoke', undefined, ['auth0|s1a', 'auth0|s1b']],
    ['delete', '/api/v2/users/auth0%7Cu8/sessions', undefined, ['auth0|u8']],
    ['delete', '/api/v2/device-credentials/dcr_1', undefined, ['auth0|device-owner']],
    ['DELETE', '/api/v2/refresh-tokens/rt_2?x=1', undefined, ['auth0|owner2']],
    ['delete', '/users/auth0%7Cu5/refresh-tokens', undefined, ['auth0|u5']],
  ])('%s %s %j → %j', (method, path, body, expected) => {
    expect(usersOf(sapi(method, path, body))).toEqual(expected);
  });

  it('never takes the caller for the target', () => {
    const result = toChangedUsers(
      [
        sapi('patch', '/api/v2/users/auth0%7Cu1', { name: 'x' }),
        sapi('get', '/api/v2/users/auth0%7Cu1/refresh-tokens'),
        sapi('post', '/api/v2/users', { email: 'a@b' }),
        sapi('delete', '/api/v2/clients/abc'),
        sapi('delete', '/api/v2/users/auth0%7Cu1/roles'),
        { type: 'sapi', user_id: ADMIN },
      ],
      lookups,
    );
    expect(result.userIds).toEqual([]);
    expect(result.skipped.other_type).toBe(6);
  });

  it('counts unresolved tokens and sessions, and an empty revoke body', () => {
    const result = toChangedUsers(
      [
        sapi('delete', '/api/v2/refresh-tokens/rt_unknown'),
        sapi('delete', '/api/v2/sessions/sess_unknown'),
        sapi('post', '/api/v2/refresh-tokens/revoke', {}),
        sapi('delete', '/api/v2/users/%E0%A4%A/sessions'),
      ],
      lookups,
    );
    expect(result.userIds).toEqual([]);
    expect(result.skipped).toEqual({ other_type: 1, no_user: 1, machine_client: 0, unresolved: 2, invalid_user: 0 });
  });
});

describe('toLookupKeys', () => {
  it('collects token and session ids once each', () => {
    expect(
      toLookupKeys([
        sapi('delete', '/api/v2/refresh-tokens/rt_1'),
        sapi('post', '/api/v2/refresh-tokens/revoke', { ids: ['rt_1', 'rt_3'] }),
        sapi('post', '/api/v2/sessions/sess_9/revoke'),
        { type: 'srrt', details: { credential_id: 'rt_4' } },
        { type: 'slo', details: { session_id: 'sess_9' } },
        { type: 'srrt', user_id: 'auth0|u1', details: { credential_id: 'rt_5' } },
      ]),
    ).toEqual({ tokenIds: ['rt_1', 'rt_3', 'rt_4'], sessionIds: ['sess_9'] });
  });
});
