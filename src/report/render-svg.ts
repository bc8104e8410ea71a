/**
 * Draw chart options to SVG strings on the server, with ECharts' server-side renderer (no DOM,
 * no browser): the page carries the pictures inline and needs no script to show them. ECharts
 * is imported here, lazily, and only its bar, line and pie charts, grid and legend: no other
 * command (nor `--help`) pays for loading it.
 */
import type { EChartsOption } from 'echarts';

type Init = (typeof import('echarts/core'))['init'];
let loading: Promise<Init> | undefined;

/**
 * ECharts' own modules for what the report draws: each registers itself when imported (the
 * renderer through `use`). Half the load of the `echarts/charts` and `echarts/components`
 * indexes, which import every chart and component there is.
 */
const MODULES = [
  'echarts/lib/chart/bar.js',
  'echarts/lib/chart/line.js',
  'echarts/lib/chart/pie.js',
  'echarts/lib/component/gridSimple.js',
  'echarts/lib/component/legendPlain.js',
];

async function loadECharts(): Promise<Init> {
  const core = await import('echarts/core');
  // One after another: they share zrender's modules, and Jest's ESM loader fails on concurrent imports of one module.
  for (const name of MODULES) await import(name);
  const renderer = (await import('echarts/lib/renderer/installSVGRenderer.js' as string)) as { install: Parameters<typeof core.use>[0] };
  core.use(renderer.install);
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
