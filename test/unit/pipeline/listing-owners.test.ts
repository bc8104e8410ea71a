import { describe, expect, it } from '@jest/globals';
import { withoutStolen, type OwnedListing } from '../../../src/pipeline/listing-owners.js';
import type { UserOutcome } from '../../../src/warehouse/model.js';

const ALICE = 'auth0|alice';
const BOB = 'auth0|bob';

/** A synced outcome listing `ids` (as sessions: the records do not matter to the rule). */
const synced = (userId: string, ids?: string[]): UserOutcome => ({
  status: 'synced',
  userId,
  records: { tokens: [], devices: [], resourceServers: [] },
  sessions: ids?.map((id) => ({ id }) as never),
});
const listing = (storedOwners: [string, string][] = []): OwnedListing => ({
  kind: 'session',
  noun: 'session',
  ids: (outcome) => outcome.sessions?.map((session) => session.id),
  storedOwners: new Map(storedOwners),
});

describe('withoutStolen: one owner per id', () => {
  it('fails a user listing an id stored under another user, naming both; the owner keeps it', () => {
    const [bob, alice] = withoutStolen([synced(BOB, ['s1']), synced(ALICE, ['s1'])], listing([['s1', ALICE]]));
    expect(bob).toEqual({
      status: 'failed',
      userId: BOB,
      code: 'session_owner_conflict',
      message: `Auth0 listed session s1 for this user, but it belongs to user ${ALICE}; not taken over (Auth0 session ids are unique).`,
    });
    expect(alice).toMatchObject({ status: 'synced', userId: ALICE });
  });

  it('the first user of the batch to list an unstored id owns it', () => {
    const outcomes = withoutStolen([synced(ALICE, ['s1']), synced(BOB, ['s1', 's2'])], listing());
    expect(outcomes.map((o) => o.status)).toEqual(['synced', 'failed']);
  });

  it('a failed user claims nothing: a later user may list its ids', () => {
    const outcomes = withoutStolen([synced(BOB, ['s1', 's9']), synced(ALICE, ['s9'])], listing([['s1', ALICE]]));
    expect(outcomes.map((o) => o.status)).toEqual(['failed', 'synced']);
  });

  it('passes through users that are not synced or list none of this kind', () => {
    const batch: UserOutcome[] = [{ status: 'not_found', userId: BOB, sessions: [] }, synced(BOB)];
    expect(withoutStolen(batch, listing([['s1', ALICE]]))).toEqual(batch);
  });

  it('prints ids and owners safely: control characters stripped, length capped', () => {
    const [outcome] = withoutStolen([synced(BOB, ['s\u00071'])], listing([['s\u00071', 'x'.repeat(500)]]));
    expect(outcome).toMatchObject({ status: 'failed' });
    const { message } = outcome as { message: string };
    expect(message).not.toContain('\u0007');
    expect(message.length).toBeLessThan(500);
  });
});
