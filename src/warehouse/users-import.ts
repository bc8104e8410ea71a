import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { Database } from './schema.js';
import type { ExportedUser } from '../core/exported-user.js';
import { invalidUserIdKey } from '../core/user-id.js';

/** What applying the staged export changes (or would change) in auth0.users. */
export interface UsersImportCounts {
  /** Users in the export. */
  exported: number;
  /** Not in auth0.users yet. */
  added: number;
  /** Held, not removed, with a profile field that changed. */
  updated: number;
  /** Held as removed, and back in the export: removed_at is cleared. */
  returned: number;
  /** Held, not removed, in scope, and not in the export: removed_at is set. */
  removed: number;
  /** Users held (not removed) in scope: the deletion guard's denominator. */
  held: number;
  /** Users on more than one line of the export; the last line of each was kept. */
  duplicated: number;
}

export interface UsersImportPreview {
  counts: UsersImportCounts;
  /** Up to `sample` user IDs of each kind, in ID order. */
  added: string[];
  removed: string[];
}

/** Which held users a complete export speaks for: all of them, or one connection's. */
export interface ImportScope {
  /** The connection's name; undefined: every user of auth0.users. */
  connection?: string;
  /**
   * When the export job was requested (the database's clock). A user whose row was inserted
   * after it (`loaded_at`, by the log follower say) or who was created in Auth0 after it is
   * missing from the export for that reason alone, and is never marked removed (issue #18).
   */
  exportRequestedAt?: Date;
  /**
   * True when a line whose user cannot be told (too long, not JSON, no user_id) was skipped:
   * any held user may be on it, so the export speaks for none and nobody is marked removed.
   */
  withholdRemovals?: boolean;
}

export interface UsersStaging {
  /** Forget every staged user (a download starting over). */
  clear(): Promise<void>;
  /**
   * Stage users in file order; a user on several lines, in one batch or across batches, keeps
   * its last line, and is counted as duplicated.
   */
  add(users: readonly ExportedUser[]): Promise<void>;
  /**
   * Note user IDs the export holds but the job refused (checkUserId): never staged, never
   * inserted, and never marked removed for being absent. Stored as invalidUserIdKey.
   */
  refuse(userIds: readonly string[]): Promise<void>;
  /** What `apply` would do, writing nothing. */
  preview(scope: ImportScope, sample?: number): Promise<UsersImportPreview>;
  /**
   * In one transaction: count, let `check` refuse (it throws), then upsert every staged user
   * (clearing removed_at, setting first/last_imported_at) and mark removed the held users in
   * scope that the export no longer holds. All or nothing.
   */
  apply(scope: ImportScope, check: (counts: UsersImportCounts) => void, followFrom?: FollowStart): Promise<UsersImportApplied>;
}

/** The tenant's newest log entry, noted before the export job was requested. */
export interface FollowStart {
  logId: string;
  date: Date | undefined;
}

export interface UsersImportApplied {
  counts: UsersImportCounts;
  /** Whether `followFrom` became the log follower's first checkpoint (there was none). */
  followStarted: boolean;
}

/** The database's own clock: what `auth0.users.loaded_at` is compared with. */
export async function readDatabaseTime(db: Kysely<Database>): Promise<Date> {
  const { rows } = await sql<{ now: Date }>`select clock_timestamp() as now`.execute(db);
  return rows[0]!.now;
}

/**
 * Whether this role may read and start the log follower's checkpoint: an import by a role
 * granted only auth0.users skips the checkpoint rather than failing on it.
 */
export async function mayStartFollowing(db: Kysely<Database>): Promise<boolean> {
  const { rows } = await sql<{ allowed: boolean }>`
    select has_table_privilege('auth0.log_checkpoint', 'SELECT') and has_table_privilege('auth0.log_checkpoint', 'INSERT') as allowed
  `.execute(db);
  return rows[0]?.allowed === true;
}

