import { sql, type Kysely, type Selectable } from 'kysely';
import type { LogLookups } from '../changes/log-events.js';
import { isDefaultUsersSource, type Config } from '../config.js';
import type { Database, LogCheckpointTable } from '../database.js';

export type LogCheckpointRow = Selectable<LogCheckpointTable>;

/** The stored checkpoint, or undefined before the log follower first ran. */
export async function readLogCheckpoint(db: Kysely<Database>): Promise<LogCheckpointRow | undefined> {
  return db.selectFrom('auth0.log_checkpoint').selectAll().executeTakeFirst();
}

export interface CheckpointAdvance {
  logId: string;
  /** The newest `date` among the entries read; kept when absent. */
  lastEntryDate: Date | undefined;
  now: Date;
  read: number;
  skipped: number;
  usersChanged: number;
  runId?: number;
}

/**
 * Move the checkpoint on to `logId`, adding the counts. Called only after the users the
 * entries name are synced: a crash before it replays the entries, never skips them.
 */
export async function advanceLogCheckpoint(db: Kysely<Database>, advance: CheckpointAdvance): Promise<void> {
  const lastEntryDate = advance.lastEntryDate ?? null;
  await db
    .updateTable('auth0.log_checkpoint')
    .set((eb) => ({
      log_id: advance.logId,
      last_entry_date: lastEntryDate ?? eb.ref('last_entry_date'),
      lag_seconds: sql<number | null>`extract(epoch from (${advance.now}::timestamptz - coalesce(${lastEntryDate}::timestamptz, last_entry_date)))`,
      entries_read: sql<number>`entries_read + ${advance.read}`,
      entries_skipped: sql<number>`entries_skipped + ${advance.skipped}`,
      users_changed: sql<number>`users_changed + ${advance.usersChanged}`,
      last_run_id: advance.runId ?? eb.ref('last_run_id'),
      updated_at: advance.now,
    }))
    .execute();
}

/**
 * Start following at `logId` (the newest entry): a first checkpoint, or a restart after the
 * stored one expired (`historyLost`: a full pass is due from then on).
 */
export async function restartLogCheckpoint(
  db: Kysely<Database>,
  start: { logId: string; lastEntryDate: Date | undefined; now: Date; historyLost: boolean },
): Promise<void> {
  const values = {
    log_id: start.logId,
    last_entry_date: start.lastEntryDate ?? null,
    lag_seconds: start.lastEntryDate ? (start.now.getTime() - start.lastEntryDate.getTime()) / 1000 : null,
    updated_at: start.now,
  };
  await db
    .insertInto('auth0.log_checkpoint')
    .values({ ...values, started_at: start.now, history_lost_at: start.historyLost ? start.now : null })
    .onConflict((oc) => oc.column('id').doUpdateSet(start.historyLost ? { ...values, history_lost_at: start.now } : values))
    .execute();
}

/** Owners of the token ids and holders of the session ids, as the warehouse knows them. */
export async function readLogLookups(db: Kysely<Database>, keys: { tokenIds: string[]; sessionIds: string[] }): Promise<LogLookups> {
  const tokenOwners = new Map<string, string>();
  const sessionUsers = new Map<string, string[]>();
  if (keys.tokenIds.length > 0) {
    const rows = await db.selectFrom('auth0.refresh_tokens').select(['id', 'user_id']).where('id', 'in', keys.tokenIds).execute();
    for (const row of rows) tokenOwners.set(row.id, row.user_id);
  }
  if (keys.sessionIds.length > 0) {
    const rows = await db
      .selectFrom('auth0.refresh_tokens')
      .select(['session_id', 'user_id'])
      .distinct()
      .where('session_id', 'in', keys.sessionIds)
      .execute();
    for (const row of rows) {
      if (row.session_id === null) continue;
      const users = sessionUsers.get(row.session_id) ?? [];
      users.push(row.user_id);
      sessionUsers.set(row.session_id, users);
    }
  }
  return { tokenOwners, sessionUsers };
}

/**
 * Users who signed up (`ss`) join the source table when it is the default `auth0.users`, so
 * full passes cover them from now on. Another source table is the operator's to fill. Returns
 * how many were added.
 */
export async function addSignedUpUsers(db: Kysely<Database>, source: Config['source'], userIds: string[]): Promise<number> {
  if (userIds.length === 0 || !isDefaultUsersSource(source)) return 0;
  const result = await db
    .insertInto('auth0.users')
    .values(userIds.map((user_id) => ({ user_id })))
    .onConflict((oc) => oc.column('user_id').doNothing())
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0);
}

/**
 * Users deleted in Auth0 (`sdu`): `auth0.users.removed_at` is set when the source is the
 * default table (a custom source table is the operator's to keep). The sync's 404 has already
 * marked the user's tokens deleted.
 */
export async function markUsersRemoved(db: Kysely<Database>, source: Config['source'], userIds: string[], now: Date): Promise<number> {
  if (userIds.length === 0 || !isDefaultUsersSource(source)) return 0;
  const result = await db
    .updateTable('auth0.users')
    .set({ removed_at: now })
    .where('user_id', 'in', userIds)
    .where('removed_at', 'is', null)
    .executeTakeFirst();
  return Number(result.numUpdatedRows);
}
