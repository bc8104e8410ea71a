import { describe, expect, it } from '@jest/globals';
import { toChartSpecs } from '../../../src/report/charts.js';
import { toReportHtml } from '../../../src/report/page.js';
import { emptyReportData } from './fixture.js';

const page = (data: ReturnType<typeof emptyReportData>) =>
  toReportHtml(
    data,
    toChartSpecs(data).map((spec) => ({ spec, svg: undefined })),
    { version: 'test', buildMs: 10 },
  );

describe('deletions by reason and sessions (issue #21, #22)', () => {
  it('stacks deletions per day by reason, known reasons first, and calls out the unexplained ones', () => {
    const data = emptyReportData();
    data.deletionsPerDay[20] = { day: data.deletionsPerDay[20]!.day, reasons: { revoked_by_user: 5, unexplained: 2 } };
    data.deletionsPerDay[29] = { day: data.deletionsPerDay[29]!.day, reasons: { expired: 1, unrecorded: 1, brand_new: 1 } };
    const spec = toChartSpecs(data).find((s) => s.id === 'deletions-by-reason')!;
    expect(spec.reading).toBe(
      '10 deletions in 30 days, most revoked_by_user (5); 2 unexplained (20%): no log entry says why, and they are what the deletion guard watches.',
    );
    const series = spec.option!.series as { name: string; stack: string; data: number[] }[];
    expect(series.map((s) => s.name)).toEqual(['unexplained', 'revoked_by_user', 'expired', 'unrecorded', 'brand_new']);
    expect(series.every((s) => s.stack === 'deletions' && s.data.length === 30)).toBe(true);
    expect(series[0]!.data[20]).toBe(2);
    expect(spec.table.head).toEqual(['day (UTC)', 'unexplained', 'revoked_by_user', 'expired', 'unrecorded', 'brand_new']);
    expect(spec.table.rows).toEqual([
      [data.deletionsPerDay[20]!.day, 2, 5, 0, 0, 0],
      [data.deletionsPerDay[29]!.day, 0, 0, 1, 1, 1],
    ]);
  });

  it('says when nothing was deleted, and when none was unexplained', () => {
    const data = emptyReportData();
    expect(toChartSpecs(data).find((s) => s.id === 'deletions-by-reason')!).toMatchObject({
      option: undefined,
      reading: 'No token was deleted in the last 30 days, as far as the change history saw.',
    });
    data.deletionsPerDay[3] = { day: data.deletionsPerDay[3]!.day, reasons: { pruned: 4 } };
    expect(toChartSpecs(data).find((s) => s.id === 'deletions-by-reason')!.reading).toBe('4 deletions in 30 days, most pruned (4); none unexplained.');
  });

  it('draws live sessions per application with and without a second factor when the warehouse holds sessions', () => {
    const data = emptyReportData();
    data.sessionsHeld = true;
    Object.assign(data.headline, { liveSessions: 9, outlivingSession: 2, withoutSecondFactor: 3 });
    data.sessionsPerClient = [
      { clientId: 'app-a', sessions: 6, withoutSecondFactor: 2 },
      { clientId: null, sessions: 3, withoutSecondFactor: 0 },
    ];
    const spec = toChartSpecs(data).find((s) => s.id === 'sessions-per-client')!;
    expect(spec.section).toBe('sessions');
    expect(spec.reading).toBe(
      '9 live sessions; 2 live tokens outlive their session and 3 come from a session with no second factor; 2 of the sessions below saw no second factor.',
    );
    const series = spec.option!.series as { name: string; data: number[] }[];
    expect(series.map((s) => [s.name, s.data])).toEqual([
      ['second factor', [3, 4]], // largest at the top of a horizontal bar chart
      ['no second factor', [0, 2]],
    ]);
    expect(spec.table.rows).toEqual([
      ['app-a', 6, 2],
      ['(none)', 3, 0],
    ]);
    const html = page(data);
    expect(html).toContain('data-headline="live-sessions">9<');
    expect(html).toContain('data-headline="outliving-session">2<');
    expect(html).not.toContain('id="no-sessions"');
  });

  it('says in one line that no session is held instead of drawing empty charts', () => {
    const data = emptyReportData();
    data.headline.runs = 1; // not the empty-warehouse page
    expect(toChartSpecs(data).some((s) => s.section === 'sessions')).toBe(false);
    const html = page(data);
    expect(html.match(/id="no-sessions"/g)).toHaveLength(1);
    expect(html).toContain('data-headline="live-sessions">not synced<');
    expect(html).toContain('data-headline="without-second-factor">not synced<');
  });

  it('shows unexplained deletions of the last 24 hours and the freshness lag as status defines it', () => {
    const data = emptyReportData();
    data.headline.runs = 1;
    data.headline.unexplained24h = 3;
    expect(page(data)).toContain('<div class="alert"><dt>unexplained deletions (24 h)</dt><dd data-headline="unexplained-24h">3</dd></div>');
    expect(page(data)).toContain('data-headline="freshness">no user synced<');
    data.headline.freshnessSeconds = 5400;
    expect(page(data)).toContain(`data-headline="freshness">1 h 30 min<`);
  });
});