/**
 * When the log follower has no checkpoint yet, store `start` (the tenant's newest entry when
 * the export was requested) as its first one, so the next follow reads every change since the
 * export began: a user who signs up between the export and the first follow is not missed
 * (issue #24). A checkpoint already stored is left alone. Returns whether it was stored.
 */
async function startFollowingAt(db: Kysely<Database>, tenant: string, start: FollowStart): Promise<boolean> {
  const result = await db
    .insertInto('auth0.log_checkpoint')
    .values({
      tenant,
      log_id: start.logId,
      last_entry_date: start.date ?? null,
      // The tenant's newest entry when noted: the checkpoint is caught up with it (lag 0), as
      // restartLogCheckpoint records a first checkpoint.
      newest_log_id: start.logId,
      newest_entry_date: start.date ?? null,
      lag_seconds: 0,
      updated_at: sql<Date>`now()`,
    })
    .onConflict((oc) => oc.column('tenant').doNothing())
    .executeTakeFirst();
  return Number(result.numInsertedOrUpdatedRows ?? 0) > 0;
}

const STAGING = sql.raw('pg_temp.users_import_staging');
const REFUSED = sql.raw('pg_temp.users_import_refused');

/**
 * Run `fn` with a staging table of its own: a temporary table on one pinned connection (not
 * WAL-logged, dropped afterwards, invisible to other sessions), so a download that breaks half
 * way leaves auth0.users untouched. One connection is held for the whole import. The staged
 * export is the tenant's: it is compared with, and written to, that tenant's users only.
 */
export async function withUsersStaging<T>(db: Kysely<Database>, tenant: string, fn: (staging: UsersStaging) => Promise<T>): Promise<T> {
  return db.connection().execute(async (conn) => {
    await sql`drop table if exists ${STAGING}, ${REFUSED}`.execute(conn);
    // lines: how many lines of the export held the user (duplicates are counted, not refused).
    await sql`create temporary table ${STAGING} (
      user_id text primary key, email text, connection text, created_at timestamptz, last_login timestamptz, blocked boolean,
      lines int not null default 1
    )`.execute(conn);
    await sql`create temporary table ${REFUSED} (user_id text primary key)`.execute(conn);
    try {
      return await fn(createStaging(conn, tenant));
    } finally {
      await sql`drop table if exists ${STAGING}, ${REFUSED}`.execute(conn).catch(() => {});
    }
  });
}

