/** What `npm run status` prints: aligned plain text for people, or one JSON document (`--json`). Pure. */
import { formatDuration } from '../core/duration.js';
import { toPrintable } from '../core/upstream-text.js';
import { plural } from '../core/wording.js';
import { statusExitCode, type LogFollowerStatus, type RecentDeletions, type RunSummary, type StatusReport, type TenantStatus } from './read-status.js';

/** Elapsed time for people; clock skew (a negative span) reads as 0. */
function formatSpan(ms: number): string {
  return formatDuration(Number.isFinite(ms) ? Math.max(0, ms) : 0);
}

/** `2026-11-26 09:05:03`, always UTC so the output does not depend on the machine's zone. */
function formatTime(date: Date): string {
  return date.toISOString().slice(0, 19).replace('T', ' ');
}

/** Columns padded to their widest cell, two spaces apart; trailing spaces trimmed. */
function table(header: string[], rows: string[][], rightAligned: ReadonlySet<number> = new Set()): string[] {
  const all = [header, ...rows];
  const widths = header.map((_, i) => Math.max(...all.map((row) => Array.from(row[i] ?? '').length)));
  const pad = (cell: string, i: number) => {
    const fill = ' '.repeat(Math.max(0, (widths[i] ?? 0) - Array.from(cell).length));
    return rightAligned.has(i) ? fill + cell : cell + fill;
  };
  return all.map(
    (row) =>
      '  ' +
      row
        .map((cell, i) => pad(cell, i))
        .join('  ')
        .trimEnd(),
  );
}

function runDuration(run: RunSummary, now: Date): string {
  if (run.finishedAt) return formatSpan(run.finishedAt.getTime() - run.startedAt.getTime());
  if (run.status === 'running') return `running for ${formatSpan(now.getTime() - run.startedAt.getTime())}`;
  return '-';
}

/**
 * The lines `status` prints: plain aligned text, no colors. One section per tenant, headed by its
 * name (issue #23); with several, a first line names them and the exit code they make together.
 */
export function formatStatus(report: StatusReport, now: Date = report.generatedAt): string[] {
  const lines: string[] = [`Sync status at ${formatTime(now)} UTC`];
  const { tenants } = report;
  if (tenants.length === 0) return [...lines, 'No tenant yet: the warehouse holds no run, log checkpoint or user. Run npm run sync.'];
  if (tenants.length > 1) {
    lines.push(`Tenants: ${tenants.length} (${tenants.map((t) => t.tenant).join(', ')}); status exit code ${statusExitCode(report)}, the worst of them`);
  }
  for (const tenant of tenants) lines.push('', `Tenant ${tenant.tenant}`, ...formatTenant(tenant, now));
  return lines;
}

