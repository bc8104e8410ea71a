import { describe, expect, it } from '@jest/globals';
import { toWarehouseRows } from '../../../src/pipeline/normalize.js';
import { createLogEvidence } from '../../../src/pipeline/log-evidence.js';
import { planWrites } from '../../../src/pipeline/plan.js';
import type { StoredToken, UserOutcome } from '../../../src/warehouse/model.js';
import { makeToken, type Auth0TokenJson } from '../../../sandbox/tenant.js';

const ALICE = 'auth0|alice';
const BOB = 'auth0|bob';

const device = {
  initial_ip: '10.0.0.1',
  initial_asn: '1234',
  initial_user_agent: 'Mozilla/5.0 (Macintosh)',
  last_ip: '10.0.0.2',
  last_asn: '1234',
  last_user_agent: 'Mozilla/5.0 (Macintosh)',
};

/** A token as the API lists it, with a known device and last exchange. */
function apiToken(userId: string, n: number, overrides: Auth0TokenJson = {}): Auth0TokenJson {
  return makeToken(userId, n, { device, last_exchanged_at: '2026-11-20T08:00:00.000Z', ...overrides });
}

function synced(userId: string, tokens: Auth0TokenJson[]): UserOutcome {
  return { status: 'synced', userId, records: toWarehouseRows(userId, tokens) };
}

/**
 * What the warehouse holds after storing `token` (raw comes back from jsonb as a parsed object,
 * the device's last location from the left join, nulls when there is no device).
 */
function storedFrom(token: Auth0TokenJson, overrides: Partial<StoredToken> = {}): StoredToken {
  const dev = token.device as Record<string, string> | undefined;
  return {
    id: String(token.id),
    user_id: String(token.user_id),
    deleted_at: null,
    last_exchanged_at: typeof token.last_exchanged_at === 'string' ? new Date(token.last_exchanged_at) : null,
    raw: JSON.parse(JSON.stringify(token)) as unknown,
    has_device: dev !== undefined,
    last_ip: dev?.last_ip ?? null,
    last_asn: dev?.last_asn ?? null,
    last_user_agent: dev?.last_user_agent ?? null,
    ...overrides,
  };
}

const none = { added: 0, changed: 0, restored: 0, deleted: 0 };

