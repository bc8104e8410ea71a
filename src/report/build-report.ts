import type { Kysely } from 'kysely';
import type { Database } from '../warehouse/schema.js';
import { VERSION } from '../core/version.js';
import { CHART_WIDTH, toChartSpecs } from './charts.js';
import { toReportHtml, type RenderedChart } from './page.js';
import { readReportData, type ReportOptions } from './queries.js';
import { preloadECharts, renderSvg } from './render-svg.js';

export interface Report {
  html: string;
  /** Charts drawn (a chart with nothing to draw is not counted). */
  charts: number;
  liveTokens: number;
  /** Milliseconds spent reading and drawing. */
  buildMs: number;
}

/**
 * The report of the warehouse `db` holds, as one self-contained HTML page: aggregates read
 * in SQL (queries.ts), charts drawn to SVG on the server (render-svg.ts), one page (page.ts).
 * Read-only. An empty warehouse gives a page that says so, with no chart. Every tenant the
 * warehouse holds, summed and side by side; `options.tenants` narrows it to some (issue #23).
 */
export async function buildReport(db: Kysely<Database>, options: ReportOptions = {}): Promise<Report> {
  const started = Date.now();
  preloadECharts();
  const data = await readReportData(db, options);
  const empty = data.headline.liveTokens === 0 && data.headline.runs === 0;
  const charts: RenderedChart[] = [];
  for (const spec of toChartSpecs(data)) {
    charts.push({ spec, svg: spec.option && !empty ? await renderSvg(spec.option, CHART_WIDTH, spec.height) : undefined });
  }
  const buildMs = Date.now() - started;
  return {
    html: toReportHtml(data, charts, { version: VERSION, buildMs }),
    charts: charts.filter((c) => c.svg !== undefined).length,
    liveTokens: data.headline.liveTokens,
    buildMs,
  };
}
