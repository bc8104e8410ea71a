import { randomUUID } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type { Database } from './schema.js';
import { FatalError, SyncError } from '../core/errors.js';
import type { Logger } from '../core/log.js';

/**
 * Advisory lock key (two int4s): one active run per tenant and database, whichever machine runs
 * it (issue #23). The first int4 is `classId`; the second is `hashtext(tenant)`, computed by
 * PostgreSQL, so runs of different tenants never wait for each other. (Two names hashing alike
 * would only make their runs take turns: the lease, keyed by the name, still fences each.)
 */
export const RUN_LOCK_KEY = { classId: 0x41_30_52_54 /* "A0RT" */ } as const;
const LOCK_CLASS = RUN_LOCK_KEY.classId;
/** The tenant's run lock's row in pg_locks, in this database (pg_locks shows every database's locks). */
const runLockRow = (tenant: string) => sql`locktype = 'advisory' and classid = ${LOCK_CLASS} and objid = hashtext(${tenant})::oid and objsubid = 2
  and granted and database = (select oid from pg_database where datname = current_database())`;

/** Another run holds the lock; the CLI exits 3 with this message. */
export class RunLockedError extends SyncError {
  constructor(message: string) {
    super('run_locked', message);
  }
}

/**
 * This run lost the run lock for good (its connection was dropped and it could not take the
 * lock back first): it writes nothing more and is recorded `interrupted`; the CLI exits 1.
 */
export class RunLockLostError extends FatalError {
  constructor(detail: string) {
    super('run_lock_lost', `The database connection holding the run lock was lost; ${detail}`);
  }
}

/**
 * The fence of a run holding the lock (issue #13). A session advisory lock is gone the moment
 * PostgreSQL drops its connection (failover, restart, idle-session killer, a proxy recycling
 * connections), while the run's pool goes on writing. So every write checks, in its own
 * transaction, that this holding of the lock still owns its tenant's row of `auth0.run_lease`.
 */
export interface RunLease {
  /** Name the run in the lease. Throws RunLockLostError if another run has taken over. */
  claim(runId: number): Promise<void>;
  /**
   * Call first inside each write transaction: locks the lease row (`for share`) so a takeover
   * waits for this write to commit, and throws RunLockLostError once another run has taken the
   * lease. Finding the lock's connection dead, it takes the lock back if no one else did.
   */
  assertHeld(trx: Kysely<Database>): Promise<void>;
  /** `listener` is called once, if and when the lease is lost for good (at once if it already is). */
  onLost(listener: (error: RunLockLostError) => void): void;
}

/** Tenants with a run going, per database owned by this process (the embedded one): one at a time per tenant, as the lock admits. */
const ownedRuns = new WeakMap<Kysely<Database>, Set<string>>();

export interface RunLockOptions {
  /** The tenant whose run this is: the lock and the lease are that tenant's (issue #23). */
  tenant: string;
  /** True on the embedded database: one process owns its directory, there is no one to fence. */
  ownsDatabase?: boolean;
  logger?: Logger;
  /** How often the lock's connection is checked between writes, default 1 s. */
  checkEveryMs?: number;
}

/**
 * Run `fn` while holding the run lock, a session-level advisory lock on a connection reserved
 * for the whole run (released when `fn` settles, or by PostgreSQL when the process dies, so a
 * kill -9 never leaves it stuck). Throws RunLockedError naming the active run when another
 * process holds it. Once the lock is ours the lease is taken, fencing off the writes of a run
 * that lost the lock before us, and any run still marked `running` belongs to a process that
 * died or lost its lock: it is marked `interrupted` before `fn` starts. `fn` gets the lease to
 * fence its writes with (undefined on the embedded database). On a database this process owns
 * there is no advisory lock: a second run of the process throws RunLockedError the same way.
 */
export async function withRunLock<T>(db: Kysely<Database>, fn: (lease: RunLease | undefined) => Promise<T>, options: RunLockOptions): Promise<T> {
  const { tenant } = options;
  // The embedded database has one connection and one process (its directory lock): holding
  // a connection for the lock would starve the run, and no other process can be there. Runs of
  // this process are excluded here instead (issue #18: a follow's run beside the worker's pass
  // wrote beside it, and marked the pass `interrupted` as abandoned).
  if (options.ownsDatabase) {
    const running = ownedRuns.get(db) ?? new Set<string>();
    ownedRuns.set(db, running);
    if (running.has(tenant)) throw new RunLockedError(await describeActiveRun(db, tenant));
    running.add(tenant);
    try {
      await markAbandonedRuns(db, tenant);
      return await fn(undefined);
    } finally {
      running.delete(tenant);
    }
  }
  const session = await openLockSession(db, tenant);
  if (!session) throw new RunLockedError(await describeActiveRun(db, tenant));
  const lease = createLease(db, session, options);
  try {
    await lease.take();
    await markAbandonedRuns(db, tenant);
    return await fn(lease);
  } finally {
    await lease.release();
  }
}

