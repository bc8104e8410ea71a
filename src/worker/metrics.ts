import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import { DELETION_REASONS, type RunStatus } from '../warehouse/schema.js';
import { emptyCounts, type RunCounts } from '../warehouse/run-records.js';

/**
 * Why a tick did nothing. A pass tick: `overlap` (this worker's pass was still going), `locked`
 * (another process held the run lock). A follow tick: `follow_overlap` (the previous follow was
 * still going), `follow_locked` (another process held the run lock). Either: `stopping` (the
 * worker was stopping).
 */
export type TickSkipReason = (typeof TICK_SKIP_REASONS)[number];

const TICK_SKIP_REASONS = ['overlap', 'locked', 'follow_overlap', 'follow_locked', 'stopping'] as const;

/**
 * One tenant's Prometheus metrics in the worker's registry (`createMetricsRegistry`), each series
 * labelled with the tenant. Names: `auth0_sync_` prefix, snake_case, unit suffix, `_total` on
 * counters. Every method is cheap and never throws.
 */
export interface WorkerMetrics {
  /** A new run's baseline: its `add` calls add only what grew since the last one. */
  startRun(): RunTally;
  /**
   * A run ended (any status; a pass that could not start counts as `failed`). A follow's run
   * (`follow: true`) counts like a pass but does not move the last success, which tells whether
   * the passes succeed.
   */
  finishRun(status: Exclude<RunStatus, 'running'>, durationSeconds: number, run?: { finishedAt?: Date; follow?: boolean }): void;
  /** The last successful run's end, also the one read from `sync_runs` at start. */
  setLastSuccess(at: Date): void;
  tickSkipped(reason: TickSkipReason): void;
  /** One Auth0 request answered (`status`) or not (undefined), and the limiter's pace then. */
  observeResponse(status: number | undefined, pace: number): void;
}

/** The counts of one run already added to the counters. */
export interface RunTally {
  add(counts: Readonly<RunCounts>): void;
}

const USER_OUTCOMES = { synced: 'usersSynced', not_found: 'usersNotFound', failed: 'usersFailed' } as const;
const TOKEN_CHANGES = { seen: 'tokensSeen', added: 'tokensAdded', changed: 'tokensChanged', deleted: 'tokensDeleted' } as const;

/** What a tenant's gauges read at each scrape. */
export interface TenantMetricSources {
  runInProgress: () => boolean;
  /**
   * How far the log checkpoint trails the tenant's newest entry, in seconds (0 when caught up);
   * undefined before the first follow.
   */
  readLogLagSeconds?: () => Promise<number | undefined>;
  /** Tenant log history was lost and no full pass has started since (as the worker last read it). */
  fullPassDue?: () => boolean;
  /** Tokens marked deleted in the last 24 hours, by reason (issue #22), read at each scrape. */
  readRecentDeletions?: () => Promise<Partial<Record<string, number>>>;
}

/**
 * The worker's metrics for all its tenants (issue #23): one Registry (never prom-client's global
 * one, so several workers can live in one process, as in tests), every per-tenant series with a
 * `tenant` label; `forTenant` gives the one tenant's view the worker and its follower write to.
 */
export interface MetricsRegistry {
  readonly registry: Registry;
  forTenant(tenant: string, sources: TenantMetricSources): WorkerMetrics;
}

