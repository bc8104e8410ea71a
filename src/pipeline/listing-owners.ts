import { toPrintable } from '../core/upstream-text.js';
import type { UserOutcome } from '../warehouse/model.js';

/** What one kind of listed thing (refresh tokens, sessions) needs for the ownership check. */
export interface OwnedListing {
  /** The word for it in ids and codes: `token` gives `token_owner_conflict`. */
  kind: 'token' | 'session';
  /** The word for it in the message: `refresh token`, `session`. */
  noun: string;
  /** The ids a synced outcome lists; undefined: it lists none of this kind, and passes through untouched. */
  ids: (outcome: Extract<UserOutcome, { status: 'synced' }>) => readonly string[] | undefined;
  /** The user each stored id belongs to, whoever listed it (the batch's users and any id it lists). */
  storedOwners: ReadonlyMap<string, string>;
}

/**
 * Turn `failed` every user that lists an id stored (or listed earlier in the batch) under another
 * user. Auth0's token and session ids are unique, so the listing is wrong, not the warehouse, and
 * the first owner keeps it: nothing flips between runs. Pure; one rule for tokens and sessions.
 */
export function withoutStolen(batch: readonly UserOutcome[], listing: OwnedListing): UserOutcome[] {
  const owner = new Map(listing.storedOwners);
  return batch.map((outcome) => {
    if (outcome.status !== 'synced') return outcome;
    const ids = listing.ids(outcome);
    if (!ids) return outcome;
    const stolen = ids.find((id) => (owner.get(id) ?? outcome.userId) !== outcome.userId);
    if (stolen === undefined) {
      for (const id of ids) owner.set(id, outcome.userId);
      return outcome;
    }
    return {
      status: 'failed',
      userId: outcome.userId,
      code: `${listing.kind}_owner_conflict`,
      message:
        `Auth0 listed ${listing.noun} ${toPrintable(stolen, 200)} for this user, but it belongs to user ${toPrintable(owner.get(stolen) ?? '', 200)}; ` +
        `not taken over (Auth0 ${listing.kind} ids are unique).`,
    };
  });
}