interface LockSession {
  conn: Kysely<Database>;
  /** Backend pid of the connection holding the lock, as pg_locks shows it. */
  pid: number;
  /** Unlock (if the connection still lives) and give the connection back to the pool. */
  end(): Promise<void>;
}

/** Take the tenant's advisory lock on a connection reserved until `end()`; undefined if another session holds it. */
function openLockSession(db: Kysely<Database>, tenant: string): Promise<LockSession | undefined> {
  return new Promise((resolve, reject) => {
    let release!: () => void;
    const released = new Promise<void>((r) => (release = r));
    const reserved = db.connection().execute(async (conn) => {
      const { rows } = await sql<{ locked: boolean; pid: number }>`
        select pg_try_advisory_lock(${LOCK_CLASS}, hashtext(${tenant})) as locked, pg_backend_pid() as pid`.execute(conn);
      const row = rows[0];
      if (!row?.locked) return resolve(undefined);
      // A machine that vanishes (no FIN, no RST) would hold the tenant's lock until the server's
      // default TCP keepalive gives up, about two hours on Linux: the server probes this session
      // after 30 s of silence instead, and drops it (and the lock) about a minute after the peer
      // went. Ignored on Unix sockets; a server that refuses the settings keeps its defaults.
      await sql`select set_config('tcp_keepalives_idle', '30', false), set_config('tcp_keepalives_interval', '10', false),
        set_config('tcp_keepalives_count', '3', false)`
        .execute(conn)
        .catch(() => undefined);
      resolve({
        conn,
        pid: row.pid,
        async end() {
          await sql`select pg_advisory_unlock(${LOCK_CLASS}, hashtext(${tenant}))`.execute(conn).catch(() => {
            // The connection is gone, and with it the lock.
          });
          release();
          await reserved.catch(() => {});
        },
      });
      await released;
    });
    reserved.catch(reject);
  });
}

