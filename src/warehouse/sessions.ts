import { sql, type Kysely } from 'kysely';
import { fieldsOf, fromExcluded, now, rowDiffers, unnest, type ArrayType } from './upsert-sql.js';
import type { Database } from './schema.js';
import type { SessionRecord, SessionWritePlan, StoredSession } from './model.js';

/**
 * The stored sessions of these users (live and deleted), and any stored session with one of
 * `sessionIds` whoever owns it: what planSessionWrites compares a batch's listings with.
 */
export async function readStoredSessions(
  db: Kysely<Database>,
  tenant: string,
  userIds: readonly string[],
  sessionIds: readonly string[] = [],
): Promise<StoredSession[]> {
  if (userIds.length === 0) return [];
  return await db
    .selectFrom('auth0.sessions')
    .select([
      'id',
      'user_id',
      'deleted_at',
      'raw',
      'authenticated_at',
      'last_interacted_at',
      'last_ip',
      'last_asn',
      'last_user_agent',
      'client_ids',
      'authentication_methods',
    ])
    .where('tenant', '=', tenant)
    .where((eb) => eb.or([eb('user_id', '=', eb.fn.any(eb.val(userIds))), eb('id', '=', eb.fn.any(eb.val(sessionIds)))]))
    .execute();
}

/**
 * Apply a batch's session plan in one statement, inside the batch's transaction (after
 * applyWritePlan, so the users' state rows exist): upsert the planned sessions (first_seen_*
 * kept, last_changed_* moved, deleted_at cleared for a session that came back; a replayed plan
 * rewrites nothing), mark deleted the live sessions the listings no longer hold, append the
 * history, and move `user_sync_state.sessions_synced_at` for the users whose sessions were listed.
 */
export async function applySessionPlan(db: Kysely<Database>, tenant: string, runId: number, plan: SessionWritePlan): Promise<void> {
  if (plan.listedUsers.length === 0 && plan.sessions.length === 0 && plan.deletedIds.length === 0) return;
  await db
    .with('upserted', (db) =>
      db
        .insertInto('auth0.sessions')
        .columns(['tenant', 'id', ...SESSION_FIELDS, 'first_seen_at', 'last_changed_at', 'first_seen_run_id', 'last_changed_run_id'])
        .expression((eb) =>
          eb.selectFrom(unnest(plan.sessions.map(toRow), SESSION_TYPES)).select((eb) => [
            eb.val(tenant).as('tenant'),
            'id',
            // A text[] column cannot pass through unnest (it would flatten): sent as JSON.
            ...SESSION_FIELDS.map((field) =>
              field === 'client_ids' ? sql<string[]>`array(select jsonb_array_elements_text(u.client_ids))`.as('client_ids') : field,
            ),
            now.as('first_seen_at'),
            now.as('last_changed_at'),
            eb.val(runId).as('first_seen_run_id'),
            eb.val(runId).as('last_changed_run_id'),
          ]),
        )
        .onConflict((oc) =>
          oc
            .columns(['tenant', 'id'])
            .doUpdateSet({ ...fromExcluded([...SESSION_FIELDS, 'last_changed_at', 'last_changed_run_id']), deleted_at: null })
            .where((eb) => eb.or([rowDiffers('auth0.sessions', SESSION_FIELDS), eb('auth0.sessions.deleted_at', 'is not', null)])),
        ),
    )
    .with('deleted', (db) =>
      db
        .updateTable('auth0.sessions')
        .set((eb) => ({ deleted_at: now, last_changed_at: now, last_changed_run_id: eb.val(runId) }))
        .where('tenant', '=', tenant)
        .where((eb) => eb('id', '=', eb.fn.any(eb.val(plan.deletedIds))))
        .where('deleted_at', 'is', null),
    )
    .with('history', (db) =>
      db
        .insertInto('auth0.session_changes')
        .columns(['tenant', 'session_id', 'user_id', 'change', 'old_value', 'new_value', 'run_id'])
        .expression((eb) =>
          eb
            .selectFrom(unnest(plan.changes, { session_id: 'text', user_id: 'text', change: 'text', old_value: 'text', new_value: 'text' }))
            .select([eb.val(tenant).as('tenant'), 'session_id', 'user_id', 'change', 'old_value', 'new_value', eb.val(runId).as('run_id')]),
        ),
    )
    .updateTable('auth0.user_sync_state')
    .set({ sessions_synced_at: now })
    .where('tenant', '=', tenant)
    .where((eb) => eb('user_id', '=', eb.fn.any(eb.val(plan.listedUsers))))
    .execute();
}

type SessionRow = Omit<SessionRecord, 'client_ids'> & { client_ids: string };

const toRow = (session: SessionRecord): SessionRow => ({ ...session, client_ids: JSON.stringify(session.client_ids) });

/** Each column of a session record and its type in the `unnest` source. */
const SESSION_TYPES = {
  id: 'text',
  user_id: 'text',
  created_at: 'timestamptz',
  updated_at: 'timestamptz',
  authenticated_at: 'timestamptz',
  last_interacted_at: 'timestamptz',
  idle_expires_at: 'timestamptz',
  expires_at: 'timestamptz',
  initial_ip: 'text',
  initial_ip_inet: 'inet',
  initial_asn: 'text',
  initial_user_agent: 'text',
  last_ip: 'text',
  last_ip_inet: 'inet',
  last_asn: 'text',
  last_user_agent: 'text',
  client_ids: 'jsonb',
  authentication_methods: 'jsonb',
  raw: 'jsonb',
} as const satisfies Record<keyof SessionRecord, ArrayType>;
const SESSION_FIELDS = fieldsOf(SESSION_TYPES, 'id');
