import { sql, type Kysely } from 'kysely';
import type { Database } from './schema.js';

/**
 * Whether the transaction `xid` committed, asked on another connection after the one that
 * sent its COMMIT was lost before the acknowledgement came back (PostgreSQL's `txid_status`):
 * the commit may have landed or not, and only the server knows. False for aborted, in progress
 * or too old to tell.
 */
export async function hasCommitted(db: Kysely<Database>, xid: string): Promise<boolean> {
  const { rows } = await sql<{ status: string | null }>`select txid_status(${xid}::bigint) as status`.execute(db);
  return rows[0]?.status === 'committed';
}
