/**
 * The SQL pieces the batch writers share (refresh-tokens.ts, sessions.ts): rows sent as one array
 * parameter per column (`unnest`), and the upsert that rewrites a row only when it changed.
 */
import { sql, type AliasedRawBuilder, type Kysely, type RawBuilder, type SqlBool } from 'kysely';
import type { Database } from './schema.js';

/** The element type of an array parameter of `unnest`. */
export type ArrayType = 'text' | 'bool' | 'int' | 'timestamptz' | 'jsonb' | 'inet';

/** The statement's time: every row one statement writes gets the same. */
export const now = sql<Date>`now()`;

/** The columns an upsert writes besides the row's key. */

export function fieldsOf<C extends string, K extends C>(types: Record<C, ArrayType>, key: K): Exclude<C, K>[] {
  return (Object.keys(types) as C[]).filter((column): column is Exclude<C, K> => column !== key);
}

/**
 * `unnest($1::text[], $2::bool[], …) as u(a, b, …)`: `rows` as a table, one array parameter per
 * column (in the order of `types`), cast to the given element type.
 */
export function unnest<Row, K extends keyof Row & string>(rows: readonly Row[], types: Record<K, ArrayType>): AliasedRawBuilder<Pick<Row, K>, 'u'> {
  const columns = Object.keys(types) as K[];
  const arrays = columns.map((column) => sql`${rows.map((row) => row[column])}::${sql.raw(types[column])}[]`);
  return sql<Pick<Row, K>>`unnest(${sql.join(arrays)})`.as<'u'>(sql`u(${sql.join(columns.map((column) => sql.ref(column)))})`);
}

/**
 * `column = excluded.column` for each column: an upsert's update takes the proposed row. Typed
 * `never` so it fits every column's type: the value is the column's own, from the same table.
 */
export function fromExcluded<C extends string>(columns: readonly C[]): Record<C, RawBuilder<never>> {
  return Object.fromEntries(columns.map((column) => [column, sql.ref(`excluded.${column}`)])) as Record<C, RawBuilder<never>>;
}

/** `(table.a, table.b, …) is distinct from (excluded.a, excluded.b, …)`: the upsert would change the stored row. */
export function rowDiffers(table: keyof Database, columns: readonly string[]): RawBuilder<SqlBool> {
  const row = (source: string) => sql.join(columns.map((column) => sql.ref(`${source}.${column}`)));
  return sql<SqlBool>`(${row(table)}) is distinct from (${row('excluded')})`;
}

/** The tenant's rows of `table` not marked deleted: the deletion guard's measure of what the warehouse holds live. */
export async function countLive(db: Kysely<Database>, tenant: string, table: 'auth0.refresh_tokens' | 'auth0.sessions'): Promise<number> {
  const row = await db
    .selectFrom(table)
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where('tenant', '=', tenant)
    .where('deleted_at', 'is', null)
    .executeTakeFirstOrThrow();
  return Number(row.n);
}
