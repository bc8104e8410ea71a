import { describe, expect, it } from '@jest/globals';
import type { Auth0Client } from '../../../src/auth0/client.js';
import { Auth0Error, errorForStatus } from '../../../src/auth0/errors.js';
import type { Auth0LogEntry } from '../../../src/auth0/logs.js';
import { ConfigError } from '../../../src/core/errors.js';
import { loadConfig } from '../../../src/core/config.js';
import { createLogger } from '../../../src/core/log.js';
import { rememberSecret } from '../../../src/core/upstream-text.js';
import { toChangedUsers } from '../../../src/pipeline/log-events.js';
import { MAX_SESSION_RAW, toInet, toSessionRecords } from '../../../src/pipeline/normalize-sessions.js';
import { hasSessionListings, planSessionWrites, withoutStolenSessions } from '../../../src/pipeline/plan-sessions.js';
import { createLogEvidence } from '../../../src/pipeline/log-evidence.js';
import { createSessionsSwitch } from '../../../src/pipeline/sessions-switch.js';
import type { SessionRecord, StoredSession, UserOutcome } from '../../../src/warehouse/model.js';
import { makeSession, makeToken, sessionsForTokens } from '../../../sandbox/tenant.js';

// Issue #22: the pure parts of sessions beside tokens.

const USER = 'auth0|u1';
const session = (id: string, extra: Record<string, unknown> = {}) => ({ ...makeSession(USER, id, [makeToken(USER, 1)]), ...extra });

