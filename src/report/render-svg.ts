/**
 * Draw chart options to SVG strings on the server, with ECharts' server-side renderer (no DOM,
 * no browser): the page carries the pictures inline and needs no script to show them. ECharts
 * is imported here, lazily, and only its bar, line and pie charts: no other command (nor
 * `--help`) pays for loading it.
 */
import type { EChartsOption } from 'echarts';

type Init = (typeof import('echarts/core'))['init'];
let loading: Promise<Init> | undefined;

async function loadECharts(): Promise<Init> {
  // One after another: they share zrender's modules, and Jest's ESM loader fails on concurrent imports of one module.
  const core = await import('echarts/core');
  const charts = await import('echarts/charts');
  const components = await import('echarts/components');
  const renderers = await import('echarts/renderers');
  core.use([charts.BarChart, charts.LineChart, charts.PieChart, components.GridComponent, components.LegendComponent, renderers.SVGRenderer]);
  return core.init;
}

/** Start loading ECharts now (it takes a moment), so the load overlaps the queries. */
export function preloadECharts(): void {
  (loading ??= loadECharts()).catch(() => {}); // a failure shows again when renderSvg awaits it
}

/**
 * One chart as an SVG document (`<svg …>…</svg>`), `width` × `height` pixels, animation off.
 * Text in it (category names, labels) is escaped by ECharts. The chart instance is disposed.
 */
export async function renderSvg(option: EChartsOption, width: number, height: number): Promise<string> {
  const init = await (loading ??= loadECharts());
  const chart = init(null, null, { renderer: 'svg', ssr: true, width, height });
  try {
    chart.setOption({ ...option, animation: false });
    return chart.renderToSVGString();
  } finally {
    chart.dispose();
  }
}
