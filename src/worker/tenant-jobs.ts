import { createHash } from 'node:crypto';

/**
 * What a tenant's queue carries (issue #23): a pass or a follow of the tenant logs. Passes and
 * follows of one tenant share its queue, so they run one at a time for that tenant, whichever
 * replica fetches them.
 */
export type TenantJobKind = 'pass' | 'follow';

export interface TenantJob {
  kind: TenantJobKind;
  tenant: string;
  /**
   * What made it: a tick's scheduled time (ISO), or `start` / `history:<ISO>` for a pass at the
   * worker's start or due after lost log history. Part of the job's id.
   */
  tick: string;
  /** Recorded in the pass's `sync_runs.args` (a full pass due after lost history says so). */
  args?: Record<string, unknown>;
}

/** The tenant's queue in the job engine: one per tenant, so one tenant's backlog never holds up another's. */
export function queueName(tenant: string): string {
  return `tenant.${tenant}`;
}

/**
 * The job's id, the same in every replica that sees the same tick: a UUID (version 5 layout)
 * from a SHA-1 of `tenant|kind|tick`. The engine's primary key turns the N replicas' sends of
 * one tick into one job, even a send that comes late, after the job finished (the finished
 * job stays in the engine's table until archived).
 */
export function tenantJobId(tenant: string, kind: TenantJobKind, tick: string): string {
  const bytes = createHash('sha1').update(`${tenant}|${kind}|${tick}`).digest().subarray(0, 16);
  bytes[6] = (bytes[6]! & 0x0f) | 0x50;
  bytes[8] = (bytes[8]! & 0x3f) | 0x80;
  const hex = bytes.toString('hex');
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}

/**
 * A tick's scheduled time as the job id's `tick`: whole seconds, ISO. Never `Date.now()`: the
 * replicas' clocks fire the same tick up to hundreds of milliseconds apart.
 */
export function tickKey(scheduledAt: Date): string {
  return new Date(Math.floor(scheduledAt.getTime() / 1000) * 1000).toISOString();
}

/** A job's data back into a TenantJob; undefined when it is not one (another version's, a hand-made one). */
export function toTenantJob(data: unknown): TenantJob | undefined {
  if (typeof data !== 'object' || data === null) return undefined;
  const { kind, tenant, tick, args } = data as Record<string, unknown>;
  if ((kind !== 'pass' && kind !== 'follow') || typeof tenant !== 'string' || typeof tick !== 'string') return undefined;
  const job: TenantJob = { kind, tenant, tick };
  if (typeof args === 'object' && args !== null) job.args = args as Record<string, unknown>;
  return job;
}