describe('toSessionRecords', () => {
  it('maps the wire format to the warehouse record, field by field', () => {
    const api = session('s1');
    const [record] = toSessionRecords(USER, [api]);
    const device = api.device as Record<string, string>;
    expect(record).toEqual({
      id: 's1',
      user_id: USER,
      created_at: api.created_at,
      updated_at: api.updated_at,
      authenticated_at: api.authenticated_at,
      last_interacted_at: api.last_interacted_at,
      idle_expires_at: api.idle_expires_at,
      expires_at: api.expires_at,
      initial_ip: device.initial_ip ?? null,
      initial_ip_inet: device.initial_ip ?? null,
      initial_asn: device.initial_asn ?? null,
      initial_user_agent: device.initial_user_agent ?? null,
      last_ip: device.last_ip ?? null,
      last_ip_inet: device.last_ip ?? null,
      last_asn: device.last_asn ?? null,
      last_user_agent: device.last_user_agent ?? null,
      client_ids: (api.clients as { client_id: string }[]).map((c) => c.client_id),
      authentication_methods: JSON.stringify(
        (api.authentication as { methods: { name: string; type?: string; timestamp: string }[] }).methods.map((m) => ({
          name: m.name,
          type: m.type ?? null,
          timestamp: m.timestamp,
        })),
      ),
      raw: JSON.stringify(api),
    });
  });

  it('takes a session with no device, clients or methods, and keeps the last copy of a session listed twice', () => {
    const records = toSessionRecords(USER, [
      { id: 'a', user_id: USER, expires_at: '2026-01-01T00:00:00Z' },
      { id: 'a', user_id: USER },
    ]);
    expect(records).toHaveLength(1);
    expect(records[0]).toMatchObject({ expires_at: null, client_ids: [], authentication_methods: '[]', last_ip: null, last_ip_inet: null });
  });

  it('refuses what cannot be keyed or typed, naming the field', () => {
    const refused = (sessions: unknown[]) => {
      try {
        toSessionRecords(USER, sessions as never);
      } catch (error) {
        return (error as Error).message;
      }
      return 'accepted';
    };
    expect(refused(['x'])).toBe('sessions[0] is not an object');
    expect(refused([{ id: 7 }])).toBe('sessions[0].id is missing or not a string');
    expect(refused([{ id: 'a\u0001b' }])).toBe('sessions[0].id contains a control character');
    expect(refused([{ id: 'a', user_id: 'auth0|other' }])).toBe('sessions[0] (id a).user_id is "auth0|other", expected "auth0|u1"');
    expect(refused([{ id: 'a', expires_at: 'tomorrow' }])).toBe('sessions[0] (id a).expires_at is not an ISO-8601 date: "tomorrow"');
    expect(refused([{ id: 'a', device: 'x' }])).toBe('sessions[0] (id a).device is not an object');
    expect(refused([{ id: 'a', clients: {} }])).toBe('sessions[0] (id a).clients is not an array');
    expect(refused([{ id: 'a', authentication: { methods: [{ type: 'otp' }] } }])).toBe(
      'sessions[0] (id a).authentication.methods[0].name is missing or not a string',
    );
  });

  it('makes text safe: control characters and secrets out, long text cut, a huge object reduced to its columns', () => {
    rememberSecret('super-secret-access-token');
    const [record] = toSessionRecords(USER, [
      {
        id: 'h',
        device: { last_user_agent: `UA\u001b[2J ${'u'.repeat(5000)}`, last_ip: '10.0.0.1\n', initial_ip: ' 10.0.0.2' },
        clients: [{ client_id: 'c1' }, { client_id: 'c1' }, { client_id: 'super-secret-access-token' }],
        session_metadata: { token: 'Bearer super-secret-access-token', big: Array.from({ length: 10 }, () => 'z'.repeat(5000)) },
      },
    ]);
    expect(record!.last_user_agent!.startsWith('UA ')).toBe(true);
    expect(record!.last_user_agent!.length).toBe(1024);
    expect([record!.last_ip, record!.last_ip_inet, record!.initial_ip_inet]).toEqual(['10.0.0.1 ', null, null]);
    expect(record!.client_ids).toEqual(['c1', '[redacted]']);
    expect(record!.raw).not.toContain('super-secret-access-token');
    const raw = JSON.parse(record!.raw) as Record<string, unknown>;
    expect(raw).toMatchObject({ id: 'h', truncated: true });
    expect(raw.session_metadata).toBeUndefined();
    expect(record!.raw.length).toBeLessThanOrEqual(MAX_SESSION_RAW);
  });

  it('never cuts a string of raw in half a surrogate pair (jsonb would refuse it, and the user fail every run)', () => {
    const [record] = toSessionRecords(USER, [{ id: 'e', device: { last_user_agent: `x${'\u{1F600}'.repeat(3000)}` } }]);
    expect(record!.raw).not.toMatch(/\\ud83d"/i);
    expect(() => JSON.parse(record!.raw)).not.toThrow();
  });

  it('types addresses as inet only when PostgreSQL would take them', () => {
    expect(['192.168.1.1', '::', 'fe80::1', '2001:db8:0:0:0:0:2:1'].map(toInet)).toEqual(['192.168.1.1', '::', 'fe80::1', '2001:db8:0:0:0:0:2:1']);
    expect(['256.1.1.1', '01.2.3.4', '1.2.3.4/8', 'localhost', '[::1]', null].map(toInet)).toEqual([null, null, null, null, null, null]);
  });
});

const stored = (record: SessionRecord, extra: Partial<StoredSession> = {}): StoredSession => ({
  id: record.id,
  user_id: record.user_id,
  deleted_at: null,
  raw: JSON.parse(record.raw),
  authenticated_at: record.authenticated_at ? new Date(record.authenticated_at) : null,
  last_interacted_at: record.last_interacted_at ? new Date(record.last_interacted_at) : null,
  last_ip: record.last_ip,
  last_asn: record.last_asn,
  last_user_agent: record.last_user_agent,
  client_ids: record.client_ids,
  authentication_methods: JSON.parse(record.authentication_methods),
  ...extra,
});
const synced = (userId: string, sessions?: SessionRecord[]): UserOutcome => ({
  status: 'synced',
  userId,
  records: { tokens: [], devices: [], resourceServers: [] },
  sessions,
});

describe('planSessionWrites', () => {
  it('counts a deletion unexplained unless a logout, a revocation, the user deletion or an expiry explains it (the tokens rule)', () => {
    const inAYear = new Date(Date.now() + 365 * 86_400_000).toISOString();
    const live = toSessionRecords(USER, [
      session('x', { expires_at: inAYear, idle_expires_at: inAYear }),
      session('y', { expires_at: inAYear, idle_expires_at: inAYear }),
    ]);
    const held = live.map((record) => stored(record));
    const gone = (evidence?: ReturnType<typeof createLogEvidence>, now?: Date) => planSessionWrites([synced(USER, [])], held, { evidence, now }).counts;
    expect(gone()).toMatchObject({ held: 2, deleted: 2, unexplained: 2 });
    // A logout (`slo`) naming `x`: `x` is explained; `y`, another session of the user, too, as for tokens (an entry about the user).
    expect(gone(createLogEvidence({ explanations: [{ userId: USER, reason: 'session_revoked', sessionIds: ['x'] }] }))).toMatchObject({ unexplained: 0 });
    // Every session revoked through the API, or the user deleted.
    expect(gone(createLogEvidence({ explanations: [{ userId: USER, reason: 'session_revoked', callerClientId: 'admin' }] }))).toMatchObject({ unexplained: 0 });
    const notFound: UserOutcome = { status: 'not_found', userId: USER, sessions: [] };
    expect(planSessionWrites([notFound], held, { evidence: createLogEvidence({ deleted: [USER] }) }).counts).toMatchObject({ deleted: 2, unexplained: 0 });
    expect(planSessionWrites([notFound], held).counts).toMatchObject({ deleted: 2, unexplained: 2 });
    // Past their expiry.
    expect(gone(undefined, new Date(Date.now() + 2 * 365 * 86_400_000))).toMatchObject({ deleted: 2, unexplained: 0 });
    // Another user's entries explain nothing.
    expect(gone(createLogEvidence({ explanations: [{ userId: 'auth0|other', reason: 'session_revoked' }] }))).toMatchObject({ unexplained: 2 });
    // Nor do entries about the user's tokens or one application: they do not end sessions.
    expect(gone(createLogEvidence({ explanations: [{ userId: USER, reason: 'revoked_by_user', tokenIds: ['rt_other'] }] }))).toMatchObject({ unexplained: 2 });
    expect(gone(createLogEvidence({ explanations: [{ userId: USER, reason: 'reuse_detected' }] }))).toMatchObject({ unexplained: 2 });
  });

  const [a, b, c] = toSessionRecords(USER, [session('a'), session('b'), session('c')]);

  it('writes nothing for an unchanged listing, and records first sightings alone', () => {
    expect(planSessionWrites([synced(USER, [a!, b!])], [stored(a!), stored(b!)])).toMatchObject({
      sessions: [],
      deletedIds: [],
      changes: [],
      listedUsers: [USER],
    });
    const first = planSessionWrites([synced(USER, [a!])], []);
    expect(first.sessions).toEqual([a]);
    expect(first.changes).toEqual([{ session_id: 'a', user_id: USER, change: 'created', old_value: null, new_value: null }]);
  });

  it('deletes what a complete listing lacks, restores what comes back, and records what changed', () => {
    const moved = toSessionRecords(USER, [
      session('b', {
        last_interacted_at: '2030-01-01T00:00:00.000Z',
        device: { last_ip: '10.9.9.9' },
        authentication: { methods: [{ name: 'pwd' }, { name: 'mfa', type: 'otp' }] },
      }),
    ])[0]!;
    const plan = planSessionWrites([synced(USER, [moved, c!])], [stored(a!), stored(b!), stored(c!, { deleted_at: new Date() })]);
    expect(plan.deletedIds).toEqual(['a']);
    expect(plan.sessions.map((s) => s.id)).toEqual(['b', 'c']);
    // `a` expired long ago (the sandbox's dates): its deletion is explained.
    expect(plan.counts).toEqual({ held: 2, added: 0, changed: 1, restored: 1, deleted: 1, unexplained: 0 });
    expect(plan.changes.map((ch) => [ch.session_id, ch.change, ch.new_value])).toEqual(
      expect.arrayContaining([
        ['b', 'interacted', '2030-01-01T00:00:00.000Z'],
        ['b', 'last_ip_changed', '10.9.9.9'],
        ['b', 'methods_changed', 'pwd mfa:otp'],
        ['c', 'restored', null],
        ['a', 'deleted', null],
      ]),
    );
  });

  it('never touches the sessions of a failed user or of one whose sessions were not listed; a 404 lists none', () => {
    const failed: UserOutcome = { status: 'failed', userId: USER, code: 'server_error', message: 'x' };
    expect(planSessionWrites([failed], [stored(a!)])).toMatchObject({ deletedIds: [], listedUsers: [] });
    expect(planSessionWrites([synced(USER)], [stored(a!)])).toMatchObject({ deletedIds: [], listedUsers: [] });
    expect(hasSessionListings([synced(USER), failed])).toBe(false);
    expect(planSessionWrites([{ status: 'not_found', userId: USER, sessions: [] }], [stored(a!)])).toMatchObject({ deletedIds: ['a'], listedUsers: [USER] });
  });

  it('fails a user listing a session another user owns, who keeps it', () => {
    const [outcome] = withoutStolenSessions([synced('auth0|thief', [a!])], [stored(a!)]);
    expect(outcome).toMatchObject({ status: 'failed', code: 'session_owner_conflict' });
  });
});

describe('the sessions switch (SYNC_SESSIONS)', () => {
  const clientWith = (scopes: string[] | undefined) => ({ grantedScopes: async () => scopes }) as unknown as Auth0Client;
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({ format: 'json', write: (line) => lines.push(JSON.parse(line) as Record<string, unknown>) });

  it('auto: on exactly when the token grants read:sessions, one line either way, decided once', async () => {
    lines.length = 0;
    const on = createSessionsSwitch('auto', logger);
    expect(await Promise.all([on.enabled(clientWith(['read:refresh_tokens', 'read:sessions'])), on.enabled(clientWith([]))])).toEqual([true, true]);
    const off = createSessionsSwitch('auto', logger);
    expect(await off.enabled(clientWith(['read:refresh_tokens']))).toBe(false);
    expect(await createSessionsSwitch('auto', logger).enabled(clientWith(undefined))).toBe(false);
    expect(lines.map((l) => l.sessions)).toEqual(['on', 'off', 'off']);
  });

  it('auto turns off for the run on a route the tenant lacks; on makes it fatal, naming SYNC_SESSIONS; other errors pass', () => {
    const absent = errorForStatus(404, '{"statusCode":404,"error":"Not Found","message":"Not Found"}', 'GET /api/v2/users/x/sessions');
    const forbidden = errorForStatus(403, '{"statusCode":403,"message":"This feature is not enabled for this tenant."}', 'GET /api/v2/users/x/sessions');
    const gone = errorForStatus(404, '{"statusCode":404,"message":"The user does not exist.","errorCode":"inexistent_user"}', 'GET');
    const auto = createSessionsSwitch('auto', logger);
    expect(auto.judge(absent)).toEqual({ off: true });
    expect(auto.judge(forbidden)).toEqual({ off: true });
    expect(auto.state).toBe(false);
    expect(auto.judge(gone)).toEqual({ off: false, error: gone });
    const verdict = createSessionsSwitch('on', logger).judge(forbidden);
    expect(verdict.off).toBe(false);
    const error = (verdict as { error: Auth0Error }).error;
    expect([error.code, error.fatal]).toEqual(['endpoint_unavailable', true]);
    expect(error.message).toMatch(/set SYNC_SESSIONS=auto or SYNC_SESSIONS=off\.$/);
  });

  it('is read from SYNC_SESSIONS, anything else named', () => {
    const valid = { AUTH0_DOMAIN: 'tenant.eu.auth0.com', AUTH0_CLIENT_ID: 'id', AUTH0_CLIENT_SECRET: 'secret' };
    expect(loadConfig(valid).sync.sessions).toBe('auto');
    expect(loadConfig({ ...valid, SYNC_SESSIONS: ' ON ' }).sync.sessions).toBe('on');
    expect(() => loadConfig({ ...valid, SYNC_SESSIONS: 'yes' })).toThrow(ConfigError);
    expect(() => loadConfig({ ...valid, SYNC_SESSIONS: 'yes' })).toThrow(/SYNC_SESSIONS must be one of auto, on, off \(got "yes"\)/);
  });
});

describe('the log events that change sessions name their user', () => {
  const lookups = { tokenOwners: new Map<string, string>(), sessionUsers: new Map([['sess_web', ['auth0|web']]]) };
  it.each<[string, Auth0LogEntry, string[]]>([
    ['a login (s)', { type: 's', user_id: 'auth0|a' }, ['auth0|a']],
    ['a logout (slo)', { type: 'slo', user_id: 'auth0|b' }, ['auth0|b']],
    ['a logout naming only its session', { type: 'slo', details: { session_id: 'sess_web' } }, ['auth0|web']],
    [
      'a session deleted through the API',
      { type: 'sapi', user_id: 'admin', details: { request: { method: 'delete', path: '/api/v2/sessions/sess_web' } } },
      ['auth0|web'],
    ],
    [
      'a session revoked through the API',
      { type: 'sapi', user_id: 'admin', details: { request: { method: 'post', path: '/api/v2/sessions/sess_web/revoke' } } },
      ['auth0|web'],
    ],
    [
      "a user's sessions deleted through the API",
      { type: 'sapi', user_id: 'admin', details: { request: { method: 'delete', path: '/api/v2/users/auth0%7Cc/sessions' } } },
      ['auth0|c'],
    ],
  ])('%s', (_name, entry, users) => {
    expect(toChangedUsers([entry], lookups).userIds).toEqual(users);
  });
});

describe("the sandbox's sessions", () => {
  it("derive from the tokens' session ids, deterministically, sorted, some ended, some with a second factor", () => {
    const tokens = Array.from({ length: 40 }, (_, n) => makeToken(USER, n));
    const sessions = sessionsForTokens(USER, tokens);
    expect(sessionsForTokens(USER, tokens)).toEqual(sessions);
    expect(sessions.map((s) => s.id)).toEqual([...sessions.map((s) => String(s.id))].sort());
    const ids = new Set(tokens.map((t) => t.session_id).filter(Boolean));
    expect(sessions.filter((s) => ids.has(s.id)).length).toBeLessThan(ids.size);
    const methods = sessions.map((s) => JSON.stringify(s.authentication));
    expect(methods.some((m) => m.includes('"mfa"'))).toBe(true);
    expect(methods.some((m) => !m.includes('"mfa"'))).toBe(true);
  });
});
