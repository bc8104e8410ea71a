import got, { HTTPError, RequestError } from 'got';
import type { RunStatus } from '../warehouse/schema.js';
import type { Logger } from '../core/log.js';
import type { RunCounts } from '../warehouse/run-records.js';
import type { Secret } from '../core/secret.js';
import { scrubSecrets, toSafeText } from '../core/upstream-text.js';

/** What the worker knows about a finished run; the notice is built from this alone. */
export interface RunOutcome {
  /** Undefined when the run could not even start (database gone, pending migrations). */
  runId: number | undefined;
  status: Exclude<RunStatus, 'running'>;
  counts: RunCounts;
  usersTotal: number | undefined;
  durationSeconds: number;
  error?: string;
  errorCode?: string;
}

/** The JSON POSTed to NOTIFY_WEBHOOK_URL: Slack's `text`, then the same facts as fields. */
export interface RunNotice {
  text: string;
  event: 'run_failed' | 'run_partial' | 'recovered';
  job: string;
  /** The Auth0 tenant's host name, to tell several deployments apart. */
  tenant: string;
  runId: number | null;
  status: string;
  usersTotal: number | null;
  counts: RunCounts;
  durationSeconds: number;
  /** The run's error (first error): already safe text, capped again here. */
  error: string | null;
  errorCode: string | null;
}

export interface Notifier {
  /**
   * Decide whether `outcome` calls for a notice and send it: every failed or partial run, and
   * the first succeeded run after one (the recovery). Never throws: a notice that cannot be
   * delivered after its retries is logged and dropped.
   */
  notifyRun(outcome: RunOutcome): Promise<void>;
}

export interface NotifierOptions {
  url: Secret;
  logger: Logger;
  job: string;
  tenant: string;
  /** Whether the last finished run before this process failed or was partial (from sync_runs). */
  alerting?: boolean;
  /** Tries in all, default 3. */
  tries?: number;
  /** First retry delay, doubled for each next one; default 1000 ms. */
  retryDelayMs?: number;
  /** Per-try timeout, default 10 s. */
  timeoutMs?: number;
  /** Once aborted (the worker is stopping), a notice gets no further try, so a stop stays short. */
  stopSignal?: AbortSignal;
}

const MAX_ERROR_TEXT = 500;

export function createNotifier(options: NotifierOptions): Notifier {
  const { url, logger, job, tenant } = options;
  const tries = options.tries ?? 3;
  const retryDelayMs = options.retryDelayMs ?? 1000;
  // Only the origin is ever logged: the path of a Slack webhook URL is a credential.
  const target = new URL(url.reveal()).origin;
  let alerting = options.alerting ?? false;

  const client = got.extend({
    timeout: { request: options.timeoutMs ?? 10_000 },
    followRedirect: false,
    retry: {
      limit: tries - 1,
      methods: ['POST'],
      statusCodes: [408, 413, 429, 500, 502, 503, 504, 521, 522, 524],
      // A receiver's Retry-After is not waited for longer than our own backoff allows.
      calculateDelay: ({ attemptCount, computedValue }) => (computedValue === 0 || options.stopSignal?.aborted ? 0 : retryDelayMs * 2 ** (attemptCount - 1)),
    },
    hooks: {
      beforeRetry: [(error, retryCount) => logger.warn('notification retry', { target, attempt: retryCount + 1, reason: describe(error) })],
    },
    headers: { 'user-agent': 'auth0-refresh-token-sync' },
  });

  async function send(notice: RunNotice): Promise<void> {
    // A last guard: run errors are safe text already, but the body must never carry a secret.
    const body = scrubSecrets(JSON.stringify(notice));
    try {
      await client.post(url.reveal(), { body, headers: { 'content-type': 'application/json' } });
      logger.info('notification sent', { target, event: notice.event, runId: notice.runId });
    } catch (error) {
      logger.error('notification failed', { target, event: notice.event, runId: notice.runId, tries, reason: describe(error) });
    }
  }

  return {
    async notifyRun(outcome) {
      if (outcome.status === 'failed' || outcome.status === 'partial') {
        alerting = true;
        await send(toNotice(outcome, outcome.status === 'failed' ? 'run_failed' : 'run_partial', job, tenant));
      } else if (outcome.status === 'succeeded' && alerting) {
        alerting = false;
        await send(toNotice(outcome, 'recovered', job, tenant));
      }
      // interrupted: a stop, not a verdict; the next run decides.
    },
  };
}

/** The notice for one run, from run data only. Pure. */
function toNotice(outcome: RunOutcome, event: RunNotice['event'], job: string, tenant: string): RunNotice {
  const run = outcome.runId === undefined ? 'A run' : `Run #${outcome.runId}`;
  const { counts } = outcome;
  const error = outcome.error === undefined ? null : toSafeText(outcome.error, MAX_ERROR_TEXT);
  const users = `${counts.usersSynced} synced, ${counts.usersNotFound} not found, ${counts.usersFailed} failed of ${outcome.usersTotal ?? '?'}`;
  const text =
    event === 'recovered'
      ? `${job} on ${tenant}: recovered: ${run} succeeded (${users}).`
      : event === 'run_partial'
        ? `${job} on ${tenant}: ${run} partial: ${users}${error ? `; first error${outcome.errorCode ? ` [${outcome.errorCode}]` : ''}: ${error}` : ''}.`
        : `${job} on ${tenant}: ${run} failed${outcome.errorCode ? ` [${outcome.errorCode}]` : ''}: ${error ?? 'no error recorded'} (${users}).`;
  return {
    text,
    event,
    job,
    tenant,
    runId: outcome.runId ?? null,
    status: outcome.status,
    usersTotal: outcome.usersTotal ?? null,
    counts: { ...counts },
    durationSeconds: outcome.durationSeconds,
    error,
    errorCode: outcome.errorCode ?? null,
  };
}

/** got's code and status only: its error object holds the request options, the URL included. */
function describe(error: unknown): string {
  if (error instanceof HTTPError) return `HTTP ${error.response.statusCode}`;
  if (error instanceof RequestError) return error.code;
  return 'unknown error';
}
