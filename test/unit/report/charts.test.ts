import { describe, expect, it } from '@jest/globals';
import { toChartSpecs, toLabel } from '../../../src/report/charts.js';
import { emptyReportData } from './fixture.js';

describe('toChartSpecs', () => {
  it('lists the top applications and sums the rest into one table row, not a bar', () => {
    const data = emptyReportData();
    data.headline.liveTokens = 110;
    data.perClient = {
      top: [
        { name: 'app-a', tokens: 60 },
        { name: null, tokens: 20 },
      ],
      rest: 30,
      restCount: 3,
    };
    const spec = toChartSpecs(data).find((s) => s.id === 'per-client')!;
    expect(spec.table.rows).toEqual([
      ['app-a', 60, '55%'],
      ['(none)', 20, '18%'],
      ['(3 other applications)', 30, '27%'],
    ]);
    expect(spec.reading).toBe('The 2 largest of 5 applications hold 73% of 110; the largest, app-a, 60.');
    const yAxis = spec.option!.yAxis as { data: string[] };
    expect(yAxis.data).toEqual(['(none)', 'app-a']); // largest at the top of a horizontal bar chart
  });

  it('reads the change history: totals, the last week and the worst day', () => {
    const data = emptyReportData();
    data.changesPerDay[80] = { day: data.changesPerDay[80]!.day, created: 5, deleted: 40 };
    data.changesPerDay[89] = { day: data.changesPerDay[89]!.day, created: 7, deleted: 1 };
    const spec = toChartSpecs(data).find((s) => s.id === 'changes')!;
    expect(spec.reading).toBe(
      `12 created and 41 deleted in 90 days (last 7 days: 7 created, 1 deleted); most deletions on ${data.changesPerDay[80]!.day} (40).`,
    );
    expect(spec.table.rows).toHaveLength(2);
  });

  it('reads sync health: runs that did not succeed, the longest run as a duration', () => {
    const data = emptyReportData();
    const day = { succeeded: 0, partial: 0, failed: 0, interrupted: 0, running: 0, requests: 10, usersFailed: 0 };
    data.runsPerDay = [
      { ...day, day: '2026-12-02', succeeded: 20, failed: 1, medianSeconds: 12, maxSeconds: 2400, usersFailed: 3 },
      { ...day, day: '2026-12-03', succeeded: 24, partial: 2, medianSeconds: 18.04, maxSeconds: 30 },
    ];
    const specs = toChartSpecs(data);
    expect(specs.find((s) => s.id === 'runs')!.reading).toBe('3 of 47 runs in 30 days did not succeed (1 failed, 2 partial, 0 interrupted).');
    expect(specs.find((s) => s.id === 'duration')!.reading).toBe("The longest run took 40 min (on 2026-12-02); the latest day's median was 18 s.");
    expect(specs.find((s) => s.id === 'requests')!.reading).toBe('20 requests in 30 days; 3 user syncs failed.');
    const runs = specs.find((s) => s.id === 'runs')!.option!.series as { name: string }[];
    expect(runs.map((s) => s.name)).toEqual(['succeeded', 'partial', 'failed']); // outcomes that never happened get no legend entry
  });

  it('draws live tokens per tenant only for two tenants or more, largest first', () => {
    const data = emptyReportData();
    const tenant = { users: 1, applications: 1, expiringSoon: 0, unused: 0, locationChanged: 0, unexplained24h: 0, liveSessions: 0, runs: 1 };
    data.perTenant = [{ ...tenant, tenant: 'prod-eu', liveTokens: 30, lastSuccessAt: null, freshnessSeconds: null }];
    expect(toChartSpecs(data).find((s) => s.id === 'per-tenant')).toBeUndefined();
    data.perTenant.push({ ...tenant, tenant: 'prod-us', liveTokens: 90, users: 4, lastSuccessAt: null, freshnessSeconds: null });
    const two = toChartSpecs(data).find((s) => s.id === 'per-tenant')!;
    expect(two.reading).toBe('2 tenants; the largest, prod-us, holds 90 of 120 live tokens (75%).');
    expect(two.table.rows).toEqual([
      ['prod-us', 90, '75%', 4, 1],
      ['prod-eu', 30, '25%', 1, 1],
    ]);
    expect((two.option!.yAxis as { data: string[] }).data).toEqual(['prod-eu', 'prod-us']);
  });

  it('makes labels printable and short', () => {
    expect(toLabel('a\u001b[31mb\u0000c')).toBe('abc');
    expect(toLabel('x'.repeat(100))).toHaveLength(40);
    expect(toLabel('   ')).toBe('(blank)');
    expect(toLabel(null)).toBe('(none)');
  });
});
