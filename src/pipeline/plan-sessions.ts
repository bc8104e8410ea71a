import type { SessionChange } from '../warehouse/schema.js';
import type { SessionRecord, SessionWritePlan, StoredSession, UserOutcome } from '../warehouse/model.js';
import { decideDeletionReason, SESSION_ENDING_REASONS, toDeletedToken } from './deletion-reason.js';
import { canonical } from './plan.js';
import { withoutStolen } from './listing-owners.js';
import type { LogEvidence } from './log-evidence.js';

const FIELD_CHANGES = [
  ['last_ip', 'last_ip_changed'],
  ['last_asn', 'last_asn_changed'],
  ['last_user_agent', 'last_user_agent_changed'],
] as const;

/**
 * Turn `failed` every user that lists a session stored (or listed earlier in the batch) under
 * another user (withoutStolen, as planWrites does for tokens). Pure. Users without a session
 * listing pass through untouched. Called before planWrites, not inside planSessionWrites: a user
 * failed for a session it does not own must not have its tokens written either, and sessions are
 * planned on planWrites' outcomes, so a user failed for a token keeps its sessions untouched too.
 */
export function withoutStolenSessions(batch: readonly UserOutcome[], stored: readonly StoredSession[]): UserOutcome[] {
  return withoutStolen(batch, {
    kind: 'session',
    noun: 'session',
    ids: (outcome) => outcome.sessions?.map((session) => session.id),
    storedOwners: new Map(stored.map((session) => [session.id, session.user_id])),
  });
}

/**
 * Compare the session listings of a batch with what is stored and decide every write. Pure; the
 * sessions' counterpart of planWrites. Only users whose outcome carries `sessions` are looked at
 * (sessions listed completely: a `synced` user, or a `not_found` one, which lists none); a failed
 * user, or one whose sessions were not listed (SYNC_SESSIONS off, the route unavailable), keeps
 * its stored sessions untouched, so a listing failure or a switch never deletes a session.
 * Change rows record a first sighting (`created` alone), a deletion, a restoration, a moved
 * `last_interacted_at` (`interacted`) or `authenticated_at` (`authenticated`), a new last IP /
 * ASN / user agent, new clients or new methods. Only new, restored and changed sessions are
 * planned for writing (quiet writes).
 * A deletion is `unexplained` (counted for the deletion guard, as for tokens) unless
 * decideDeletionReason, the tokens' rule restricted to SESSION_ENDING_REASONS, finds a reason:
 * the user's deletion in `evidence`, an entry naming the session (a logout `slo`, a session
 * revoked), one about the whole user (its deletion, all its sessions revoked), or the session's
 * expiry or idle expiry at `now`.
 */
export function planSessionWrites(
  outcomes: readonly UserOutcome[],
  stored: readonly StoredSession[],
  context: { evidence?: LogEvidence; now?: Date } = {},
): SessionWritePlan {
  const { evidence, now = new Date() } = context;
  const storedById = new Map(stored.map((session) => [session.id, session]));
  const plan: SessionWritePlan = {
    sessions: [],
    deletedIds: [],
    changes: [],
    listedUsers: [],
    counts: { held: 0, added: 0, changed: 0, restored: 0, deleted: 0, unexplained: 0 },
  };
  const change = (session: { id: string; user_id: string }, kind: SessionChange, oldValue: string | null = null, newValue: string | null = null) =>
    plan.changes.push({ session_id: session.id, user_id: session.user_id, change: kind, old_value: oldValue, new_value: newValue });
  const listed = new Set<string>();
  const listedUsers = new Set<string>();

  for (const outcome of outcomes) {
    if (outcome.status === 'failed' || !outcome.sessions) continue;
    listedUsers.add(outcome.userId);
    for (const session of outcome.sessions) {
      listed.add(session.id);
      const before = storedById.get(session.id);
      if (!before) {
        plan.counts.added += 1;
        change(session, 'created');
        plan.sessions.push(session);
        continue;
      }
      const changesBefore = plan.changes.length;
      let write = false;
      if (before.deleted_at) {
        plan.counts.restored += 1;
        change(session, 'restored');
        write = true;
      } else if (canonical(before.raw) !== canonical(JSON.parse(session.raw))) {
        plan.counts.changed += 1;
        write = true;
      }
      compareDate(before.last_interacted_at, session.last_interacted_at, (from, to) => change(session, 'interacted', from, to));
      compareDate(before.authenticated_at, session.authenticated_at, (from, to) => change(session, 'authenticated', from, to));
      for (const [field, kind] of FIELD_CHANGES) {
        if (before[field] !== session[field]) change(session, kind, before[field], session[field]);
      }
      if (before.client_ids.join(' ') !== session.client_ids.join(' '))
        change(session, 'clients_changed', before.client_ids.join(' '), session.client_ids.join(' '));
      const methodsBefore = methodNames(before.authentication_methods);
      const methodsNow = methodNames(JSON.parse(session.authentication_methods));
      if (methodsBefore !== methodsNow) change(session, 'methods_changed', methodsBefore, methodsNow);
      // Whatever the history records is also written, so the next pass does not record it again.
      if (write || plan.changes.length > changesBefore) plan.sessions.push(session);
    }
  }

  for (const session of stored) {
    if (session.deleted_at || !listedUsers.has(session.user_id)) continue;
    plan.counts.held += 1;
    if (listed.has(session.id)) continue;
    plan.deletedIds.push(session.id);
    plan.counts.deleted += 1;
    change(session, 'deleted');
    const { reason } = decideDeletionReason(
      { ...toDeletedToken(session.id, session.raw), sessionId: session.id },
      evidence?.explanations.get(session.user_id) ?? [],
      {
        now,
        userDeleted: evidence?.deleted.has(session.user_id),
        reasons: SESSION_ENDING_REASONS,
      },
    );
    if (reason === 'unexplained') plan.counts.unexplained += 1;
  }
  plan.listedUsers = [...listedUsers];
  return plan;
}

/** Whether any outcome of the batch carries a session listing: without one, sessions cost nothing. */
export function hasSessionListings(batch: readonly UserOutcome[]): boolean {
  return batch.some((outcome) => outcome.status !== 'failed' && outcome.sessions !== undefined);
}

/** The session ids a batch lists (for reading what is stored under them, whoever owns them). */
export function listedSessionIds(batch: readonly UserOutcome[]): string[] {
  return batch.flatMap((outcome) => (outcome.status === 'synced' ? (outcome.sessions ?? []).map((session: SessionRecord) => session.id) : []));
}

function compareDate(before: Date | null, now: string | null, changed: (from: string | null, to: string | null) => void): void {
  const from = before?.toISOString() ?? null;
  if (from !== now) changed(from, now);
}

/** `pwd mfa:otp` for `[{name: 'pwd'}, {name: 'mfa', type: 'otp'}]`: what the history compares and shows. */
function methodNames(methods: unknown): string {
  if (!Array.isArray(methods)) return '';
  return methods
    .map((method: unknown) => {
      const m = method && typeof method === 'object' ? (method as Record<string, unknown>) : {};
      return `${String(m.name ?? '')}${typeof m.type === 'string' ? `:${m.type}` : ''}`;
    })
    .join(' ');
}