export function createMetricsRegistry(): MetricsRegistry {
  const registry = new Registry();
  const registers = [registry];
  const tenants = new Map<string, TenantMetricSources>();

  const runs = new Counter({
    name: 'auth0_sync_runs_total',
    help: "Runs finished (the passes and the log follower's own runs), by status.",
    labelNames: ['status', 'tenant'],
    registers,
  });
  const duration = new Histogram({
    name: 'auth0_sync_run_duration_seconds',
    help: 'Wall-clock duration of finished runs.',
    labelNames: ['status', 'tenant'],
    buckets: [1, 5, 15, 60, 300, 900, 1800, 3600, 7200, 14_400],
    registers,
  });
  const users = new Counter({
    name: 'auth0_sync_users_total',
    help: 'Users done by runs, by outcome (synced, not_found, failed); grows while a run goes.',
    labelNames: ['outcome', 'tenant'],
    registers,
  });
  const tokens = new Counter({
    name: 'auth0_sync_tokens_total',
    help: 'Refresh tokens listed (seen) and written (added, changed, deleted); grows while a run goes.',
    labelNames: ['change', 'tenant'],
    registers,
  });
  const requests = new Counter({
    name: 'auth0_sync_requests_total',
    help: 'Requests to Auth0 (token endpoint and retries included), by HTTP status; "none" when no answer came.',
    labelNames: ['status', 'tenant'],
    registers,
  });
  const rateLimited = new Counter({ name: 'auth0_sync_rate_limited_total', help: 'Answers with HTTP 429 from Auth0.', labelNames: ['tenant'], registers });
  const pace = new Gauge({
    name: 'auth0_sync_limiter_pace_requests_per_second',
    help: "The rate limiter's pace at the last request to Auth0 (unchanged while unbounded: no rate-limit headers and no AUTH0_MAX_RPS).",
    labelNames: ['tenant'],
    registers,
  });
  const lastSuccess = new Gauge({
    name: 'auth0_sync_last_success_timestamp_seconds',
    help: "End of the last successful pass, Unix seconds (0 until there is one); the log follower's runs do not move it.",
    labelNames: ['tenant'],
    registers,
  });
  new Gauge({
    name: 'auth0_sync_run_in_progress',
    help: '1 while this worker runs a sync, else 0.',
    labelNames: ['tenant'],
    registers,
    collect() {
      for (const [tenant, sources] of tenants) this.set({ tenant }, sources.runInProgress() ? 1 : 0);
    },
  });
  // The checkpoint's own lag (issue #18), not now minus the last entry's date: that grew
  // forever on a quiet tenant, where a follow that reads nothing is caught up.
  new Gauge({
    name: 'auth0_sync_log_follower_lag_seconds',
    help: "How far the log follower's checkpoint trails the tenant's newest log entry, seconds (0 when caught up); absent before the first follow.",
    labelNames: ['tenant'],
    registers,
    async collect() {
      this.reset();
      for (const [tenant, { readLogLagSeconds }] of tenants) {
        const lag = await readLogLagSeconds?.().catch(() => undefined);
        if (lag !== undefined) this.set({ tenant }, Math.max(0, lag));
      }
    },
  });
  new Gauge({
    name: 'auth0_sync_log_full_pass_due',
    help: '1 while tenant log history was lost and no full pass has started since (changes may be missing), else 0.',
    labelNames: ['tenant'],
    registers,
    collect() {
      this.reset();
      for (const [tenant, { fullPassDue }] of tenants) if (fullPassDue) this.set({ tenant }, fullPassDue() ? 1 : 0);
    },
  });
  // Read from the change history, not counted by this process: a run of another process (a
  // one-off sync, another replica) shows too, and a restart loses nothing.
  new Gauge({
    name: 'auth0_sync_token_deletions_24h',
    help: 'Refresh tokens marked deleted in the last 24 hours, by reason (revoked_by_user, revoked_by_api, reuse_detected, session_revoked, user_deleted, pruned, expired, unexplained; unrecorded before reasons were). The unexplained ones are what the deletion guard watches.',
    labelNames: ['reason', 'tenant'],
    registers,
    async collect() {
      // Unreadable: no series at all for the tenant (an absent() alert fires), never the last values.
      this.reset();
      for (const [tenant, { readRecentDeletions }] of tenants) {
        const counts = await readRecentDeletions?.().catch(() => undefined);
        if (!counts) continue;
        for (const reason of DELETION_REASONS) this.set({ reason, tenant }, counts[reason] ?? 0);
        if (counts.unrecorded) this.set({ reason: 'unrecorded', tenant }, counts.unrecorded);
      }
    },
  });
  const skipped = new Counter({
    name: 'auth0_sync_ticks_skipped_total',
    help: 'Ticks that did nothing: overlap (this worker was still running a pass), locked (another process held the run lock), follow_overlap (the previous follow was still going), follow_locked (another process held the run lock at a follow), stopping (the worker was stopping).',
    labelNames: ['reason', 'tenant'],
    registers,
  });

  // Node's process metrics after the job's own: a registry lists its series in the order they
  // were registered, and someone reading /metrics by eye wants the job first (issue #19).
  collectDefaultMetrics({ register: registry });

  return {
    registry,
    forTenant(tenant, sources) {
      tenants.set(tenant, sources);
      // Zero series from the start, so rate() and absent() work before the first event.
      for (const status of ['succeeded', 'partial', 'failed', 'interrupted']) runs.inc({ status, tenant }, 0);
      for (const outcome of Object.keys(USER_OUTCOMES)) users.inc({ outcome, tenant }, 0);
      for (const change of Object.keys(TOKEN_CHANGES)) tokens.inc({ change, tenant }, 0);
      for (const reason of TICK_SKIP_REASONS) skipped.inc({ reason, tenant }, 0);
      rateLimited.inc({ tenant }, 0);
      lastSuccess.set({ tenant }, 0);
      return {
        startRun() {
          const added = emptyCounts();
          return {
            add(counts) {
              for (const [outcome, key] of Object.entries(USER_OUTCOMES)) grow(users, { outcome, tenant }, added, counts, key);
              for (const [change, key] of Object.entries(TOKEN_CHANGES)) grow(tokens, { change, tenant }, added, counts, key);
            },
          };
        },
        finishRun(status, durationSeconds, run = {}) {
          runs.inc({ status, tenant });
          duration.observe({ status, tenant }, Math.max(0, durationSeconds));
          if (status === 'succeeded' && !run.follow) lastSuccess.set({ tenant }, (run.finishedAt ?? new Date()).getTime() / 1000);
        },
        setLastSuccess(at) {
          lastSuccess.set({ tenant }, at.getTime() / 1000);
        },
        tickSkipped(reason) {
          skipped.inc({ reason, tenant });
        },
        observeResponse(status, rate) {
          requests.inc({ status: status === undefined ? 'none' : String(status), tenant });
          if (status === 429) rateLimited.inc({ tenant });
          if (Number.isFinite(rate)) pace.set({ tenant }, rate);
        },
      };
    },
  };
}

/** Add to `counter` what `counts[key]` gained since `added[key]`, and remember it. */
function grow(counter: Counter<string>, labels: Record<string, string>, added: RunCounts, counts: Readonly<RunCounts>, key: keyof RunCounts) {
  const delta = counts[key] - added[key];
  if (delta > 0) {
    counter.inc(labels, delta);
    added[key] = counts[key];
  }
}
