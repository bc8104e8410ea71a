import { sql, type Kysely } from 'kysely';
import { fieldsOf, fromExcluded, now, rowDiffers, unnest, type ArrayType } from './upsert-sql.js';
import type { Database, DeletionReason } from './schema.js';
import { toSafeText } from '../core/upstream-text.js';
import type { ChangeRecord, DeviceRecord, StoredToken, TokenRecord, UserOutcome, WritePlan } from './model.js';

/**
 * The stored tokens of these users (live and deleted), and any stored token with one of
 * `tokenIds` whoever owns it, with their device's last location: what planWrites compares a
 * batch's listings with (a token listed for one user but stored for another is an anomaly).
 */
export async function readStoredTokens(
  db: Kysely<Database>,
  tenant: string,
  userIds: readonly string[],
  tokenIds: readonly string[] = [],
): Promise<StoredToken[]> {
  if (userIds.length === 0) return [];
  return await db
    .selectFrom('auth0.refresh_tokens as t')
    // Lateral: one index probe per token. A plain left join let the planner hash the whole
    // devices table once it had statistics, and every batch got slower as the table grew.
    .leftJoinLateral(
      (eb) => eb.selectFrom('auth0.refresh_token_devices').selectAll().whereRef('tenant', '=', 't.tenant').whereRef('token_id', '=', 't.id').as('d'),
      (join) => join.onTrue(),
    )
    .select((eb) => [
      't.id',
      't.user_id',
      't.deleted_at',
      't.last_exchanged_at',
      't.raw',
      eb('d.token_id', 'is not', null).$castTo<boolean>().as('has_device'),
      'd.last_ip',
      'd.last_asn',
      'd.last_user_agent',
    ])
    .where('t.tenant', '=', tenant)
    .where((eb) => eb.or([eb('t.user_id', '=', eb.fn.any(eb.val(userIds))), eb('t.id', '=', eb.fn.any(eb.val(tokenIds)))]))
    .execute();
}

/**
 * Apply a batch's plan in one statement, so every user in it is all-or-nothing:
 * upsert the planned tokens (new, changed or restored: first_seen_* kept, last_changed_* moved,
 * deleted_at cleared for a token that came back), bring their device and resource-server rows
 * in line with the listing, mark deleted the live tokens the listings no longer hold, append the
 * change history, and upsert user_sync_state for every user (a failed user keeps last_success_at
 * and token_count). Rows are written only where their content differs (issue #14): replaying the
 * same outcomes writes nothing but the users' attempt times, and a listed token that did not
 * change keeps its row version (its last-seen time is its user's last_success_at).
 *
 * Set-based: each table in its own data-modifying CTE, its rows from arrays through `unnest`
 * (one parameter per column: a `values` list of 10,000 rows would pass PostgreSQL's 65,535
 * parameters). The CTEs touch disjoint rows (listed vs deleted tokens, devices kept vs dropped),
 * and foreign keys are checked at the end of the statement, when the new tokens exist. One round
 * trip per batch matters: the writer shares its event loop with many fetches.
 *
 * Returns the id of the transaction the statement ran in (`txid_current()`, in the same round
 * trip): if the COMMIT's acknowledgement is lost, `hasCommitted` asks whether it landed.
 */
