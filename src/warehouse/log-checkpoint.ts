import { sql, type Kysely, type Selectable } from 'kysely';
import { isDefaultUsersSource, type Config } from '../core/config.js';
import type { Database, LogCheckpointTable } from './schema.js';

export type LogCheckpointRow = Selectable<LogCheckpointTable>;

/**
 * What the warehouse knows about ids found in tenant log entries (`readLogLookups`); the pure
 * rules of src/pipeline/log-events.ts read it.
 */
export interface LogLookups {
  /** `auth0.refresh_tokens.id` → `user_id`. */
  tokenOwners: ReadonlyMap<string, string>;
  /** `auth0.refresh_tokens.session_id` → the users holding tokens of that session (and `auth0.sessions`' own user). */
  sessionUsers: ReadonlyMap<string, readonly string[]>;
}

/** The tenant's stored checkpoint, or undefined before the log follower first ran for it. */
export async function readLogCheckpoint(db: Kysely<Database>, tenant: string): Promise<LogCheckpointRow | undefined> {
  return db.selectFrom('auth0.log_checkpoint').selectAll().where('tenant', '=', tenant).executeTakeFirst();
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
export async function advanceLogCheckpoint(db: Kysely<Database>, tenant: string, advance: CheckpointAdvance): Promise<void> {
  const lastEntryDate = advance.lastEntryDate ?? null;
  await db
    .updateTable('auth0.log_checkpoint')
    .set((eb) => ({
      log_id: advance.logId,
      last_entry_date: lastEntryDate ?? eb.ref('last_entry_date'),
      // Behind the tenant's newest entry as last seen (recordNewestLog); 0 once past it.
      lag_seconds: sql<number | null>`greatest(0, extract(epoch from (newest_entry_date - coalesce(${lastEntryDate}::timestamptz, last_entry_date))))`,
      entries_read: sql<number>`entries_read + ${advance.read}`,
      entries_skipped: sql<number>`entries_skipped + ${advance.skipped}`,
      users_changed: sql<number>`users_changed + ${advance.usersChanged}`,
      last_run_id: advance.runId ?? eb.ref('last_run_id'),
      updated_at: advance.now,
    }))
    .where('tenant', '=', tenant)
    .execute();
}

/**
 * How lost history was found (issue #18), as stored in `history_lost_reason`:
 * - `checkpoint_refused`: the logs endpoint refused the stored `from` (400/404);
 * - `empty_past_checkpoint`: it answered nothing after the checkpoint, twice, while the tenant's
 *   newest entry lies past it;
 * - `retention_gap`: the oldest retained entry is dated after the last moment the follower had
 *   read up to, so retention dropped entries it never read.
 */
export type HistoryLostReason = 'checkpoint_refused' | 'empty_past_checkpoint' | 'retention_gap';

/**
 * Start following at `logId` (the tenant's newest entry, so the lag is 0): a first checkpoint,
 * or a restart after history was lost (`lost`: a full pass is due from then on).
 */
export async function restartLogCheckpoint(
  db: Kysely<Database>,
  tenant: string,
  start: { logId: string; lastEntryDate: Date | undefined; now: Date; lost?: HistoryLostReason },
): Promise<void> {
  const values = {
    log_id: start.logId,
    last_entry_date: start.lastEntryDate ?? null,
    newest_log_id: start.logId,
    newest_entry_date: start.lastEntryDate ?? null,
    lag_seconds: start.lastEntryDate ? 0 : null,
    updated_at: start.now,
  };
  const lost = start.lost ? { history_lost_at: start.now, history_lost_reason: start.lost } : {};
  await db
    .insertInto('auth0.log_checkpoint')
    .values({ tenant, ...values, started_at: start.now, ...lost })
    .onConflict((oc) => oc.column('tenant').doUpdateSet({ ...values, ...lost }))
    .execute();
}

/**
 * Record that history was lost although following goes on from the stored checkpoint (the
 * entries read are still applied): a full pass is due from `now`. Idempotent per `now`.
 */
export async function markHistoryLost(db: Kysely<Database>, tenant: string, lost: { reason: HistoryLostReason; now: Date }): Promise<void> {
  await db.updateTable('auth0.log_checkpoint').set({ history_lost_at: lost.now, history_lost_reason: lost.reason }).where('tenant', '=', tenant).execute();
}

/**
 * What the follower learned of the tenant's newest entry at the end of a follow, and the lag
 * measured against it (`newest_entry_date - last_entry_date`, never below 0):
 * `caughtUp` (nothing after the checkpoint) stores the checkpoint itself as the newest, lag 0,
 * so a quiet tenant shows no lag however old its last entry; otherwise `logId` and `date` are
 * the newest entry as `fetchNewestLog` answered. Marks the checkpoint read at `now`.
 */
export async function recordNewestLog(
  db: Kysely<Database>,
  tenant: string,
  seen: { caughtUp: true; date?: Date; now: Date } | { caughtUp: false; logId: string; date: Date | undefined; now: Date },
): Promise<void> {
  const date = seen.date ?? null;
  await db
    .updateTable('auth0.log_checkpoint')
    .set((eb) =>
      seen.caughtUp
        ? {
            newest_log_id: eb.ref('log_id'),
            newest_entry_date: sql<Date | null>`coalesce(last_entry_date, ${date}::timestamptz)`,
            lag_seconds: sql<number | null>`case when coalesce(last_entry_date, ${date}::timestamptz) is null then null else 0 end`,
            updated_at: seen.now,
          }
        : {
            newest_log_id: seen.logId,
            newest_entry_date: date,
            lag_seconds: sql<number | null>`greatest(0, extract(epoch from (${date}::timestamptz - last_entry_date)))`,
            updated_at: seen.now,
          },
    )
    .where('tenant', '=', tenant)
    .execute();
}

/** Owners of the token ids and holders of the session ids, as the warehouse knows them. */
export async function readLogLookups(db: Kysely<Database>, tenant: string, keys: { tokenIds: string[]; sessionIds: string[] }): Promise<LogLookups> {
  const tokenOwners = new Map<string, string>();
  const sessionUsers = new Map<string, string[]>();
  if (keys.tokenIds.length > 0) {
    const rows = await db.selectFrom('auth0.refresh_tokens').select(['id', 'user_id']).where('tenant', '=', tenant).where('id', 'in', keys.tokenIds).execute();
    for (const row of rows) tokenOwners.set(row.id, row.user_id);
  }
  if (keys.sessionIds.length > 0) {
    // Holders of the session's tokens, and its own user where sessions are synced (issue #22): a
    // session without refresh tokens (a web login) is still named by its logout or revocation.
    const rows = await db
      .selectFrom('auth0.refresh_tokens')
      .select(['session_id', 'user_id'])
      .where('tenant', '=', tenant)
      .where('session_id', 'in', keys.sessionIds)
      .union((eb) => eb.selectFrom('auth0.sessions').select(['id as session_id', 'user_id']).where('tenant', '=', tenant).where('id', 'in', keys.sessionIds))
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
export async function addSignedUpUsers(db: Kysely<Database>, tenant: string, source: Config['source'], userIds: string[]): Promise<number> {
  if (userIds.length === 0 || !isDefaultUsersSource(source)) return 0;
  const result = await db
    .insertInto('auth0.users')
    .values(userIds.map((user_id) => ({ tenant, user_id })))
    .onConflict((oc) => oc.columns(['tenant', 'user_id']).doNothing())
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0);
}
