/**
 * formatStatus and toStatusJson over several tenants (issue #23), on reports built by hand: the
 * sections, their order and headings, the exit code they make together, the JSON's shape.
 */
import { describe, expect, it } from '@jest/globals';
import { formatStatus, toStatusJson } from '../../../src/status/format-status.js';
import { statusExitCode, type RunSummary, type StatusReport, type TenantStatus } from '../../../src/status/read-status.js';

const now = new Date('2026-11-26T12:00:00Z');

function run(id: number, status: RunSummary['status']): RunSummary {
  const zero = { usersSynced: 0, usersNotFound: 0, usersFailed: 0, tokensSeen: 0, tokensHeld: 0, tokensAdded: 0, tokensChanged: 0, tokensDeleted: 0 };
  const sessions = { sessionsSeen: 0, sessionsHeld: 0, sessionsAdded: 0, sessionsDeleted: 0, sessionsUnexplained: 0 };
  return {
    ...zero,
    ...sessions,
    usersGoneUnexplained: 0,
    tokensUnexplained: 0,
    id,
    trigger: 'schedule',
    status,
    startedAt: new Date('2026-11-26T11:00:00Z'),
    finishedAt: new Date('2026-11-26T11:30:00Z'),
    usersTotal: 1,
    requests: 1,
    error: null,
    tokensEndpoint: 'refresh-tokens',
  };
}

function tenant(name: string, last?: RunSummary): TenantStatus {
  return {
    tenant: name,
    runs: last ? [last] : [],
    failingUsers: [],
    failingTotal: 0,
    staleness: { known: true, source: 'auth0.users.user_id', sourceUsers: 1, neverSynced: 0, oldestSuccessAt: null, oldestSuccessUserId: null },
    deletions: { hours: 24, total: 0, byReason: {}, unexplained: 0 },
    ...(last ? { lastFinished: last } : {}),
  };
}

describe('status over several tenants', () => {
  it('exits with the worst tenant: failed over partial over succeeded', () => {
    const report = (...tenants: TenantStatus[]): StatusReport => ({ generatedAt: now, tenants });
    expect(statusExitCode(report())).toBe(0);
    expect(statusExitCode(report(tenant('a', run(1, 'succeeded')), tenant('b')))).toBe(0);
    expect(statusExitCode(report(tenant('a', run(1, 'succeeded')), tenant('b', run(2, 'partial'))))).toBe(2);
    expect(statusExitCode(report(tenant('a', run(1, 'failed')), tenant('b', run(2, 'partial'))))).toBe(1);
    expect(statusExitCode(report(tenant('a', run(1, 'partial')), tenant('b', run(2, 'failed'))))).toBe(1);
  });

  it('heads each section with its tenant, in the report order, and says the code they make together', () => {
    const report: StatusReport = { generatedAt: now, tenants: [tenant('prod-eu', run(1, 'succeeded')), tenant('prod-us', run(2, 'partial'))] };
    const lines = formatStatus(report);
    expect(lines[1]).toBe('Tenants: 2 (prod-eu, prod-us); status exit code 2, the worst of them');
    const headings = lines.filter((line) => line.startsWith('Tenant '));
    expect(headings).toEqual(['Tenant prod-eu', 'Tenant prod-us']);
    expect(lines[lines.indexOf('Tenant prod-eu') + 1]).toBe('Last finished run: #1 succeeded, 30 min ago (status exit code 0)');
    expect(lines[lines.indexOf('Tenant prod-us') + 1]).toBe('Last finished run: #2 partial, 30 min ago (status exit code 2)');
    expect(lines.every((line) => line === line.trimEnd())).toBe(true);
  });

  it('gives JSON version 2: the tenants, each with version 1 fields, and the worst exit code on top', () => {
    const report: StatusReport = { generatedAt: now, tenants: [tenant('prod-eu', run(1, 'failed'))] };
    const json = toStatusJson(report);
    expect(json).toMatchObject({ version: 2, generatedAt: '2026-11-26T12:00:00.000Z', exitCode: 1 });
    expect(json.tenants).toEqual([
      expect.objectContaining({ tenant: 'prod-eu', exitCode: 1, lastFinished: expect.objectContaining({ id: 1, status: 'failed' }), logFollower: null }),
    ]);
    expect(JSON.parse(JSON.stringify(json))).toEqual(json); // plain data, dates as strings
  });
});