export async function applyWritePlan(db: Kysely<Database>, tenant: string, runId: number, plan: WritePlan, outcomes: readonly UserOutcome[]): Promise<string> {
  const { tokens, devices, resourceServers: servers, changes } = plan;
  const tokenIds = tokens.map((token) => token.id);
  const deviceIds = devices.map((device) => device.token_id);
  const { xid } = await db
    .with('upserted_tokens', (db) =>
      db
        .insertInto('auth0.refresh_tokens')
        .columns(['tenant', 'id', ...TOKEN_FIELDS, 'first_seen_at', 'last_changed_at', 'first_seen_run_id', 'last_changed_run_id'])
        .expression((eb) =>
          eb
            .selectFrom(unnest(tokens, TOKEN_TYPES))
            .select([
              eb.val(tenant).as('tenant'),
              'id',
              ...TOKEN_FIELDS,
              now.as('first_seen_at'),
              now.as('last_changed_at'),
              eb.val(runId).as('first_seen_run_id'),
              eb.val(runId).as('last_changed_run_id'),
            ]),
        )
        .onConflict((oc) =>
          oc
            .columns(['tenant', 'id'])
            .doUpdateSet({ ...fromExcluded([...TOKEN_FIELDS, 'last_changed_at', 'last_changed_run_id']), deleted_at: null })
            // The planner sends only changed tokens; this guard keeps a replayed plan from rewriting them.
            .where((eb) => eb.or([rowDiffers('auth0.refresh_tokens', TOKEN_FIELDS), eb('auth0.refresh_tokens.deleted_at', 'is not', null)])),
        ),
    )
    // A device row only where the latest listing gave a device. Only the planned (changed)
    // tokens are looked at: an unchanged token's raw, and so its device, is as stored.
    .with('dropped_devices', (db) =>
      db
        .deleteFrom('auth0.refresh_token_devices')
        .where('tenant', '=', tenant)
        .where((eb) => eb('token_id', '=', eb.fn.any(eb.val(tokenIds))))
        .where((eb) => eb.not(eb('token_id', '=', eb.fn.any(eb.val(deviceIds))))),
    )
    .with('upserted_devices', (db) =>
      db
        .insertInto('auth0.refresh_token_devices')
        .columns(['tenant', 'token_id', ...DEVICE_FIELDS])
        .expression((eb) => eb.selectFrom(unnest(devices, DEVICE_TYPES)).select([eb.val(tenant).as('tenant'), 'token_id', ...DEVICE_FIELDS]))
        .onConflict((oc) =>
          oc.columns(['tenant', 'token_id']).doUpdateSet(fromExcluded(DEVICE_FIELDS)).where(rowDiffers('auth0.refresh_token_devices', DEVICE_FIELDS)),
        ),
    )
    .with('listed_servers', (db) => db.selectFrom(unnest(servers, { token_id: 'text', audience: 'text', scopes: 'text' })).selectAll())
    .with('dropped_servers', (db) =>
      db
        .deleteFrom('auth0.refresh_token_resource_servers')
        .where('tenant', '=', tenant)
        .where((eb) => eb('token_id', '=', eb.fn.any(eb.val(tokenIds))))
        .where((eb) =>
          eb.not(
            eb.exists(
              eb
                .selectFrom('listed_servers as s')
                .select(eb.lit(1).as('one'))
                .whereRef('s.token_id', '=', 'auth0.refresh_token_resource_servers.token_id')
                .whereRef('s.audience', '=', 'auth0.refresh_token_resource_servers.audience'),
            ),
          ),
        ),
    )
    .with('upserted_servers', (db) =>
      db
        .insertInto('auth0.refresh_token_resource_servers')
        .columns(['tenant', 'token_id', 'audience', 'scopes'])
        .expression((eb) => eb.selectFrom('listed_servers').select([eb.val(tenant).as('tenant'), 'token_id', 'audience', 'scopes']))
        .onConflict((oc) =>
          oc
            .columns(['tenant', 'token_id', 'audience'])
            .doUpdateSet(fromExcluded(['scopes']))
            .where(rowDiffers('auth0.refresh_token_resource_servers', ['scopes'])),
        ),
    )
    .with('deleted_tokens', (db) =>
      db
        .updateTable('auth0.refresh_tokens')
        .set((eb) => ({ deleted_at: now, last_changed_at: now, last_changed_run_id: eb.val(runId) }))
        .where('tenant', '=', tenant)
        .where((eb) => eb('id', '=', eb.fn.any(eb.val(plan.deletedIds))))
        .where('deleted_at', 'is', null),
    )
    .with('history', (db) =>
      db
        .insertInto('auth0.refresh_token_changes')
        .columns(['tenant', 'token_id', 'user_id', 'change', 'old_value', 'new_value', 'reason', 'reason_log_id', 'reason_client_id', 'run_id'])
        .expression((eb) =>
          eb
            .selectFrom(unnest(changes.map(toChangeRow), CHANGE_TYPES))
            .select([
              eb.val(tenant).as('tenant'),
              'token_id',
              'user_id',
              'change',
              'old_value',
              'new_value',
              'reason',
              'reason_log_id',
              'reason_client_id',
              eb.val(runId).as('run_id'),
            ]),
        ),
    )
    // What the tenant said about its users (issue #18): removed once a listing confirms the
    // deletion, in the same statement that marks their tokens deleted; alive again otherwise.
    .with('removed_users', (db) =>
      db
        .updateTable('auth0.users')
        .set({ removed_at: now })
        .where('tenant', '=', tenant)
        .where((eb) => eb('user_id', '=', eb.fn.any(eb.val(plan.removedUsers))))
        .where('removed_at', 'is', null),
    )
    .with('revived_users', (db) =>
      db
        .updateTable('auth0.users')
        .set({ removed_at: null })
        .where('tenant', '=', tenant)
        .where((eb) => eb('user_id', '=', eb.fn.any(eb.val(plan.revivedUsers))))
        .where('removed_at', 'is not', null),
    )
    .with('user_state', (db) =>
      db
        .insertInto('auth0.user_sync_state')
        .columns(['tenant', 'user_id', 'status', 'last_attempt_at', 'last_success_at', 'last_run_id', 'token_count', 'error_code', 'error'])
        .expression((eb) =>
          eb
            .selectFrom(unnest(outcomes.map(toUserState), { user_id: 'text', status: 'text', token_count: 'int', error_code: 'text', error: 'text' }))
            .select((eb) => [
              eb.val(tenant).as('tenant'),
              'user_id',
              'status',
              now.as('last_attempt_at'),
              eb.case().when('status', '<>', 'failed').then(now).end().as('last_success_at'),
              eb.val(runId).as('last_run_id'),
              'token_count',
              'error_code',
              'error',
            ]),
        )
        .onConflict((oc) =>
          oc.columns(['tenant', 'user_id']).doUpdateSet((eb) => ({
            ...fromExcluded(['status', 'last_attempt_at', 'last_run_id', 'error_code', 'error']),
            last_success_at: eb.fn.coalesce('excluded.last_success_at', 'auth0.user_sync_state.last_success_at'),
            token_count: eb.fn.coalesce('excluded.token_count', 'auth0.user_sync_state.token_count'),
          })),
        ),
    )
    .selectNoFrom(sql<string>`txid_current()::text`.as('xid'))
    .executeTakeFirstOrThrow();
  return xid;
}

