import type { TokenChange } from '../warehouse/schema.js';
import type { StoredToken, UserOutcome, WritePlan } from '../warehouse/model.js';
import type { LogEvidence } from './log-evidence.js';
import { withoutStolen } from './listing-owners.js';
import { decideDeletionReason, toDeletedToken, type ListedForClient } from './deletion-reason.js';

const DEVICE_CHANGES = [
  ['last_ip', 'last_ip_changed'],
  ['last_asn', 'last_asn_changed'],
  ['last_user_agent', 'last_user_agent_changed'],
] as const;

/**
 * Compare a batch of complete listings with what is stored and decide every write. Pure.
 * `stored` holds the tokens of the batch's users and any stored token they list.
 * `synced` and `not_found` users are complete listings (a 404 lists nothing): a stored live
 * token missing from it is deleted. Failed users are not touched. A user that lists a token
 * stored (or listed earlier in the batch) under another user fails, naming the token: the first
 * owner keeps it, so nothing flips between runs. Change rows record a token's
 * first sighting (`created`, and nothing else for it), deletion, restoration, a moved
 * `last_exchanged_at`, and a new last IP / ASN / user agent; nothing when nothing changed.
 * Only new, restored and changed tokens are planned for writing (issue #14): a pass in which
 * nothing changed writes no token, device or resource-server row.
 *
 * Each deletion carries its reason (issue #22: decideDeletionReason, from the log entries of its
 * user in `evidence`, the token's dates at `now` and its application's listing); a deletion whose
 * reason is `unexplained` is counted for the deletion guard (issue #18), and so is a `not_found`
 * user the logs do not say was deleted. A `not_found` user the logs say was deleted is marked removed; a user listed with
 * tokens, or shown alive by the logs, is revived.
 */
export function planWrites(batch: readonly UserOutcome[], stored: readonly StoredToken[], context: { evidence?: LogEvidence; now?: Date } = {}): WritePlan {
  const { evidence, now = new Date() } = context;
  const storedById = new Map(stored.map((token) => [token.id, token]));
  const outcomes = withoutStolen(batch, {
    kind: 'token',
    noun: 'refresh token',
    ids: (outcome) => outcome.records.tokens.map((token) => token.id),
    storedOwners: new Map(stored.map((token) => [token.id, token.user_id])),
  });
  const plan: WritePlan = {
    outcomes,
    tokens: [],
    devices: [],
    resourceServers: [],
    deletedIds: [],
    changes: [],
    counts: { held: 0, added: 0, changed: 0, restored: 0, deleted: 0, unexplained: 0, goneUnexplained: 0 },
    removedUsers: outcomes.filter((o) => o.status === 'not_found' && evidence?.deleted.has(o.userId)).map((o) => o.userId),
    revivedUsers: outcomes.filter((o) => o.status === 'synced' && (o.records.tokens.length > 0 || evidence?.alive.has(o.userId))).map((o) => o.userId),
  };
  const listed = new Set<string>();
  /** Per user and application (`user\0client`), what its listing held: for the 200-token cap. */
  const listedForClient = new Map<string, ListedForClient>();
  const change = (token: { id: string; user_id: string }, kind: TokenChange, oldValue: string | null = null, newValue: string | null = null) =>
    plan.changes.push({ token_id: token.id, user_id: token.user_id, change: kind, old_value: oldValue, new_value: newValue });

  for (const outcome of outcomes) {
    if (outcome.status !== 'synced') continue;
    const { tokens, devices, resourceServers } = outcome.records;
    const deviceById = new Map(devices.map((device) => [device.token_id, device]));
    const written = new Set<string>();
    for (const token of tokens) {
      listed.add(token.id);
      const key = `${token.user_id}\0${token.client_id ?? ''}`;
      const held = listedForClient.get(key) ?? { count: 0 };
      held.count += 1;
      if (token.created_at !== null && (held.oldestCreatedAt === undefined || Date.parse(token.created_at) < Date.parse(held.oldestCreatedAt))) {
        held.oldestCreatedAt = token.created_at;
      }
      listedForClient.set(key, held);
      const before = storedById.get(token.id);
      if (!before) {
        plan.counts.added += 1;
        change(token, 'created');
        written.add(token.id);
        continue;
      }
      const changesBefore = plan.changes.length;
      if (before.deleted_at) {
        plan.counts.restored += 1;
        change(token, 'restored');
        written.add(token.id);
      } else if (canonical(before.raw) !== canonical(JSON.parse(token.raw))) {
        plan.counts.changed += 1;
        written.add(token.id);
      }
      const exchangedBefore = before.last_exchanged_at?.toISOString() ?? null;
      if (exchangedBefore !== token.last_exchanged_at) change(token, 'exchanged', exchangedBefore, token.last_exchanged_at);
      // A listing without a device says nothing new about where the token is used, and a
      // device seen again after such a listing has nothing stored to be compared with.
      const device = deviceById.get(token.id);
      if (device && before.has_device) {
        for (const [field, kind] of DEVICE_CHANGES) {
          if (before[field] !== device[field]) change(token, kind, before[field], device[field]);
        }
      }
      // Whatever the history records is also written, so the next pass does not record it again.
      if (plan.changes.length > changesBefore) written.add(token.id);
    }
    // Every column, the device and the resource servers are taken from `raw`: a token whose raw
    // is unchanged has nothing to write, and is left out so its rows are not even locked.
    plan.tokens.push(...tokens.filter((token) => written.has(token.id)));
    plan.devices.push(...devices.filter((device) => written.has(device.token_id)));
    plan.resourceServers.push(...resourceServers.filter((server) => written.has(server.token_id)));
  }

  const listedUsers = new Set(outcomes.filter((o) => o.status !== 'failed').map((o) => o.userId));
  for (const token of stored) {
    if (token.deleted_at || !listedUsers.has(token.user_id)) continue;
    plan.counts.held += 1;
    if (listed.has(token.id)) continue;
    plan.deletedIds.push(token.id);
    plan.counts.deleted += 1;
    const gone = toDeletedToken(token.id, token.raw);
    const { reason, logId, clientId } = decideDeletionReason(gone, evidence?.explanations.get(token.user_id) ?? [], {
      now,
      listedForClient: listedForClient.get(`${token.user_id}\0${gone.clientId ?? ''}`),
      userDeleted: evidence?.deleted.has(token.user_id),
    });
    plan.changes.push({
      token_id: token.id,
      user_id: token.user_id,
      change: 'deleted',
      old_value: null,
      new_value: null,
      reason,
      reason_log_id: logId,
      reason_client_id: clientId,
    });
    if (reason === 'unexplained') plan.counts.unexplained += 1;
  }
  plan.counts.goneUnexplained = outcomes.filter((o) => o.status === 'not_found' && !evidence?.deleted.has(o.userId)).length;
  return plan;
}

/** JSON with sorted keys, so two objects compare equal whatever order their keys came in. */
export function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, inner: unknown) =>
    inner && typeof inner === 'object' && !Array.isArray(inner)
      ? Object.fromEntries(Object.entries(inner).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : inner,
  );
}
