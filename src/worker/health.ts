import type { RunStatus } from '../warehouse/schema.js';
import { historyLostText } from '../status/format-status.js';
import type { FullPassDue } from './full-pass-due.js';

/** What the worker knows when `/healthz` is asked. */
export interface HealthInput {
  now: Date;
  /** The schedule's task status (src/worker/scheduler.ts): `idle` or `running` while the schedule is alive. */
  scheduler: string;
  /** When the worker started. */
  startedAt: Date;
  /** End of the last successful run (read from sync_runs at start, then kept up to date). */
  lastSuccessAt: Date | undefined;
  /** The last finished run, from this worker or (at start) from sync_runs. */
  lastRun: { id: number | undefined; status: Exclude<RunStatus, 'running'>; durationMs: number; errorCode?: string } | undefined;
  /** The longest gap between two runs of the schedule (see `scheduleIntervalMs`). */
  intervalMs: number;
  /** Tenant log history was lost and no full pass has started since; undefined when none is due. */
  fullPassDue?: FullPassDue;
}

export interface HealthReport {
  /** 200 healthy (`ok` or `degraded`), 503 not. */
  httpStatus: 200 | 503;
  body: {
    /** `degraded`: running as it should, but the data may miss changes until a full pass has run. */
    status: 'ok' | 'degraded' | 'unhealthy';
    /** Why not `ok`; absent when `ok`. */
    reason?: string;
    /** Tenant log history was lost and no full pass has started since. */
    fullPassDue: boolean;
    scheduler: string;
    lastSuccessAt: string | null;
    /** When a success must have happened by, for the worker to stay healthy. */
    successDueBy: string;
    lastRun: { id: number | null; status: string; errorCode: string | null } | null;
    /** With `combineHealth`: each tenant's own report. */
    tenants?: ({ tenant: string } & Omit<HealthReport['body'], 'tenants'>)[];
  };
}

/**
 * The health rule, pure: healthy while the scheduler is alive and a run succeeded recently
 * enough for the schedule. "Recently enough": within two schedule intervals plus the last run's
 * duration of the later of the last success and the worker's start, so one failed tick is
 * tolerated, two in a row are not, and a worker that just started (after a long stop) gets the
 * same allowance before its first success.
 *
 * A full pass due after lost log history (issue #18) makes a healthy worker `degraded`, still 200:
 * the worker runs as it should and starts that pass itself, so restarting it or taking it out of
 * service would not help; the reason says what the data may miss.
 */
export function toHealth(input: HealthInput): HealthReport {
  const { now, scheduler, startedAt, lastSuccessAt, lastRun, intervalMs, fullPassDue } = input;
  const since = lastSuccessAt && lastSuccessAt > startedAt ? lastSuccessAt : startedAt;
  const dueBy = new Date(since.getTime() + 2 * intervalMs + (lastRun?.durationMs ?? 0));
  const body: HealthReport['body'] = {
    status: 'ok',
    fullPassDue: fullPassDue !== undefined,
    scheduler,
    lastSuccessAt: lastSuccessAt?.toISOString() ?? null,
    successDueBy: dueBy.toISOString(),
    lastRun: lastRun ? { id: lastRun.id ?? null, status: lastRun.status, errorCode: lastRun.errorCode ?? null } : null,
  };
  let reason: string | undefined;
  if (scheduler !== 'idle' && scheduler !== 'running') {
    reason = `The scheduler is ${scheduler}.`;
  } else if (now > dueBy) {
    const last = lastRun
      ? ` The last run${lastRun.id === undefined ? '' : ` (#${lastRun.id})`} ${lastRun.status}${lastRun.errorCode ? ` (${lastRun.errorCode})` : ''}.`
      : ' No run has finished yet.';
    reason =
      (lastSuccessAt && lastSuccessAt > startedAt
        ? `No successful run since ${lastSuccessAt.toISOString()}`
        : `No successful run since the worker started at ${startedAt.toISOString()}`) +
      `; one was due by ${dueBy.toISOString()}.` +
      last;
  }
  const lost = fullPassDue && describeFullPassDue(fullPassDue);
  if (reason !== undefined) return { httpStatus: 503, body: { ...body, status: 'unhealthy', reason: lost ? `${reason} ${lost}` : reason } };
  if (lost) return { httpStatus: 200, body: { ...body, status: 'degraded', reason: lost } };
  return { httpStatus: 200, body };
}

function describeFullPassDue(due: FullPassDue): string {
  return (
    `Tenant log history was lost at ${due.historyLostAt.toISOString()}${due.reason ? ` (${historyLostText(due.reason)})` : ''}: ` +
    'changes since then may be missing until a full pass has started (the worker starts one; npm run sync also does).'
  );
}

/**
 * The worker's health over its tenants (issue #23): the least healthy tenant's report (503 when
 * any is unhealthy, `degraded` when any is), its reason naming the tenant when there are several,
 * and every tenant's own report under `tenants`.
 */
export function combineHealth(reports: readonly { tenant: string; report: HealthReport }[]): HealthReport {
  const rank = (r: HealthReport) => (r.body.status === 'unhealthy' ? 2 : r.body.status === 'degraded' ? 1 : 0);
  const worst = reports.reduce((a, b) => (rank(b.report) > rank(a.report) ? b : a));
  const reason = worst.report.body.reason && reports.length > 1 ? `Tenant ${worst.tenant}: ${worst.report.body.reason}` : worst.report.body.reason;
  return {
    httpStatus: worst.report.httpStatus,
    body: {
      ...worst.report.body,
      ...(reason !== undefined && { reason }),
      tenants: reports.map(({ tenant, report }) => ({ tenant, ...report.body })),
    },
  };
}

/** The longest gap between consecutive times in `nextRuns` (the schedule's next runs), in ms. */
export function scheduleIntervalMs(nextRuns: readonly Date[]): number {
  let longest = 0;
  for (let i = 1; i < nextRuns.length; i++) longest = Math.max(longest, nextRuns[i]!.getTime() - nextRuns[i - 1]!.getTime());
  return longest;
}