/**
 * Tokens marked deleted since `since`, by reason (issue #22); deletions recorded before reasons
 * were count under `unrecorded`. Reasons with none are left out. What `status` and the worker's
 * metrics show; the `unexplained` ones are what the deletion guard watches. One tenant's, or
 * every tenant's when `tenant` is undefined.
 */
export async function readDeletionsByReason(
  db: Kysely<Database>,
  since: Date,
  tenant?: string,
): Promise<Partial<Record<DeletionReason | 'unrecorded', number>>> {
  const rows = await db
    .selectFrom('auth0.refresh_token_changes')
    .select((eb) => [eb.fn.coalesce('reason', sql<string>`'unrecorded'`).as('reason'), eb.fn.countAll<number>().as('n')])
    .$if(tenant !== undefined, (qb) => qb.where('tenant', '=', tenant!))
    .where('change', '=', 'deleted')
    .where('observed_at', '>', since)
    .groupBy('reason')
    .orderBy('reason')
    .execute();
  return Object.fromEntries(rows.map((row) => [row.reason, Number(row.n)]));
}

/**
 * Refresh the planner's statistics of the tables the writer looks rows up in. A warehouse
 * filled for the first time outgrows its statistics faster than autovacuum re-analyzes it;
 * tables analyzed while empty made PostgreSQL plan sequential scans for every keyed lookup and
 * a first sync of 100,000 users ran 2.3 times slower. Failure (say, a role that does not own
 * the tables) only costs speed, so it is ignored.
 */
export async function refreshStatistics(db: Kysely<Database>): Promise<void> {
  await sql`analyze auth0.refresh_tokens, auth0.refresh_token_devices, auth0.refresh_token_resource_servers, auth0.user_sync_state`.execute(db).catch(() => {});
}

/** Each column of a token record and its type in the `unnest` source (every column, or tsc says so). */
const TOKEN_TYPES = {
  id: 'text',
  user_id: 'text',
  client_id: 'text',
  session_id: 'text',
  rotating: 'bool',
  created_at: 'timestamptz',
  idle_expires_at: 'timestamptz',
  expires_at: 'timestamptz',
  last_exchanged_at: 'timestamptz',
  metadata: 'jsonb',
  raw: 'jsonb',
} as const satisfies Record<keyof TokenRecord, ArrayType>;
const DEVICE_TYPES = {
  token_id: 'text',
  initial_ip: 'text',
  initial_asn: 'text',
  initial_user_agent: 'text',
  last_ip: 'text',
  last_asn: 'text',
  last_user_agent: 'text',
} as const satisfies Record<keyof DeviceRecord, ArrayType>;
/** A change row as written: only deletions carry a reason (issue #22), the others nulls. */
type ChangeRow = Required<{ [K in keyof ChangeRecord]: Exclude<ChangeRecord[K], undefined> | null }>;
const CHANGE_TYPES = {
  token_id: 'text',
  user_id: 'text',
  change: 'text',
  old_value: 'text',
  new_value: 'text',
  reason: 'text',
  reason_log_id: 'text',
  reason_client_id: 'text',
} as const satisfies Record<keyof ChangeRow, ArrayType>;

function toChangeRow(change: ChangeRecord): ChangeRow {
  const deleted = change.change === 'deleted';
  return {
    ...change,
    reason: deleted ? (change.reason ?? null) : null,
    reason_log_id: deleted ? (change.reason_log_id ?? null) : null,
    reason_client_id: deleted ? (change.reason_client_id ?? null) : null,
  };
}

/** The columns an upsert writes besides the row's key. */
const TOKEN_FIELDS = fieldsOf(TOKEN_TYPES, 'id');
const DEVICE_FIELDS = fieldsOf(DEVICE_TYPES, 'token_id');

interface UserStateRecord {
  user_id: string;
  status: UserOutcome['status'];
  token_count: number | null;
  error_code: string | null;
  error: string | null;
}

/** A failed user keeps its token count (null here); its error is upstream text, made safe. */
function toUserState(outcome: UserOutcome): UserStateRecord {
  const failed = outcome.status === 'failed';
  return {
    user_id: outcome.userId,
    status: outcome.status,
    token_count: outcome.status === 'synced' ? outcome.records.tokens.length : outcome.status === 'not_found' ? 0 : null,
    error_code: failed ? outcome.code : null,
    error: failed ? toSafeText(outcome.message) : null,
  };
}