function createStaging(conn: Kysely<Database>, tenant: string): UsersStaging {
  return {
    async clear() {
      await sql`truncate ${STAGING}, ${REFUSED}`.execute(conn);
    },
    async refuse(userIds) {
      if (userIds.length === 0) return;
      const keys = [...new Set(userIds.map(invalidUserIdKey))];
      await sql`insert into ${REFUSED} (user_id) select unnest(${keys}::text[]) on conflict do nothing`.execute(conn);
    },
    async add(batch) {
      if (batch.length === 0) return;
      // One row per user in a batch, its last line: PostgreSQL refuses an insert … on conflict
      // that would touch one row twice (issue #24). The lines it stood on are added up.
      const byId = new Map<string, ExportedUser & { lines: number }>();
      for (const user of batch) byId.set(user.userId, { ...user, lines: (byId.get(user.userId)?.lines ?? 0) + 1 });
      const users = [...byId.values()];
      // One JSON parameter per batch, whatever its size: JSON.stringify is native and leaves less
      // garbage behind than six pg array literals built element by element, and garbage is what
      // sets the import's peak RSS (npm run bench, workload 5).
      await sql`
        insert into ${STAGING} (user_id, email, connection, created_at, last_login, blocked, lines)
        select "userId", email, connection, "createdAt", "lastLogin", blocked, lines
        from json_to_recordset(${JSON.stringify(users)}::json)
          as u("userId" text, email text, connection text, "createdAt" timestamptz, "lastLogin" timestamptz, blocked boolean, lines int)
        on conflict (user_id) do update set email = excluded.email, connection = excluded.connection,
          created_at = excluded.created_at, last_login = excluded.last_login, blocked = excluded.blocked,
          lines = ${STAGING}.lines + excluded.lines
      `.execute(conn);
    },
    async preview(scope, sample = 10) {
      const counts = await countChanges(conn, tenant, scope);
      const added = await sql<{ user_id: string }>`
        select s.user_id from ${STAGING} s where not exists (select 1 from auth0.users u where u.tenant = ${tenant} and u.user_id = s.user_id)
        order by s.user_id limit ${sample}
      `.execute(conn);
      const removed = await sql<{ user_id: string }>`
        select u.user_id from auth0.users u where u.tenant = ${tenant} and ${removable(scope)} order by u.user_id limit ${sample}
      `.execute(conn);
      return { counts, added: added.rows.map((r) => r.user_id), removed: removed.rows.map((r) => r.user_id) };
    },
    apply(scope, check, followFrom) {
      return conn.transaction().execute(async (trx) => {
        const counts = await countChanges(trx, tenant, scope);
        check(counts);
        // One now() for the whole transaction: every row of this import carries the same time.
        await sql`
          insert into auth0.users (tenant, user_id, email, connection, created_at, last_login, blocked, first_imported_at, last_imported_at, removed_at)
          select ${tenant}, user_id, email, connection, created_at, last_login, blocked, now(), now(), null from ${STAGING}
          on conflict (tenant, user_id) do update set email = excluded.email, connection = excluded.connection,
            created_at = excluded.created_at, last_login = excluded.last_login, blocked = excluded.blocked,
            first_imported_at = coalesce(auth0.users.first_imported_at, excluded.first_imported_at),
            last_imported_at = excluded.last_imported_at, removed_at = null
        `.execute(trx);
        await sql`update auth0.users u set removed_at = now() where u.tenant = ${tenant} and ${removable(scope)}`.execute(trx);
        const followStarted = followFrom ? await startFollowingAt(trx, tenant, followFrom) : false;
        return { counts, followStarted };
      });
    },
  };
}

/**
 * Held users in scope, not removed, that the staged export does not hold: none when removals
 * are withheld; never one the job refused, nor one inserted or created after the export job
 * was requested.
 */
function removable(scope: ImportScope): RawBuilder<unknown> {
  if (scope.withholdRemovals) return sql`false`;
  const since = scope.exportRequestedAt;
  const before = since ? sql`u.loaded_at < ${since} and (u.created_at is null or u.created_at < ${since})` : sql`true`;
  return sql`u.removed_at is null and ${inScope(scope)} and ${before}
    and not exists (select 1 from ${STAGING} s where s.user_id = u.user_id)
    and not exists (select 1 from ${REFUSED} r where r.user_id = u.user_id)`;
}

function inScope(scope: ImportScope): RawBuilder<unknown> {
  return scope.connection === undefined ? sql`true` : sql`u.connection = ${scope.connection}`;
}

async function countChanges(db: Kysely<Database>, tenant: string, scope: ImportScope): Promise<UsersImportCounts> {
  const { rows } = await sql<UsersImportCounts>`
    select
      (select count(*) from ${STAGING})::int as exported,
      (select count(*) from ${STAGING} s where not exists (select 1 from auth0.users u where u.tenant = ${tenant} and u.user_id = s.user_id))::int as added,
      (select count(*) from ${STAGING} s join auth0.users u using (user_id)
        where u.tenant = ${tenant} and u.removed_at is null
          and (u.email, u.connection, u.created_at, u.last_login, u.blocked) is distinct from (s.email, s.connection, s.created_at, s.last_login, s.blocked))::int as updated,
      (select count(*) from ${STAGING} s join auth0.users u using (user_id) where u.tenant = ${tenant} and u.removed_at is not null)::int as returned,
      (select count(*) from auth0.users u where u.tenant = ${tenant} and ${removable(scope)})::int as removed,
      (select count(*) from auth0.users u where u.tenant = ${tenant} and u.removed_at is null and ${inScope(scope)})::int as held,
      (select count(*) from ${STAGING} where lines > 1)::int as duplicated
  `.execute(db);
  return rows[0]!;
}
