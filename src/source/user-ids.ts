import { sql, type Kysely } from 'kysely';
import type { Config } from '../config.js';
import { FatalError } from '../errors.js';

export interface ReadUserIdsOptions {
  source: Config['source'];
  /** IDs per keyset page. */
  batchSize?: number;
}

/**
 * Every user ID of the source table, in the column's order, streamed with keyset paging
 * (`where id > $last order by id limit n`): memory stays flat however large the table is,
 * and no connection is held between pages. NULL and empty IDs are skipped. The identifiers
 * come validated from loadConfig and are quoted here, never pasted.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function* readUserIds(db: Kysely<any>, options: ReadUserIdsOptions): AsyncGenerator<string> {
  const batchSize = options.batchSize ?? 1000;
  const table = sql.id(...options.source.table);
  const column = sql.id(options.source.column);
  let last: string | undefined;
  for (;;) {
    const after = last === undefined ? sql`${column} is not null` : sql`${column} > ${last}`;
    // distinct: a source column that is not unique must not sync a user twice in one run.
    const { rows } = await sql<{ user_id: string }>`
      select distinct ${column}::text as user_id, ${column} from ${table} where ${after} order by ${column} limit ${batchSize}
    `
      .execute(db)
      .catch(explainSourceError(options.source));
    for (const row of rows) if (row.user_id !== '') yield row.user_id;
    if (rows.length < batchSize) return;
    last = rows.at(-1)!.user_id;
  }
}

/** How many users `readUserIds` will yield (for progress; NULL and empty IDs excluded). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function countUserIds(db: Kysely<any>, source: Config['source']): Promise<number> {
  const column = sql.id(source.column);
  const { rows } = await sql<{ n: number }>`
    select count(distinct ${column})::int as n from ${sql.id(...source.table)} where ${column} is not null and ${column}::text <> ''
  `
    .execute(db)
    .catch(explainSourceError(source));
  return rows[0]?.n ?? 0;
}

/** Missing table or column: one sentence naming the variable to fix (matched by SQLSTATE). */
function explainSourceError(source: Config['source']) {
  return (error: unknown): never => {
    const code = (error as { code?: unknown }).code;
    const table = source.table.join('.');
    if (code === '42P01' || code === '3F000') {
      throw new FatalError('source_missing', `The source table ${table} does not exist; set SOURCE_USERS_TABLE or run \`npm run migrate\`.`);
    }
    if (code === '42703') {
      throw new FatalError('source_missing', `The source table ${table} has no column ${source.column}; set SOURCE_USER_ID_COLUMN.`);
    }
    throw error;
  };
}
