import { sql, type Kysely, type RawBuilder } from 'kysely';
import { formatName, isDefaultUsersSource, type Config } from '../core/config.js';
import type { Database } from '../warehouse/schema.js';
import { FatalError } from '../core/errors.js';
import { MISSING_OBJECT, sqlState } from '../warehouse/pg-errors.js';

/**
 * Where a tenant's user IDs come from (issue #23): its source table, and its name. The default
 * table, auth0.users, holds every tenant's users and is read for `tenant`'s rows only; a custom
 * SOURCE_USERS_TABLE (each tenant names its own) is read as it is.
 */
export interface UserSource {
  tenant: string;
  source: Config['source'];
}

export interface ReadUserIdsOptions extends UserSource {
  /**
   * Only users without a successful sync since this time; `'ever'`: only users never synced
   * successfully. Undefined: every user.
   */
  notSyncedSince?: Date | 'ever';
  /** IDs per keyset page. */
  batchSize?: number;
}

/**
 * Pull rows page by page, each page starting after the last row of the one before (keyset
 * paging: `where key > $last order by key limit n`). Memory stays flat however large the
 * table, and no connection is held between pages.
 */
async function* keyset<R>(batchSize: number, page: (after: R | undefined) => Promise<R[]>): AsyncGenerator<R> {
  let after: R | undefined;
  for (;;) {
    const rows = await page(after);
    yield* rows;
    if (rows.length < batchSize) return;
    after = rows.at(-1);
  }
}

/** `not exists` a successful sync of the tenant's source row `s` since `since`. */
function notSyncedFilter(tenant: string, column: RawBuilder<unknown>, since: ReadUserIdsOptions['notSyncedSince']): RawBuilder<unknown> {
  if (since === undefined) return sql`true`;
  const recent = since === 'ever' ? sql`st.last_success_at is not null` : sql`st.last_success_at >= ${since}`;
  return sql`not exists (select 1 from auth0.user_sync_state st where st.tenant = ${tenant} and st.user_id = s.${column}::text and ${recent})`;
}

/**
 * Users `npm run import-users` marked removed (a complete export no longer holds them) are not
 * synced by passes over the source. Only for the default source, auth0.users, whose columns
 * the migrations own; any other table is read whole.
 */
function notRemoved(source: Config['source'], alias = 's'): RawBuilder<unknown> {
  return isDefaultUsersSource(source) ? sql`${sql.ref(`${alias}.removed_at`)} is null` : sql`true`;
}

/**
 * The tenant's rows of the source (issue #23): auth0.users holds every tenant's users, so only
 * `tenant`'s are read (and never those marked removed); any other table is the tenant's own,
 * read whole.
 */
export function ofTenant({ tenant, source }: UserSource, alias = 's'): RawBuilder<unknown> {
  return isDefaultUsersSource(source) ? sql`${sql.ref(`${alias}.tenant`)} = ${tenant} and ${notRemoved(source, alias)}` : sql`true`;
}