/** One tenant's section: as `status` printed before tenants, under its name. */
function formatTenant(report: TenantStatus, now: Date): string[] {
  const lines: string[] = [];
  const last = report.lastFinished;
  lines.push(
    last
      ? `Last finished run: #${last.id} ${last.status}` +
          (last.finishedAt ? `, ${formatSpan(now.getTime() - last.finishedAt.getTime())} ago` : '') +
          ` (status exit code ${statusExitCode(report)})`
      : 'Last finished run: none yet',
  );

  lines.push('');
  if (report.runs.length === 0) {
    lines.push('Recent runs: none yet');
  } else {
    lines.push(`Recent runs (newest first, times UTC): ${report.runs.length}`);
    const rows = report.runs.map((run) => [
      String(run.id),
      run.trigger,
      run.status,
      formatTime(run.startedAt),
      runDuration(run, now),
      `${run.usersSynced}/${run.usersNotFound}/${run.usersFailed} of ${run.usersTotal ?? '?'}`,
      `${run.tokensSeen}/${run.tokensAdded}/${run.tokensChanged}/${run.tokensDeleted}`,
      String(run.requests),
      run.tokensEndpoint ?? '-',
      toPrintable(run.error ?? '', 100),
    ]);
    lines.push(
      ...table(
        [
          'id',
          'trigger',
          'status',
          'started',
          'duration',
          'users synced/not found/failed of total',
          'tokens seen/added/changed/deleted',
          'requests',
          'endpoint',
          'error',
        ],
        rows,
        new Set([0, 7]),
      ),
    );
  }

  lines.push('');
  if (report.failingTotal === 0) {
    lines.push('Failing users: none');
  } else {
    const shown = report.failingUsers.length;
    lines.push(
      `Failing users: ${report.failingTotal}` + (shown < report.failingTotal ? ` (showing the ${shown} most recent)` : '') + ', most recent attempt first',
    );
    if (shown > 0) {
      const rows = report.failingUsers.map((user) => [
        toPrintable(user.userId, 80),
        toPrintable(user.errorCode ?? '-', 40),
        formatTime(user.lastAttemptAt),
        user.lastSuccessAt ? formatTime(user.lastSuccessAt) : 'never',
        toPrintable(user.error ?? '', 100),
      ]);
      lines.push(...table(['user', 'error code', 'last attempt', 'last success', 'error'], rows));
    }
  }

  lines.push('');
  const staleness = report.staleness;
  if (!staleness.known) {
    lines.push(`Staleness (source ${toPrintable(staleness.source, 200)}): unknown`);
    lines.push(`  ${toPrintable(staleness.reason, 300)}`);
  } else {
    lines.push(`Staleness (source ${toPrintable(staleness.source, 200)})`);
    const oldest = staleness.oldestSuccessAt
      ? `${formatTime(staleness.oldestSuccessAt)} UTC, ${formatSpan(now.getTime() - staleness.oldestSuccessAt.getTime())} ago` +
        (staleness.oldestSuccessUserId ? ` (${toPrintable(staleness.oldestSuccessUserId, 80)})` : '')
      : 'none yet';
    const rows = [
      ['source users:', String(staleness.sourceUsers)],
      ['never synced:', String(staleness.neverSynced)],
      ['oldest last success:', oldest],
    ];
    lines.push(...rows.map(([label, value]) => `  ${(label ?? '').padEnd(21)}${value}`));
  }
  lines.push('', ...formatDeletions(report.deletions));
  if (report.logs) lines.push('', ...formatLogFollower(report.logs, now));
  return lines;
}

/** Deletions by reason; the unexplained ones called out, as the deletion guard watches them (issue #22). */
function formatDeletions(deletions: RecentDeletions): string[] {
  const window = `the last ${deletions.hours} hours`;
  if (deletions.total === 0) return [`Deletions in ${window}: none`];
  const parts = Object.entries(deletions.byReason).map(([reason, n]) => `${reason} ${n}`);
  const lines = [`Deletions in ${window}: ${deletions.total} (${parts.join(', ')})`];
  if (deletions.unexplained > 0) {
    lines.push(
      `  ${plural(deletions.unexplained, 'unexplained deletion')} in ${window}: no log entry or expiry explains them (the deletion guard counts these); see auth0.refresh_token_deletions`,
    );
  }
  return lines;
}

function formatLogFollower(logs: LogFollowerStatus, now: Date): string[] {
  const lines = [
    `Log follower: checkpoint ${logs.logId}, read ${formatSpan(now.getTime() - logs.updatedAt.getTime())} ago` +
      (logs.lastEntryDate ? `; last entry ${formatTime(logs.lastEntryDate)} UTC, ${formatLag(logs)}` : '; no entry read yet'),
    `  entries read/skipped: ${logs.entriesRead}/${logs.entriesSkipped}`,
    `  users changed since the last full pass: ${logs.usersChangedSinceFullPass}` +
      (logs.lastFullPassAt ? ` (full pass started ${formatTime(logs.lastFullPassAt)} UTC)` : ' (no full pass yet)'),
  ];
  if (logs.fullPassDue && logs.historyLostAt) {
    lines.push(`  full pass due: log history was lost at ${formatTime(logs.historyLostAt)} UTC (${historyLostText(logs.historyLostReason)}); run npm run sync`);
  }
  return lines;
}

