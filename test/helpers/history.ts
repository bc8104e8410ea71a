import { sql, type Kysely } from 'kysely';
import type { Database, RefreshTokenAsOfRow, TokenChange } from '../../src/warehouse/schema.js';
import { TEST_TENANT } from './db.js';

export const HOUR = 3_600_000;
export const DAY = 24 * HOUR;

/** A moment `offset` ms from `now` (negative: in the past). */
export const atFrom = (now: number) => (offset: number) => new Date(now + offset);

/** A token row written directly: live, far from expiry, unless the fixture says otherwise. */
export async function insertToken(
  db: Kysely<Database>,
  token: {
    id: string;
    user_id?: string;
    client_id?: string;
    first_seen_at: Date;
    deleted_at?: Date | null;
    expires_at?: Date | null;
    idle_expires_at?: Date | null;
    first_seen_run_id?: number | null;
    last_changed_run_id?: number | null;
  },
): Promise<void> {
  await db
    .insertInto('auth0.refresh_tokens')
    .values({
      tenant: TEST_TENANT,
      user_id: `u-${token.id}`,
      client_id: 'app',
      raw: JSON.stringify({ id: token.id }),
      last_changed_at: token.deleted_at ?? token.first_seen_at,
      expires_at: new Date(Date.now() + 90 * DAY),
      ...token,
    })
    .execute();
}

/** A change-history row observed at `at`. */
export async function insertChange(
  db: Kysely<Database>,
  tokenId: string,
  change: TokenChange,
  at: Date,
  extra: { old_value?: string; new_value?: string; run_id?: number } = {},
): Promise<void> {
  await db
    .insertInto('auth0.refresh_token_changes')
    .values({ tenant: TEST_TENANT, token_id: tokenId, user_id: `u-${tokenId}`, change, observed_at: at, ...extra })
    .execute();
}

/** The ids `auth0.refresh_tokens_as_of(at)` returns, sorted. */
export async function liveAt(db: Kysely<Database>, at: Date): Promise<string[]> {
  const rows = await db
    .selectFrom(sql<RefreshTokenAsOfRow>`auth0.refresh_tokens_as_of(${at})`.as('t'))
    .select('id')
    .orderBy('id')
    .execute();
  return rows.map((r) => r.id);
}