describe('planWrites', () => {
  it('records only `created` for a token seen for the first time, however much it carries', () => {
    const tokens = [apiToken(ALICE, 1), apiToken(ALICE, 2, { device: undefined, last_exchanged_at: null })];
    const plan = planWrites([synced(ALICE, tokens)], []);
    expect(plan.counts).toMatchObject({ ...none, added: 2 });
    expect(plan.changes).toEqual(tokens.map((t) => ({ token_id: t.id, user_id: ALICE, change: 'created', old_value: null, new_value: null })));
    expect(plan.tokens.map((t) => t.id)).toEqual(tokens.map((t) => t.id));
    expect(plan.devices.map((d) => d.token_id)).toEqual([tokens[0]!.id]);
    expect(plan.deletedIds).toEqual([]);
  });

  it('records nothing and counts nothing for an unchanged token', () => {
    const token = apiToken(ALICE, 1);
    const plan = planWrites([synced(ALICE, [token])], [storedFrom(token)]);
    expect(plan.counts).toMatchObject(none);
    expect(plan.changes).toEqual([]);
    expect(plan.deletedIds).toEqual([]);
    // Nor written: its row, device and resource servers stay as they are (issue #14).
    expect(plan.tokens).toEqual([]);
    expect(plan.devices).toEqual([]);
    expect(plan.resourceServers).toEqual([]);
  });

  it('plans for writing only the new, changed and restored tokens, with their devices and resource servers', () => {
    const servers = [{ audience: 'https://api/', scopes: 'read' }];
    const same = apiToken(ALICE, 1, { resource_servers: servers });
    const changed = apiToken(ALICE, 2, { resource_servers: servers });
    const back = apiToken(ALICE, 3, { resource_servers: servers });
    const added = apiToken(ALICE, 4, { resource_servers: servers });
    const listing = [same, { ...changed, resource_servers: [{ audience: 'https://api/', scopes: 'read write' }] }, back, added];
    const stored = [storedFrom(same), storedFrom(changed), storedFrom(back, { deleted_at: new Date('2026-11-01T00:00:00Z') })];
    const plan = planWrites([synced(ALICE, listing)], stored);
    const written = [changed.id, back.id, added.id];
    expect(plan.tokens.map((t) => t.id)).toEqual(written);
    expect(plan.devices.map((d) => d.token_id)).toEqual(written);
    expect(plan.resourceServers.map((r) => [r.token_id, r.scopes])).toEqual([
      [changed.id, 'read write'],
      [back.id, 'read'],
      [added.id, 'read'],
    ]);
    expect(plan.counts).toMatchObject({ added: 1, changed: 1, restored: 1, deleted: 0 });
  });

  it('takes a user the logs say was deleted as explaining its losses, even without the entry at hand (a retry from before reasons were kept)', () => {
    const token = apiToken(ALICE, 1, { expires_at: '2099-01-01T00:00:00.000Z', idle_expires_at: '2099-01-01T00:00:00.000Z' });
    const notFound: UserOutcome = { status: 'not_found', userId: ALICE };
    expect(planWrites([notFound], [storedFrom(token)]).changes).toMatchObject([{ change: 'deleted', reason: 'unexplained' }]);
    const plan = planWrites([notFound], [storedFrom(token)], { evidence: createLogEvidence({ deleted: [ALICE] }) });
    expect(plan.changes).toMatchObject([{ change: 'deleted', reason: 'user_deleted', reason_log_id: null }]);
    expect(plan.counts).toMatchObject({ deleted: 1, unexplained: 0, goneUnexplained: 0 });
  });

  it('counts a stored raw that differs only in key order (as jsonb returns it) as unchanged', () => {
    const token = apiToken(ALICE, 1, { refresh_token_metadata: { b: '2', a: '1' } });
    const reverse = (value: unknown): unknown =>
      value && typeof value === 'object' && !Array.isArray(value)
        ? Object.fromEntries(
            Object.entries(value)
              .reverse()
              .map(([k, v]) => [k, reverse(v)]),
          )
        : Array.isArray(value)
          ? value.map(reverse)
          : value;
    const raw = reverse(token);
    expect(JSON.stringify(raw)).not.toBe(JSON.stringify(token));
    const plan = planWrites([synced(ALICE, [token])], [storedFrom(token, { raw })]);
    expect(plan.counts).toMatchObject(none);
    expect(plan.changes).toEqual([]);
  });

  it('counts a token with a changed field as changed, with no change row for fields the history does not track', () => {
    const before = apiToken(ALICE, 1);
    const after = { ...before, client_id: 'another-client', resource_servers: [{ audience: 'https://x/', scopes: 'read' }] };
    const plan = planWrites([synced(ALICE, [after])], [storedFrom(before)]);
    expect(plan.counts).toMatchObject({ ...none, changed: 1 });
    expect(plan.changes).toEqual([]);
  });

  it('records a moved last_exchanged_at as `exchanged` with the old and new ISO times', () => {
    const before = apiToken(ALICE, 1);
    const after = { ...before, last_exchanged_at: '2026-11-25T10:00:00Z' };
    const plan = planWrites([synced(ALICE, [after])], [storedFrom(before)]);
    expect(plan.counts).toMatchObject({ ...none, changed: 1 });
    expect(plan.changes).toEqual([
      { token_id: before.id, user_id: ALICE, change: 'exchanged', old_value: '2026-11-20T08:00:00.000Z', new_value: '2026-11-25T10:00:00.000Z' },
    ]);
  });

  it('records a first exchange (none stored before) with a null old value', () => {
    const before = apiToken(ALICE, 1, { last_exchanged_at: null });
    const after = { ...before, last_exchanged_at: '2026-11-25T10:00:00.000Z' };
    const plan = planWrites([synced(ALICE, [after])], [storedFrom(before)]);
    expect(plan.changes).toEqual([{ token_id: before.id, user_id: ALICE, change: 'exchanged', old_value: null, new_value: '2026-11-25T10:00:00.000Z' }]);
  });

  it('records a new last IP, ASN and user agent, each with its old and new value', () => {
    const before = apiToken(ALICE, 1);
    const after = { ...before, device: { ...device, last_ip: '203.0.113.9', last_asn: '64500', last_user_agent: 'curl/8.0' } };
    const plan = planWrites([synced(ALICE, [after])], [storedFrom(before)]);
    expect(plan.counts).toMatchObject({ ...none, changed: 1 });
    expect(plan.changes).toEqual([
      { token_id: before.id, user_id: ALICE, change: 'last_ip_changed', old_value: '10.0.0.2', new_value: '203.0.113.9' },
      { token_id: before.id, user_id: ALICE, change: 'last_asn_changed', old_value: '1234', new_value: '64500' },
      { token_id: before.id, user_id: ALICE, change: 'last_user_agent_changed', old_value: 'Mozilla/5.0 (Macintosh)', new_value: 'curl/8.0' },
    ]);
  });

  it('records only the device field that moved', () => {
    const before = apiToken(ALICE, 1);
    const after = { ...before, device: { ...device, last_ip: '198.51.100.7' } };
    const plan = planWrites([synced(ALICE, [after])], [storedFrom(before)]);
    expect(plan.changes).toEqual([{ token_id: before.id, user_id: ALICE, change: 'last_ip_changed', old_value: '10.0.0.2', new_value: '198.51.100.7' }]);
  });

  it('records no device change for a token listed without a device', () => {
    const before = apiToken(ALICE, 1);
    const after = { ...before, device: undefined };
    const plan = planWrites([synced(ALICE, [after])], [storedFrom(before)]);
    expect(plan.changes).toEqual([]);
    expect(plan.devices).toEqual([]);
    expect(plan.counts).toMatchObject({ ...none, changed: 1 }); // raw lost its device
  });

  it('marks deleted a stored live token missing from a synced user’s listing', () => {
    const kept = apiToken(ALICE, 1);
    const revoked = apiToken(ALICE, 2);
    const plan = planWrites([synced(ALICE, [kept])], [storedFrom(kept), storedFrom(revoked)]);
    expect(plan.deletedIds).toEqual([revoked.id]);
    expect(plan.counts).toMatchObject({ ...none, deleted: 1 });
    // makeToken's dates are in 2023-2024: long expired, so the deletion is explained by expiry.
    expect(plan.changes).toEqual([
      {
        token_id: revoked.id,
        user_id: ALICE,
        change: 'deleted',
        old_value: null,
        new_value: null,
        reason: 'expired',
        reason_log_id: null,
        reason_client_id: null,
      },
    ]);
  });

  it('marks deleted every live token of a user Auth0 no longer knows (not_found), but not its already deleted ones', () => {
    const a = apiToken(BOB, 1);
    const b = apiToken(BOB, 2);
    const gone = apiToken(BOB, 3);
    const stored = [storedFrom(a), storedFrom(b), storedFrom(gone, { deleted_at: new Date('2026-11-01T00:00:00Z') })];
    const plan = planWrites([{ status: 'not_found', userId: BOB }], stored);
    expect(plan.deletedIds.sort()).toEqual([a.id, b.id].sort());
    expect(plan.counts).toMatchObject({ ...none, deleted: 2 });
    expect(plan.counts.held).toBe(2); // the guard's denominator: live tokens held for listed users
    expect(plan.changes.map((c) => [c.token_id, c.change]).sort()).toEqual(
      [
        [a.id, 'deleted'],
        [b.id, 'deleted'],
      ].sort(),
    );
    expect(plan.tokens).toEqual([]);
  });

  it('does not mark deleted a token that belongs to a user not in the batch', () => {
    const alices = apiToken(ALICE, 1);
    const bobs = apiToken(BOB, 1);
    const plan = planWrites([synced(ALICE, [alices])], [storedFrom(alices), storedFrom(bobs)]);
    expect(plan.deletedIds).toEqual([]);
    expect(plan.changes).toEqual([]);
  });

  it('records `restored` for a stored deleted token that is listed again, counted as restored, not changed', () => {
    const token = apiToken(ALICE, 1);
    const plan = planWrites([synced(ALICE, [token])], [storedFrom(token, { deleted_at: new Date('2026-11-01T00:00:00Z') })]);
    expect(plan.counts).toMatchObject({ ...none, restored: 1 });
    expect(plan.changes).toEqual([{ token_id: token.id, user_id: ALICE, change: 'restored', old_value: null, new_value: null }]);
    expect(plan.deletedIds).toEqual([]);
  });

  it('leaves a failed user untouched: no writes, no deletions, no change rows', () => {
    const token = apiToken(ALICE, 1);
    const failed = { status: 'failed', userId: ALICE, code: 'server_error', message: '503' } as const;
    const plan = planWrites([failed], [storedFrom(token)]);
    expect(plan).toEqual({
      outcomes: [failed],
      tokens: [],
      devices: [],
      resourceServers: [],
      deletedIds: [],
      changes: [],
      counts: { ...none, held: 0, unexplained: 0, goneUnexplained: 0 },
      removedUsers: [],
      revivedUsers: [],
    });
  });

  it('plans a mixed batch user by user', () => {
    const a1 = apiToken(ALICE, 1);
    const a2 = apiToken(ALICE, 2);
    const b1 = apiToken(BOB, 1);
    const carol = 'auth0|carol';
    const c1 = apiToken(carol, 1);
    const outcomes: UserOutcome[] = [
      synced(ALICE, [{ ...a1, last_exchanged_at: '2026-11-26T00:00:00.000Z' }, apiToken(ALICE, 3)]),
      { status: 'failed', userId: BOB, code: 'server_error', message: 'down' },
      { status: 'not_found', userId: carol },
    ];
    const plan = planWrites(outcomes, [storedFrom(a1), storedFrom(a2), storedFrom(b1), storedFrom(c1)]);
    expect(plan.counts).toMatchObject({ added: 1, changed: 1, restored: 0, deleted: 2 });
    expect(plan.deletedIds.sort()).toEqual([a2.id, c1.id].sort());
    expect(plan.changes.map((c) => `${c.change}:${c.token_id}`).sort()).toEqual(
      [`exchanged:${a1.id}`, `created:${apiToken(ALICE, 3).id}`, `deleted:${a2.id}`, `deleted:${c1.id}`].sort(),
    );
  });
});