/** The lag against the tenant's newest entry, as the follower last saw it. */
function formatLag(logs: LogFollowerStatus): string {
  if (logs.lagSeconds === null) return 'lag -';
  if (logs.lagSeconds === 0) return 'lag 0 (caught up)';
  return `lag ${formatSpan(logs.lagSeconds * 1000)}` + (logs.newestEntryDate ? ` behind the newest entry (${formatTime(logs.newestEntryDate)} UTC)` : '');
}

/** What each history_lost_reason means, for people (status and /healthz). */
export function historyLostText(reason: string | null): string {
  switch (reason) {
    case 'checkpoint_refused':
      return 'the logs endpoint refused the checkpoint: past retention';
    case 'empty_past_checkpoint':
      return 'nothing answered after the checkpoint while the tenant logged past it: past retention';
    case 'retention_gap':
      return 'retention dropped entries after the checkpoint before they were read';
    case null:
      return 'checkpoint past retention';
    default:
      return reason;
  }
}

/**
 * `status --json`: version 2 of the document, `{ version, generatedAt, exitCode, tenants: [...] }`
 * with one object per tenant holding version 1's fields beside `tenant` (issue #23); fields are
 * only ever added. `exitCode` at the top is the worst of the tenants'. Dates are ISO 8601 (UTC).
 */
export function toStatusJson(report: StatusReport): Record<string, unknown> {
  return {
    version: 2,
    generatedAt: report.generatedAt.toISOString(),
    exitCode: statusExitCode(report),
    tenants: report.tenants.map(toTenantJson),
  };
}

function toTenantJson(report: TenantStatus): Record<string, unknown> {
  const iso = (date: Date | null | undefined) => (date ? date.toISOString() : null);
  const run = (r: RunSummary) => ({
    id: r.id,
    trigger: r.trigger,
    status: r.status,
    startedAt: iso(r.startedAt),
    finishedAt: iso(r.finishedAt),
    usersTotal: r.usersTotal,
    usersSynced: r.usersSynced,
    usersNotFound: r.usersNotFound,
    usersFailed: r.usersFailed,
    tokensSeen: r.tokensSeen,
    tokensHeld: r.tokensHeld,
    tokensAdded: r.tokensAdded,
    tokensChanged: r.tokensChanged,
    tokensDeleted: r.tokensDeleted,
    requests: r.requests,
    tokensEndpoint: r.tokensEndpoint,
    error: r.error,
  });
  const { staleness, logs } = report;
  return {
    tenant: report.tenant,
    exitCode: statusExitCode(report),
    lastFinished: report.lastFinished ? run(report.lastFinished) : null,
    runs: report.runs.map(run),
    failingTotal: report.failingTotal,
    failingUsers: report.failingUsers.map((u) => ({
      userId: u.userId,
      errorCode: u.errorCode,
      error: u.error,
      lastAttemptAt: iso(u.lastAttemptAt),
      lastSuccessAt: iso(u.lastSuccessAt),
      lastRunId: u.lastRunId,
    })),
    staleness: staleness.known
      ? {
          known: true,
          source: staleness.source,
          sourceUsers: staleness.sourceUsers,
          neverSynced: staleness.neverSynced,
          oldestSuccessAt: iso(staleness.oldestSuccessAt),
          oldestSuccessUserId: staleness.oldestSuccessUserId,
        }
      : { known: false, source: staleness.source, reason: staleness.reason },
    logFollower: logs
      ? {
          logId: logs.logId,
          lastEntryDate: iso(logs.lastEntryDate),
          lagSeconds: logs.lagSeconds,
          updatedAt: iso(logs.updatedAt),
          entriesRead: logs.entriesRead,
          entriesSkipped: logs.entriesSkipped,
          lastFullPassAt: iso(logs.lastFullPassAt),
          usersChangedSinceFullPass: logs.usersChangedSinceFullPass,
          fullPassDue: logs.fullPassDue,
          historyLostAt: iso(logs.historyLostAt),
          historyLostReason: logs.historyLostReason,
          newestLogId: logs.newestLogId,
          newestEntryDate: iso(logs.newestEntryDate),
        }
      : null,
    deletions: report.deletions,
  };
}