function createLease(db: Kysely<Database>, first: LockSession, options: RunLockOptions) {
  const holder = randomUUID();
  const { logger, tenant } = options;
  let session = first;
  let lost: RunLockLostError | undefined;
  let recovering: Promise<void> | undefined;
  let checking: Promise<void> | undefined;
  const listeners: ((error: RunLockLostError) => void)[] = [];

  function loseLease(error: RunLockLostError): RunLockLostError {
    if (lost) return lost;
    lost = error;
    clearInterval(timer);
    logger?.error('run lock lost', { code: error.code, error: error.message });
    for (const listener of listeners.splice(0)) listener(error);
    return error;
  }

  /** The lock's connection is dead: take the lock back, but only if no one else took it meanwhile. */
  function recover(): Promise<void> {
    recovering ??= (async () => {
      logger?.warn('the database connection holding the run lock was lost; taking the lock back', { pid: session.pid });
      const dead = session;
      await dead.end();
      const { next, takenByOther } = await retakeLock(db, tenant, dead.pid);
      // Anyone who takes the lock writes a new holder into the lease first thing: the lease
      // still naming us means no other run has held the lock (or written) since we lost it.
      const ours =
        next &&
        (await readLease(next.conn, tenant).then(
          (lease) => lease?.holder === holder,
          () => false,
        ));
      if (next && ours) {
        session = next;
        logger?.warn('run lock taken back: no other run took it meanwhile; going on', { pid: next.pid });
        return;
      }
      await next?.end();
      loseLease(
        new RunLockLostError(
          next || takenByOther ? 'another run took over; this run stopped writing.' : 'this run could not take it back and stopped writing.',
        ),
      );
    })().finally(() => {
      recovering = undefined;
    });
    return recovering;
  }

  // Between writes (slow fetches), find a dropped lock connection within a second or so, so the
  // lock can be taken back before another run takes it.
  const timer = setInterval(() => {
    if (lost || recovering || checking) return;
    checking = sql`select 1`
      .execute(session.conn)
      .then(
        () => undefined,
        () => (lost ? undefined : recover()),
      )
      .finally(() => {
        checking = undefined;
      });
  }, options.checkEveryMs ?? 1000);
  timer.unref();

  const lease: RunLease = {
    async claim(runId) {
      if (lost) throw lost;
      const { numUpdatedRows } = await db
        .updateTable('auth0.run_lease')
        .set({ run_id: runId })
        .where('tenant', '=', tenant)
        .where('holder', '=', holder)
        .executeTakeFirst();
      if (numUpdatedRows === 0n) throw loseLease(new RunLockLostError('another run took over before this one started writing.'));
    },

    async assertHeld(trx) {
      if (lost) throw lost;
      const { rows } = await sql<{ holder: string | null; run_id: number | null; locked: boolean }>`
        select holder, run_id, exists (
          select 1 from pg_locks where ${runLockRow(tenant)} and pid = ${session.pid}
        ) as locked
        from auth0.run_lease where tenant = ${tenant}
        for share of run_lease`.execute(trx);
      const row = rows[0];
      if (row?.holder !== holder) {
        throw loseLease(new RunLockLostError(`run ${row?.run_id ?? '(starting)'} took over; this run stopped writing.`));
      }
      if (!row.locked) {
        // Our lease, but the lock's session is gone: no one else has the lease yet (they would
        // wait on the row we just locked), so taking the lock back now is safe.
        await recover();
        if (lost) throw lost;
      }
    },

    onLost(listener) {
      if (lost) listener(lost);
      else listeners.push(listener);
    },
  };

  return {
    ...lease,
    /** Fence off every earlier holder: waits for a write of theirs in flight, then their next one fails. */
    async take() {
      await sql`
        insert into auth0.run_lease (tenant, holder, run_id, acquired_at) values (${tenant}, ${holder}, null, now())
        on conflict (tenant) do update set holder = excluded.holder, run_id = null, acquired_at = excluded.acquired_at`.execute(session.conn);
    },
    async release() {
      clearInterval(timer);
      await checking;
      await recovering;
      await session.end();
    },
  };
}

/**
 * Try to take the lock again after the session `deadPid` lost it. The server may take a moment
 * to notice a dropped connection and end its backend, which holds the lock until it exits:
 * while pg_locks shows that backend (or no one) as the holder, try again for up to 3 s.
 * Gives up at once when another session holds it.
 */
async function retakeLock(db: Kysely<Database>, tenant: string, deadPid: number): Promise<{ next?: LockSession; takenByOther?: boolean }> {
  for (let attempt = 0; attempt < 30; attempt += 1) {
    const next = await openLockSession(db, tenant).catch(() => undefined);
    if (next) return { next };
    const holder = await sql<{ pid: number }>`
      select pid from pg_locks where ${runLockRow(tenant)}`
      .execute(db)
      .then(
        ({ rows }) => rows[0]?.pid,
        () => undefined,
      );
    if (holder !== undefined && holder !== deadPid) return { takenByOther: true };
    await new Promise((wake) => setTimeout(wake, 100));
  }
  return {};
}

async function readLease(db: Kysely<Database>, tenant: string) {
  return db.selectFrom('auth0.run_lease').select(['holder', 'run_id']).where('tenant', '=', tenant).executeTakeFirst();
}

/** Called with the tenant's lock held: a run of the tenant still `running` belongs to a process that died or lost its lock. */
async function markAbandonedRuns(db: Kysely<Database>, tenant: string): Promise<void> {
  await db
    .updateTable('auth0.sync_runs')
    .set({ status: 'interrupted', finished_at: new Date(), error: 'The process running it stopped, or lost the run lock, before it finished.' })
    .where('tenant', '=', tenant)
    .where('status', '=', 'running')
    .execute();
}

async function describeActiveRun(db: Kysely<Database>, tenant: string): Promise<string> {
  const active = await db
    .selectFrom('auth0.sync_runs')
    .select(['id', 'host', 'pid', 'started_at', 'trigger'])
    .where('tenant', '=', tenant)
    .where('status', '=', 'running')
    .orderBy('id', 'desc')
    .executeTakeFirst();
  if (!active) return `Another sync of tenant ${tenant} holds its run lock on this database; not starting.`;
  return `Run ${active.id} of tenant ${tenant} (${active.trigger}, pid ${active.pid} on ${active.host}, started ${active.started_at.toISOString()}) is still running; not starting.`;
}
