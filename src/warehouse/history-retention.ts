import { sql, type Kysely } from 'kysely';
import type { Database } from './schema.js';

export interface PruneResult {
  /** Start of the retention window: rows observed or started before it were candidates. */
  cutoff: Date;
  changesDeleted: number;
  /** Rows of auth0.session_changes observed before the window (issue #22): sessions have no as-of function to keep. */
  sessionChangesDeleted: number;
  runsDeleted: number;
}

/** Advisory lock key (two int4s) held by the one pruning transaction; its own class, apart from the tenants' run locks. */
export const PRUNE_LOCK_KEY = { classId: 0x41_30_52_48 /* "A0RH" */, objectId: 1 } as const;

/**
 * `SYNC_HISTORY_DAYS`: deletes change rows observed, and runs started, more than `days` days
 * before the database's `now()`, except what is still needed:
 *
 * - Change rows: for every token live at some moment of the window (`deleted_at` null or
 *   inside it), its latest `deleted` / `restored` row before the window is kept: the state the
 *   token was in when the window opened (a `deleted` one is what says a token restored since
 *   was deleted then; a `restored` one is its `live_since`). With it
 *   `auth0.refresh_tokens_as_of` stays exact for every moment inside the window. Tokens themselves (`first_seen_at`, `deleted_at`) are never
 *   pruned, so before the window as-of only loses the deleted spells of tokens deleted and
 *   restored before it.
 * - Runs: never `running` ones, each tenant's last succeeded one (the worker reads it at start), nor any
 *   run a row still names: a token's first-seen or last-changed run, a user's last run, a kept
 *   change row, the log checkpoint or the run lease.
 *
 * Both deletes run in one transaction: a run is deleted only with the change rows naming it.
 * Retention is by age, over every tenant at once (issue #23). Undefined: another process was
 * pruning (it holds PRUNE_LOCK_KEY), so this one did nothing.
 */
export async function pruneHistory(db: Kysely<Database>, days: number): Promise<PruneResult | undefined> {
  if (!Number.isInteger(days) || days < 1) throw new RangeError(`history retention must be a whole number of days from 1 (got ${days})`);
  return db.transaction().execute(async (trx) => {
    // One pruner at a time: every worker replica prunes after its passes, and two at once would
    // wait on each other's rows (or deadlock) for work one of them does anyway.
    const { rows: lock } = await sql<{ taken: boolean }>`
      select pg_try_advisory_xact_lock(${PRUNE_LOCK_KEY.classId}, ${PRUNE_LOCK_KEY.objectId}) as taken`.execute(trx);
    if (!lock[0]?.taken) return undefined;
    const {
      rows: [window],
    } = await sql<{ cutoff: Date }>`select now() - make_interval(days => ${days}) as cutoff`.execute(trx);
    const cutoff = (window as { cutoff: Date }).cutoff;

    const changes = await sql`
      delete from auth0.refresh_token_changes c
      where c.observed_at < ${cutoff}
        and c.id not in (
          select distinct on (k.tenant, k.token_id) k.id
          from auth0.refresh_token_changes k
          join auth0.refresh_tokens t on t.tenant = k.tenant and t.id = k.token_id
          where k.change in ('deleted', 'restored') and k.observed_at < ${cutoff}
            and (t.deleted_at is null or t.deleted_at >= ${cutoff})
          order by k.tenant, k.token_id, k.observed_at desc, k.id desc
        )
    `.execute(trx);

    const sessionChanges = await sql`delete from auth0.session_changes where observed_at < ${cutoff}`.execute(trx);

    // Sessions name runs too, but on delete set null: a pruned run only clears their run ids.
    const runs = await sql`
      delete from auth0.sync_runs r
      where r.started_at < ${cutoff}
        and r.status <> 'running'
        and r.id not in (
          select distinct on (s.tenant) s.id from auth0.sync_runs s where s.status = 'succeeded'
          order by s.tenant, s.finished_at desc nulls last, s.id desc
        )
        and not exists (select 1 from auth0.refresh_tokens t where t.first_seen_run_id = r.id)
        and not exists (select 1 from auth0.refresh_tokens t where t.last_changed_run_id = r.id)
        and not exists (select 1 from auth0.user_sync_state s where s.last_run_id = r.id)
        and not exists (select 1 from auth0.refresh_token_changes c where c.run_id = r.id)
        and not exists (select 1 from auth0.log_checkpoint l where l.last_run_id = r.id)
        and not exists (select 1 from auth0.run_lease l where l.run_id = r.id)
    `.execute(trx);

    return {
      cutoff,
      changesDeleted: Number(changes.numAffectedRows ?? 0),
      sessionChangesDeleted: Number(sessionChanges.numAffectedRows ?? 0),
      runsDeleted: Number(runs.numAffectedRows ?? 0),
    };
  });
}