/**
 * Every user ID of the source table (optionally only those not synced since a time; never those
 * marked removed in auth0.users), in the
 * column's order, streamed with keyset paging. NULL and empty IDs are skipped; a column that
 * is not unique yields each ID once. The identifiers come validated from loadConfig (any
 * PostgreSQL name) and are quoted here with sql.id, never pasted.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function* readUserIds(db: Kysely<any>, options: ReadUserIdsOptions): AsyncGenerator<string> {
  const batchSize = options.batchSize ?? 1000;
  const table = sql.id(...options.source.table);
  const column = sql.id(options.source.column);
  const filter = notSyncedFilter(options.tenant, column, options.notSyncedSince);
  const rows = keyset<{ user_id: string }>(batchSize, async (after) => {
    const from = after === undefined ? sql`s.${column} is not null` : sql`s.${column} > ${after.user_id}`;
    const result = await sql<{ user_id: string }>`
      select distinct s.${column}::text as user_id, s.${column} from ${table} s
      where ${from} and ${filter} and ${ofTenant(options)} order by s.${column} limit ${batchSize}
    `
      .execute(db)
      .catch(explainSourceError(options.source));
    return result.rows;
  });
  for await (const row of rows) if (row.user_id !== '') yield row.user_id;
}

/**
 * Source users that have synced successfully before `before`, least recently synced first:
 * the second half of a stalest-first run (the first half being users never synced).
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function* readUserIdsByStaleness(db: Kysely<any>, users: UserSource, before: Date, batchSize = 1000): AsyncGenerator<string> {
  const { tenant, source } = users;
  const table = sql.id(...source.table);
  const column = sql.id(source.column);
  // The cursor stays text: a JavaScript Date keeps milliseconds, now() has microseconds, and a
  // rounded cursor would return the last row of every page again.
  const rows = keyset<{ user_id: string; cursor: string }>(batchSize, async (after) => {
    const from = after === undefined ? sql`true` : sql`(st.last_success_at, st.user_id) > (${after.cursor}::timestamptz, ${after.user_id})`;
    const result = await sql<{ user_id: string; cursor: string }>`
      select st.user_id, st.last_success_at::text as cursor from auth0.user_sync_state st
      where st.tenant = ${tenant} and st.last_success_at < ${before} and ${from}
        and exists (select 1 from ${table} s where s.${column}::text = st.user_id and ${ofTenant(users)})
      order by st.last_success_at, st.user_id limit ${batchSize}
    `
      .execute(db)
      .catch(explainSourceError(source));
    return result.rows;
  });
  for await (const row of rows) yield row.user_id;
}

/** The tenant's users whose last sync failed (`--only-failed`), from user_sync_state, in ID order. */
export async function* readFailedUserIds(db: Kysely<Database>, tenant: string, batchSize = 1000): AsyncGenerator<string> {
  const rows = keyset<{ user_id: string }>(batchSize, (after) => {
    let page = db.selectFrom('auth0.user_sync_state').select('user_id').where('tenant', '=', tenant).where('status', '=', 'failed');
    if (after !== undefined) page = page.where('user_id', '>', after.user_id);
    return page.orderBy('user_id').limit(batchSize).execute();
  });
  for await (const row of rows) yield row.user_id;
}

/** How many users `readFailedUserIds` will yield: the tenant's users whose last sync failed. */
export async function countFailedUsers(db: Kysely<Database>, tenant: string): Promise<number> {
  const { n } = await db
    .selectFrom('auth0.user_sync_state')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('tenant', '=', tenant)
    .where('status', '=', 'failed')
    .executeTakeFirstOrThrow();
  return n;
}

/** How many users `readUserIds` will yield with the same options (for progress). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function countUserIds(db: Kysely<any>, users: UserSource, notSyncedSince?: ReadUserIdsOptions['notSyncedSince']): Promise<number> {
  const { tenant, source } = users;
  const column = sql.id(source.column);
  const { rows } = await sql<{ n: number }>`
    select count(distinct s.${column})::int as n from ${sql.id(...source.table)} s
    where s.${column} is not null and s.${column}::text <> '' and ${notSyncedFilter(tenant, column, notSyncedSince)} and ${ofTenant(users)}
  `
    .execute(db)
    .catch(explainSourceError(source));
  return rows[0]?.n ?? 0;
}

/** Missing table or column: one sentence naming the variable to fix (matched by SQLSTATE). */
function explainSourceError(source: Config['source']) {
  return (error: unknown): never => {
    const code = sqlState(error);
    const table = formatName(source.table);
    if (code === '42703') {
      throw new FatalError('source_missing', `The source table ${table} has no column ${formatName([source.column])}; set SOURCE_USER_ID_COLUMN.`);
    }
    if (code !== undefined && MISSING_OBJECT.has(code)) {
      throw new FatalError('source_missing', `The source table ${table} does not exist; set SOURCE_USERS_TABLE or run \`npm run migrate\`.`);
    }
    throw error;
  };
}
