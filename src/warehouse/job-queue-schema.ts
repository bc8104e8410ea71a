import PgBoss from 'pg-boss';
import { sql, type Kysely } from 'kysely';
import { FatalError } from '../core/errors.js';

/**
 * The schema pg-boss (the job engine the worker replicas share, issue #23) keeps its queues and
 * jobs in. Owned by `migrate`, not by the replicas (they start pg-boss with `migrate: false`), so
 * N replicas starting at once never race to create it and a worker never changes the schema.
 */
export const JOB_QUEUE_SCHEMA = 'pgboss';

/**
 * Create pg-boss's schema when it is missing; true when it was created. Runs outside any Kysely
 * transaction: pg-boss's construction SQL holds its own `BEGIN … COMMIT` and advisory lock (it
 * would end an outer transaction), and is sent as one simple-protocol query (no parameters).
 * Only for a server database: the embedded one keeps the single-process worker and has no queue.
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function installJobQueueSchema(db: Kysely<any>): Promise<boolean> {
  if (await readJobQueueVersion(db)) return false;
  await sql.raw(PgBoss.getConstructionPlans(JOB_QUEUE_SCHEMA)).execute(db);
  return true;
}

/**
 * Refuse to start the replicas' engine on a database `migrate` has not prepared, with the sentence
 * that says what to run (pg-boss's own error would only say "requires migrations").
 */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export async function assertJobQueueInstalled(db: Kysely<any>): Promise<void> {
  if (await readJobQueueVersion(db)) return;
  throw new FatalError(
    'job_queue_missing',
    `The database has no job queue schema (${JOB_QUEUE_SCHEMA}) for the worker replicas; run \`npm run migrate\` first.`,
  );
}

/** pg-boss's schema version, undefined when its schema is not there. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
async function readJobQueueVersion(db: Kysely<any>): Promise<number | undefined> {
  const { rows } = await sql<{ table: string | null }>`select to_regclass(${`${JOB_QUEUE_SCHEMA}.version`})::text as table`.execute(db);
  if (!rows[0]?.table) return undefined;
  const version = await sql<{ version: number }>`select version from ${sql.table(`${JOB_QUEUE_SCHEMA}.version`)}`.execute(db);
  return version.rows[0]?.version;
}
