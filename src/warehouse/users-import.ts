import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { Database, ExportedUser } from '../database.js';

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
}

export interface UsersStaging {
  /** Forget every staged user (a download starting over). */
  clear(): Promise<void>;
  /** Stage users; a user staged twice keeps its last line. */
  add(users: readonly ExportedUser[]): Promise<void>;
  /** What `apply` would do, writing nothing. */
  preview(scope: ImportScope, sample?: number): Promise<UsersImportPreview>;
  /**
   * In one transaction: count, let `check` refuse (it throws), then upsert every staged user
   * (clearing removed_at, setting first/last_imported_at) and mark removed the held users in
   * scope that the export no longer holds. All or nothing.
   */
  apply(scope: ImportScope, check: (counts: UsersImportCounts) => void): Promise<UsersImportCounts>;
}

const STAGING = sql.raw('pg_temp.users_import_staging');

/**
 * Run `fn` with a staging table of its own: a temporary table on one pinned connection (not
 * WAL-logged, dropped afterwards, invisible to other sessions), so a download that breaks half
 * way leaves auth0.users untouched. One connection is held for the whole import.
 */
export async function withUsersStaging<T>(db: Kysely<Database>, fn: (staging: UsersStaging) => Promise<T>): Promise<T> {
  return db.connection().execute(async (conn) => {
    await sql`drop table if exists ${STAGING}`.execute(conn);
    await sql`create temporary table ${STAGING} (
      user_id text primary key, email text, connection text, created_at timestamptz, last_login timestamptz, blocked boolean
    )`.execute(conn);
    try {
      return await fn(createStaging(conn));
    } finally {
      await sql`drop table if exists ${STAGING}`.execute(conn).catch(() => {});
    }
  });
}

function createStaging(conn: Kysely<Database>): UsersStaging {
  return {
    async clear() {
      await sql`truncate ${STAGING}`.execute(conn);
    },
    async add(users) {
      if (users.length === 0) return;
      // One JSON parameter per batch, whatever its size: JSON.stringify is native and leaves less
      // garbage behind than six pg array literals built element by element, and garbage is what
      // sets the import's peak RSS (npm run bench, workload 5).
      await sql`
        insert into ${STAGING} (user_id, email, connection, created_at, last_login, blocked)
        select "userId", email, connection, "createdAt", "lastLogin", blocked
        from json_to_recordset(${JSON.stringify(users)}::json)
          as u("userId" text, email text, connection text, "createdAt" timestamptz, "lastLogin" timestamptz, blocked boolean)
        on conflict (user_id) do update set email = excluded.email, connection = excluded.connection,
          created_at = excluded.created_at, last_login = excluded.last_login, blocked = excluded.blocked
      `.execute(conn);
    },
    async preview(scope, sample = 10) {
      const counts = await countChanges(conn, scope);
      const added = await sql<{ user_id: string }>`
        select s.user_id from ${STAGING} s where not exists (select 1 from auth0.users u where u.user_id = s.user_id)
        order by s.user_id limit ${sample}
      `.execute(conn);
      const removed = await sql<{ user_id: string }>`
        select u.user_id from auth0.users u where ${removable(scope)} order by u.user_id limit ${sample}
      `.execute(conn);
      return { counts, added: added.rows.map((r) => r.user_id), removed: removed.rows.map((r) => r.user_id) };
    },
    apply(scope, check) {
      return conn.transaction().execute(async (trx) => {
        const counts = await countChanges(trx, scope);
        check(counts);
        // One now() for the whole transaction: every row of this import carries the same time.
        await sql`
          insert into auth0.users (user_id, email, connection, created_at, last_login, blocked, first_imported_at, last_imported_at, removed_at)
          select user_id, email, connection, created_at, last_login, blocked, now(), now(), null from ${STAGING}
          on conflict (user_id) do update set email = excluded.email, connection = excluded.connection,
            created_at = excluded.created_at, last_login = excluded.last_login, blocked = excluded.blocked,
            first_imported_at = coalesce(auth0.users.first_imported_at, excluded.first_imported_at),
            last_imported_at = excluded.last_imported_at, removed_at = null
        `.execute(trx);
        await sql`update auth0.users u set removed_at = now() where ${removable(scope)}`.execute(trx);
        return counts;
      });
    },
  };
}

/** Held users in scope, not removed, that the staged export does not hold. */
function removable(scope: ImportScope): RawBuilder<unknown> {
  return sql`u.removed_at is null and ${inScope(scope)} and not exists (select 1 from ${STAGING} s where s.user_id = u.user_id)`;
}

function inScope(scope: ImportScope): RawBuilder<unknown> {
  return scope.connection === undefined ? sql`true` : sql`u.connection = ${scope.connection}`;
}

async function countChanges(db: Kysely<Database>, scope: ImportScope): Promise<UsersImportCounts> {
  const { rows } = await sql<UsersImportCounts>`
    select
      (select count(*) from ${STAGING})::int as exported,
      (select count(*) from ${STAGING} s where not exists (select 1 from auth0.users u where u.user_id = s.user_id))::int as added,
      (select count(*) from ${STAGING} s join auth0.users u using (user_id)
        where u.removed_at is null
          and (u.email, u.connection, u.created_at, u.last_login, u.blocked) is distinct from (s.email, s.connection, s.created_at, s.last_login, s.blocked))::int as updated,
      (select count(*) from ${STAGING} s join auth0.users u using (user_id) where u.removed_at is not null)::int as returned,
      (select count(*) from auth0.users u where ${removable(scope)})::int as removed,
      (select count(*) from auth0.users u where u.removed_at is null and ${inScope(scope)})::int as held
  `.execute(db);
  return rows[0]!;
}
