import type { Kysely } from 'kysely';
import type { Clock } from '../core/clock.js';
import type { Database } from '../warehouse/schema.js';
import { countFailedUsers, countUserIds, readFailedUserIds, readUserIds, readUserIdsByStaleness, type UserSource } from './user-ids.js';

/** Which users a run syncs. */
export type UserSelection =
  /** Every user of the source table; stalest first when the run has a budget. */
  | { kind: 'source' }
  /** Just these (`--user`, `--users-file`); `total` when known in advance. */
  | { kind: 'ids'; userIds: AsyncIterable<string> | Iterable<string>; total?: number }
  /** Users whose last sync failed (`--only-failed`). */
  | { kind: 'failed' }
  /** Source users without a successful sync since `since` (`--stale`). */
  | { kind: 'stale'; since: Date };

export interface RunBudget {
  maxUsers?: number;
  maxDurationMs?: number;
}

export interface SelectedUsers {
  ids: AsyncIterable<string>;
  /** How many the run will take at most, when that can be known up front. */
  total: number | undefined;
}

/**
 * The stream of user IDs for a run, cut to its budget. A budgeted source run goes stalest
 * first (never synced successfully, then least recently synced before `startedAt`), so
 * repeated budgeted runs cover the whole tenant in turn and every user's staleness stays
 * bounded. Streams throughout: nothing here holds more than a page of IDs. `users` names the
 * tenant: the state and failures read are that tenant's.
 */
export async function selectUsers(db: Kysely<Database>, users: UserSource, selection: UserSelection, budget: RunBudget, clock: Clock): Promise<SelectedUsers> {
  const startedAt = new Date(clock.now());
  const budgeted = budget.maxUsers !== undefined || budget.maxDurationMs !== undefined;
  let ids: AsyncIterable<string> | Iterable<string>;
  let total: number | undefined;
  switch (selection.kind) {
    case 'source':
      total = await countUserIds(db, users);
      ids = budgeted ? concat(readUserIds(db, { ...users, notSyncedSince: 'ever' }), readUserIdsByStaleness(db, users, startedAt)) : readUserIds(db, users);
      break;
    case 'stale':
      total = await countUserIds(db, users, selection.since);
      ids = readUserIds(db, { ...users, notSyncedSince: selection.since });
      break;
    case 'failed':
      total = await countFailedUsers(db, users.tenant);
      ids = readFailedUserIds(db, users.tenant);
      break;
    case 'ids':
      total = selection.total;
      ids = selection.userIds;
  }
  const deadline = budget.maxDurationMs === undefined ? Infinity : clock.now() + budget.maxDurationMs;
  return {
    ids: withinBudget(ids, budget.maxUsers ?? Infinity, deadline, clock),
    total: total === undefined ? undefined : Math.min(total, budget.maxUsers ?? Infinity),
  };
}

async function* concat<T>(...parts: AsyncIterable<T>[]): AsyncGenerator<T> {
  for (const part of parts) yield* part;
}

/** Stop taking IDs after `maxUsers`, or once the deadline has passed. */
async function* withinBudget(ids: AsyncIterable<string> | Iterable<string>, maxUsers: number, deadline: number, clock: Clock) {
  let taken = 0;
  for await (const id of ids) {
    if (taken >= maxUsers || clock.now() >= deadline) return;
    taken += 1;
    yield id;
  }
}
