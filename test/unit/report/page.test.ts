import { describe, expect, it } from '@jest/globals';
import { CHART_WIDTH, toChartSpecs } from '../../../src/report/charts.js';
import { escapeHtml, showId, toReportHtml, type RenderedChart } from '../../../src/report/page.js';
import { renderSvg } from '../../../src/report/render-svg.js';
import type { ReportData } from '../../../src/report/queries.js';
import { emptyReportData, HOSTILE, hostileReportData } from './fixture.js';

/** The page as build-report.ts makes it: every chart with something to draw drawn by ECharts. */
async function pageOf(data: ReportData): Promise<{ html: string; charts: RenderedChart[] }> {
  const charts: RenderedChart[] = [];
  for (const spec of toChartSpecs(data)) charts.push({ spec, svg: spec.option ? await renderSvg(spec.option, CHART_WIDTH, spec.height) : undefined });
  return { html: toReportHtml(data, charts, { version: '0.0.0-test', buildMs: 5 }), charts };
}

describe('the report page', () => {
  it('shows hostile names from Auth0 as text: no script, no event handler, no tag of theirs', async () => {
    const { html, charts } = await pageOf(hostileReportData());
    expect(charts.every((c) => c.svg !== undefined)).toBe(true); // every chart drawn, none refused
    expect(html).not.toMatch(/<script/i);
    expect(html).not.toMatch(/<img/i);
    expect(html).not.toMatch(/<[^>]*\son\w+\s*=/i); // an event handler in a tag
    expect(html.match(/<svg/g)?.length).toBe(charts.length); // and the page shows each
    expect(html).not.toContain('\u001b');
    // In the tables (and the risk rows), as escaped text the reader sees.
    expect(html).toContain(escapeHtml(HOSTILE));
    expect(html).toContain('&lt;img src=x onerror=alert(2)&gt;');
    // In the pictures too: ECharts escapes the labels it draws.
    const svg = charts.find((c) => c.spec.id === 'per-client')!.svg!;
    expect(svg).toContain('&lt;script&gt;');
    // Nothing is fetched: no URL the browser would load, and a policy that forbids it anyway.
    expect(html).not.toMatch(/\s(src|href)\s*=\s*["']?(https?:)?\/\//i);
    expect(html).toContain(`default-src 'none'`);
  });

  it('with several tenants: a row per tenant, and each risk row says whose it is', async () => {
    const { html } = await pageOf(hostileReportData());
    expect(html).toContain('<table id="tenants">');
    expect(html).toContain('<tr data-tenant="prod-eu"><td><code>prod-eu</code></td><td class="n">2</td>');
    expect(html).toContain(`<tr data-tenant="${escapeHtml(HOSTILE)}">`);
    expect(html).toContain(`Every tenant (2): <code>prod-eu</code>, <code>${escapeHtml(HOSTILE)}</code>.`);
    expect(html).toMatch(/<figure id="risk-unused"[^]*?<th>tenant<\/th><th>token<\/th>[^]*?<td><code>prod-eu<\/code><\/td>/);
    expect(html).toContain('Log follower of <code>prod-eu</code>: 12 s behind');

    const one = hostileReportData();
    one.perTenant = one.perTenant.slice(0, 1);
    const single = (await pageOf(one)).html;
    expect(single).not.toContain('id="tenants"');
    expect(single).toContain('Tenant <code>prod-eu</code>.');
    expect(single).toMatch(/<figure id="risk-unused"[^]*?<thead><tr><th>token<\/th>/);

    one.tenants = ['prod-eu'];
    expect((await pageOf(one)).html).toContain('Tenants <code>prod-eu</code> only.');
  });

  it('shows IDs shortened and escaped', () => {
    expect(showId('rt_0123456789abcdef0123456789')).toBe('<code>rt_01234…456789</code>');
    expect(showId(`${HOSTILE}${'x'.repeat(30)}`)).toBe('<code>&lt;script&gt;…xxxxxx</code>');
    expect(showId('auth0|user000001')).toBe('<code>auth0|user000001</code>');
    expect(showId(null)).toContain('none');
  });

  it('says an empty warehouse is empty instead of drawing empty charts', async () => {
    const { html, charts } = await pageOf(emptyReportData());
    expect(charts.every((c) => c.spec.option === undefined)).toBe(true);
    expect(html).toContain('id="empty"');
    expect(html).toContain('The warehouse is empty');
    expect(html).not.toContain('<svg');
    expect(html).toContain('data-headline="live-tokens">0<');
    expect(html).toContain('data-headline="last-success">never<');
  });

  it('gives each chart a title, a reading and its numbers as a table', async () => {
    const { html, charts } = await pageOf(hostileReportData());
    expect(charts.length).toBeGreaterThanOrEqual(14);
    for (const { spec } of charts) {
      expect(spec.title).not.toBe('');
      expect(spec.reading).toMatch(/\.$/);
      expect(html).toContain(`data-chart="${spec.id}"`);
    }
    expect(html.match(/<details>/g)?.length).toBe(charts.length);
    expect(charts.find((c) => c.spec.id === 'rotating')!.spec.reading).toBe(
      '67% of live tokens do not rotate: a stolen one stays usable until it expires or is revoked.',
    );
    expect(charts.find((c) => c.spec.id === 'per-client')!.spec.table.rows).toEqual([[HOSTILE, 3, '100%']]);
  });
});
