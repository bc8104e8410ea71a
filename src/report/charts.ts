/**
 * The report's charts as data: for each, a title, a one-line reading, an ECharts option and the
 * same numbers as a table. Pure (no ECharts here: render-svg.ts draws the options), so the
 * charts can be tested without rendering and the page without a chart library.
 */
import type { EChartsOption } from 'echarts';
import { formatDuration } from '../core/duration.js';
import { toPrintable } from '../core/upstream-text.js';
import { plural } from '../core/wording.js';
import type { Ranked, ReportData, RunDay } from './queries.js';

export type Section = 'tokens' | 'sessions' | 'networks' | 'sync';

export interface ChartSpec {
  /** Stable, for anchors and tests. */
  id: string;
  section: Section;
  title: string;
  /** One sentence: what the chart shows, read for the reader. */
  reading: string;
  /** The chart; undefined when there is nothing to draw (`reading` then says so). */
  option: EChartsOption | undefined;
  /** Height in pixels (the width is the page's). */
  height: number;
  table: { head: string[]; rows: (string | number)[][] };
}

/** Histogram buckets of queries.ts, by index. */
const AGE_BUCKETS = ['< 1 day', '1–7 days', '7–30 days', '30–90 days', '90–180 days', '180 days–1 year', '≥ 1 year', 'unknown'];
const LEFT_BUCKETS = ['< 1 day', '1–7 days', '7–30 days', '30–90 days', '90–180 days', '180 days–1 year', '≥ 1 year', 'never'];

const WIDE = 900;
export const CHART_WIDTH = WIDE;
const BLUE = '#3b6fb6';
const RED = '#c8453b';
const GREEN = '#3f8f4f';
const AMBER = '#d9962b';
const GREY = '#8a8f98';
const TEXT = { color: '#222', fontFamily: 'sans-serif' } as const;

/** An upstream name (an application, an audience, an ASN) as a chart label: printable, short, never empty. */
export function toLabel(name: string | null | undefined, max = 40): string {
  if (name === null || name === undefined) return '(none)';
  const text = toPrintable(name, max);
  return text.trim() === '' ? '(blank)' : text;
}

const fmt = (n: number) => n.toLocaleString('en-US');
const pct = (part: number, whole: number) => (whole === 0 ? '0%' : `${Math.round((part / whole) * 100)}%`);

/** Every chart of the report, in page order. */
export function toChartSpecs(data: ReportData): ChartSpec[] {
  const live = data.headline.liveTokens;
  return [
    // With one tenant its name heads the page and a bar would repeat the headline.
    ...(data.perTenant.length > 1 ? [tenantsChart(data)] : []),
    rankedChart('per-client', 'tokens', 'Live tokens per application', data.perClient, 'application (client_id)', live, 'applications'),
    rankedChart('per-audience', 'tokens', 'Live tokens per resource server (audience)', data.perAudience, 'audience', live, 'audiences'),
    changesChart(data),
    deletionsChart(data),
    histogramChart('age', 'Age of live tokens', AGE_BUCKETS, data.ageBuckets, 'age', 'created', live),
    histogramChart('expiry', 'Time left before absolute expiry', LEFT_BUCKETS, data.expiryBuckets, 'time left', 'expire', live),
    histogramChart('idle-expiry', 'Time left before idle expiry', LEFT_BUCKETS, data.idleExpiryBuckets, 'time left', 'idle-expire', live),
    pieChart(
      'rotating',
      'tokens',
      'Rotating vs non-rotating tokens',
      [
        ['rotating', data.rotating.rotating, GREEN],
        ['non-rotating', data.rotating.nonRotating, AMBER],
        ['unknown', data.rotating.unknown, GREY],
      ],
      live === 0
        ? 'No live tokens.'
        : `${pct(data.rotating.nonRotating, live)} of live tokens do not rotate: a stolen one stays usable until it expires or is revoked.`,
    ),
    pieChart(
      'sessions',
      'tokens',
      'Tokens with and without a session',
      [
        ['with a session', data.sessions.withSession, BLUE],
        ['no session', data.sessions.withoutSession, AMBER],
      ],
      live === 0
        ? 'No live tokens.'
        : `${fmt(data.sessions.withoutSession)} live tokens (${pct(data.sessions.withoutSession, live)}) are bound to no session: logging out does not end them.`,
    ),
    // Sessions charts only when the warehouse holds sessions: the page says so in one line otherwise.
    ...(data.sessionsHeld ? [sessionsPerClientChart(data)] : []),
    rankedChart('first-asn', 'networks', 'Top networks (ASN) of first use', data.firstAsns, 'ASN', live, 'networks'),
    rankedChart('last-asn', 'networks', 'Top networks (ASN) of last use', data.lastAsns, 'ASN', live, 'networks'),
    movesChart(data),
    runsChart(data.runsPerDay),
    durationChart(data.runsPerDay),
    requestsChart(data.runsPerDay),
  ];
}

/** Horizontal bars, one row per label (ranked lists): what every such chart's options share. */
function barsAcross(labels: string[], series: EChartsOption['series'], options: { labelWidth?: number; legend?: boolean } = {}): EChartsOption {
  return {
    animation: false,
    textStyle: TEXT,
    ...(options.legend ? { legend: { top: 0 } } : {}),
    grid: { left: 10, right: 60, top: options.legend ? 30 : 10, bottom: 20 },
    xAxis: { type: 'value', minInterval: 1 },
    yAxis: { type: 'category', data: labels, axisLabel: { width: options.labelWidth ?? 260, overflow: 'truncate', interval: 0 } },
    series,
  };
}

/** One column per UTC day (its date as MM-DD), a legend above: what every daily chart's options share. */
function perDay(
  days: readonly { day: string }[],
  series: EChartsOption['series'],
  options: { labelEvery?: number; yAxis?: EChartsOption['yAxis'] } = {},
): EChartsOption {
  return {
    animation: false,
    textStyle: TEXT,
    legend: { top: 0 },
    grid: { left: 10, right: 20, top: 36, bottom: 10 },
    xAxis: { type: 'category', data: days.map((d) => d.day.slice(5)), ...(options.labelEvery ? { axisLabel: { interval: options.labelEvery } } : {}) },
    yAxis: options.yAxis ?? { type: 'value', minInterval: 1 },
    series,
  };
}

function rankedChart(id: string, section: Section, title: string, ranked: Ranked, what: string, live: number, kinds: string): ChartSpec {
  const top = ranked.top.map((e) => ({ label: toLabel(e.name), tokens: e.tokens }));
  const rest =
    ranked.restCount > 0 ? [{ label: `(${plural(ranked.restCount, `other ${kinds.replace(/s$/, '')}`, `other ${kinds}`)})`, tokens: ranked.rest }] : [];
  const total = [...top, ...rest].reduce((sum, e) => sum + e.tokens, 0);
  const first = top[0];
  const unknown = id === 'per-audience' ? 0 : live - total;
  const reading =
    first === undefined
      ? `Nothing to show: no live token has ${what === 'ASN' ? 'a network recorded' : `an ${what}`}.`
      : (ranked.restCount > 0
          ? `The ${top.length} largest of ${fmt(top.length + ranked.restCount)} ${kinds} hold ${pct(total - ranked.rest, total)} of ${fmt(total)}; the largest, ${first.label}, ${fmt(first.tokens)}`
          : `${first.label} holds ${fmt(first.tokens)} of ${fmt(total)} (${pct(first.tokens, total)})`) +
        (unknown > 0 ? `; ${fmt(unknown)} live tokens have none recorded.` : '.');
  // Largest at the top (a horizontal bar chart lists its categories bottom-up); the rest is in the table, not a bar.
  const shown = [...top].reverse();
  return {
    id,
    section,
    title,
    reading,
    height: Math.max(140, 40 + 26 * top.length),
    option:
      first === undefined
        ? undefined
        : barsAcross(
            shown.map((e) => e.label),
            [{ type: 'bar', data: shown.map((e) => e.tokens), barMaxWidth: 28, itemStyle: { color: BLUE }, label: { show: true, position: 'right' } }],
          ),
    table: { head: [what, 'live tokens', 'share'], rows: [...top, ...rest].map((e) => [e.label, e.tokens, pct(e.tokens, total)]) },
  };
}

/** Live tokens per tenant (issue #23), largest first; drawn for two tenants or more. */
function tenantsChart(data: ReportData): ChartSpec {
  const tenants = [...data.perTenant].sort((a, b) => b.liveTokens - a.liveTokens || a.tenant.localeCompare(b.tenant));
  const total = tenants.reduce((sum, t) => sum + t.liveTokens, 0);
  const first = tenants[0]!;
  const shown = [...tenants].reverse();
  return {
    id: 'per-tenant',
    section: 'tokens',
    title: 'Live tokens per tenant',
    reading: `${fmt(tenants.length)} tenants; the largest, ${toLabel(first.tenant)}, holds ${fmt(first.liveTokens)} of ${fmt(total)} live tokens (${pct(first.liveTokens, total)}).`,
    height: Math.max(140, 40 + 26 * tenants.length),
    option: barsAcross(
      shown.map((t) => toLabel(t.tenant)),
      [{ type: 'bar', data: shown.map((t) => t.liveTokens), barMaxWidth: 28, itemStyle: { color: BLUE }, label: { show: true, position: 'right' } }],
      { labelWidth: 160 },
    ),
    table: {
      head: ['tenant', 'live tokens', 'share', 'users', 'applications'],
      rows: tenants.map((t) => [toLabel(t.tenant), t.liveTokens, pct(t.liveTokens, total), t.users, t.applications]),
    },
  };
}

function changesChart(data: ReportData): ChartSpec {
  const days = data.changesPerDay;
  const created = days.reduce((s, d) => s + d.created, 0);
  const deleted = days.reduce((s, d) => s + d.deleted, 0);
  const last7 = days.slice(-7);
  const busiest = [...days].sort((a, b) => b.deleted - a.deleted)[0];
  const reading =
    created + deleted === 0
      ? 'No token was created or deleted in the last 90 days, as far as the change history saw.'
      : `${fmt(created)} created and ${fmt(deleted)} deleted in 90 days (last 7 days: ${fmt(last7.reduce((s, d) => s + d.created, 0))} created, ` +
        `${fmt(last7.reduce((s, d) => s + d.deleted, 0))} deleted)` +
        (busiest && busiest.deleted > 0 ? `; most deletions on ${busiest.day} (${fmt(busiest.deleted)}).` : '.');
  return {
    id: 'changes',
    section: 'tokens',
    title: 'Tokens created and deleted per day (last 90 days)',
    reading,
    height: 300,
    option:
      created + deleted === 0
        ? undefined
        : perDay(
            days,
            [
              { name: 'created', type: 'bar', data: days.map((d) => d.created), itemStyle: { color: BLUE } },
              { name: 'deleted', type: 'bar', data: days.map((d) => d.deleted), itemStyle: { color: RED } },
            ],
            { labelEvery: 13 },
          ),
    table: { head: ['day (UTC)', 'created', 'deleted'], rows: days.filter((d) => d.created + d.deleted > 0).map((d) => [d.day, d.created, d.deleted]) },
  };
}

/** Deletion reasons (refresh_token_changes.reason), in legend order; `unexplained` is what the deletion guard watches. */
const REASONS: [string, string][] = [
  ['unexplained', RED],
  ['revoked_by_user', BLUE],
  ['revoked_by_api', '#6f4fb0'],
  ['reuse_detected', '#8b1e3f'],
  ['session_revoked', '#4fa3b0'],
  ['user_deleted', '#5b5b5b'],
  ['pruned', AMBER],
  ['expired', GREEN],
  ['unrecorded', GREY],
];

function deletionsChart(data: ReportData): ChartSpec {
  const days = data.deletionsPerDay;
  // Reasons this build does not know yet still show, after the known ones.
  const seen = new Set(days.flatMap((d) => Object.keys(d.reasons)));
  const reasons: [string, string][] = [
    ...REASONS.filter(([r]) => seen.has(r)),
    ...[...seen]
      .filter((r) => !REASONS.some(([k]) => k === r))
      .sort()
      .map((r): [string, string] => [r, GREY]),
  ];
  const sum = (reason: string) => days.reduce((s, d) => s + (d.reasons[reason] ?? 0), 0);
  const total = reasons.reduce((s, [r]) => s + sum(r), 0);
  const unexplained = sum('unexplained');
  const top = [...reasons].sort((a, b) => sum(b[0]) - sum(a[0]))[0];
  const reading =
    total === 0
      ? 'No token was deleted in the last 30 days, as far as the change history saw.'
      : `${fmt(total)} deletions in 30 days, most ${toLabel(top![0], 30)} (${fmt(sum(top![0]))}); ` +
        (unexplained === 0
          ? 'none unexplained.'
          : `${fmt(unexplained)} unexplained (${pct(unexplained, total)}): no log entry says why, and they are what the deletion guard watches.`);
  return {
    id: 'deletions-by-reason',
    section: 'tokens',
    title: 'Deletions per day by reason (last 30 days)',
    reading,
    height: 300,
    option:
      total === 0
        ? undefined
        : perDay(
            days,
            reasons.map(([reason, color]) => ({
              name: toLabel(reason, 30),
              type: 'bar' as const,
              stack: 'deletions',
              barMaxWidth: 24,
              data: days.map((d) => d.reasons[reason] ?? 0),
              itemStyle: { color },
            })),
            { labelEvery: 6 },
          ),
    table: {
      head: ['day (UTC)', ...reasons.map(([r]) => toLabel(r, 30))],
      rows: days.filter((d) => Object.keys(d.reasons).length > 0).map((d) => [d.day, ...reasons.map(([r]) => d.reasons[r] ?? 0)]),
    },
  };
}

function sessionsPerClientChart(data: ReportData): ChartSpec {
  const rows = data.sessionsPerClient.map((r) => ({ label: toLabel(r.clientId), sessions: r.sessions, without: r.withoutSecondFactor }));
  const h = data.headline;
  const without = rows.reduce((s, r) => s + r.without, 0);
  const reading =
    h.liveSessions === 0
      ? 'No live session.'
      : `${fmt(h.liveSessions)} live sessions; ${fmt(h.outlivingSession)} live tokens outlive their session and ${fmt(h.withoutSecondFactor)} come from a session with no second factor` +
        (without > 0 ? `; ${fmt(without)} of the sessions below saw no second factor.` : '.');
  const shown = [...rows].reverse();
  return {
    id: 'sessions-per-client',
    section: 'sessions',
    title: 'Live sessions per application, with and without a second factor',
    reading,
    height: Math.max(140, 40 + 26 * rows.length),
    option:
      rows.length === 0
        ? undefined
        : barsAcross(
            shown.map((r) => r.label),
            [
              {
                name: 'second factor',
                type: 'bar',
                stack: 'sessions',
                data: shown.map((r) => r.sessions - r.without),
                barMaxWidth: 28,
                itemStyle: { color: GREEN },
              },
              { name: 'no second factor', type: 'bar', stack: 'sessions', data: shown.map((r) => r.without), barMaxWidth: 28, itemStyle: { color: AMBER } },
            ],
            { legend: true },
          ),
    table: { head: ['application (client_id)', 'live sessions', 'no second factor'], rows: rows.map((r) => [r.label, r.sessions, r.without]) },
  };
}

function histogramChart(id: string, title: string, labels: string[], counts: number[], what: string, verb: string, live: number): ChartSpec {
  const total = counts.reduce((s, n) => s + n, 0);
  const soon = (counts[0] ?? 0) + (counts[1] ?? 0);
  const reading =
    total === 0
      ? 'No live tokens.'
      : id === 'age'
        ? `${pct(
            counts.slice(4, 7).reduce((s, n) => s + n, 0),
            live,
          )} of live tokens were created 90 days ago or more; ${pct(soon, live)} in the last 7 days.`
        : `${fmt(soon)} live tokens (${pct(soon, live)}) ${verb} within 7 days; ${fmt(counts[7] ?? 0)} never do.`;
  return {
    id,
    section: 'tokens',
    title,
    reading,
    height: 260,
    option:
      total === 0
        ? undefined
        : {
            animation: false,
            textStyle: TEXT,
            grid: { left: 10, right: 20, top: 20, bottom: 10 },
            xAxis: { type: 'category', data: labels, axisLabel: { interval: 0 } },
            yAxis: { type: 'value', minInterval: 1 },
            series: [{ type: 'bar', data: counts, barMaxWidth: 60, itemStyle: { color: BLUE }, label: { show: true, position: 'top' } }],
          },
    table: { head: [what, 'live tokens'], rows: labels.map((label, i) => [label, counts[i] ?? 0]) },
  };
}

function pieChart(id: string, section: Section, title: string, parts: [string, number, string][], reading: string): ChartSpec {
  const total = parts.reduce((s, [, n]) => s + n, 0);
  return {
    id,
    section,
    title,
    reading,
    height: 240,
    option:
      total === 0
        ? undefined
        : {
            animation: false,
            textStyle: TEXT,
            legend: { orient: 'vertical', left: 10, top: 'middle' },
            series: [
              {
                type: 'pie',
                radius: ['35%', '70%'],
                center: ['60%', '50%'],
                label: { formatter: '{b}: {c} ({d}%)' },
                data: parts.filter(([, n]) => n > 0).map(([name, value, color]) => ({ name, value, itemStyle: { color } })),
              },
            ],
          },
    table: { head: ['kind', 'live tokens', 'share'], rows: parts.map(([name, n]) => [name, n, pct(n, total)]) },
  };
}

function movesChart(data: ReportData): ChartSpec {
  const moves = data.asnMoves.map((m) => ({ label: `${toLabel(m.from, 20)} → ${toLabel(m.to, 20)}`, tokens: m.tokens }));
  const changed = data.headline.asnChanged;
  const shown = [...moves].reverse();
  return {
    id: 'asn-moves',
    section: 'networks',
    title: 'Tokens whose last network differs from the first',
    reading:
      changed === 0
        ? 'No live token is used from another network (ASN) than the one it was issued to.'
        : `${fmt(changed)} live tokens (${pct(changed, data.headline.liveTokens)}) are now used from another network than the one they were issued to; the most frequent moves below.`,
    height: Math.max(140, 40 + 26 * moves.length),
    option:
      moves.length === 0
        ? undefined
        : barsAcross(
            shown.map((m) => m.label),
            [{ type: 'bar', data: shown.map((m) => m.tokens), barMaxWidth: 28, itemStyle: { color: RED }, label: { show: true, position: 'right' } }],
            { labelWidth: 300 },
          ),
    table: { head: ['first ASN → last ASN', 'live tokens'], rows: moves.map((m) => [m.label, m.tokens]) },
  };
}

const OUTCOMES = [
  ['succeeded', GREEN],
  ['partial', AMBER],
  ['failed', RED],
  ['interrupted', GREY],
  ['running', BLUE],
] as const;

function runsChart(days: RunDay[]): ChartSpec {
  const sum = (key: (typeof OUTCOMES)[number][0]) => days.reduce((s, d) => s + d[key], 0);
  const runs = OUTCOMES.reduce((s, [key]) => s + sum(key), 0);
  const bad = sum('failed') + sum('partial') + sum('interrupted');
  return {
    id: 'runs',
    section: 'sync',
    title: 'Sync runs per day by outcome (last 30 days)',
    reading:
      runs === 0
        ? 'No sync run in the last 30 days.'
        : bad === 0
          ? `All ${fmt(runs)} runs of the last 30 days succeeded.`
          : `${fmt(bad)} of ${fmt(runs)} runs in 30 days did not succeed (${sum('failed')} failed, ${sum('partial')} partial, ${sum('interrupted')} interrupted).`,
    height: 280,
    option:
      runs === 0
        ? undefined
        : perDay(
            days,
            OUTCOMES.filter(([key]) => sum(key) > 0).map(([key, color]) => ({
              name: key,
              type: 'bar' as const,
              stack: 'runs',
              barMaxWidth: 40,
              data: days.map((d) => d[key]),
              itemStyle: { color },
            })),
          ),
    table: { head: ['day (UTC)', ...OUTCOMES.map(([key]) => key)], rows: days.map((d) => [d.day, ...OUTCOMES.map(([key]) => d[key])]) },
  };
}

const seconds = (s: number | null) => (s === null ? '' : Math.round(s * 10) / 10);

function durationChart(days: RunDay[]): ChartSpec {
  const finished = days.filter((d) => d.maxSeconds !== null);
  const longest = [...finished].sort((a, b) => (b.maxSeconds ?? 0) - (a.maxSeconds ?? 0))[0];
  return {
    id: 'duration',
    section: 'sync',
    title: 'Run duration per day (median and longest, seconds)',
    reading: longest
      ? `The longest run took ${formatDuration(longest.maxSeconds! * 1000)} (on ${longest.day}); the latest day's median was ${formatDuration(finished.at(-1)!.medianSeconds! * 1000)}.`
      : 'No finished run in the last 30 days.',
    height: 260,
    option: longest
      ? perDay(
          days,
          [
            { name: 'median', type: 'line', data: days.map((d) => seconds(d.medianSeconds)), itemStyle: { color: BLUE } },
            { name: 'longest', type: 'line', data: days.map((d) => seconds(d.maxSeconds)), itemStyle: { color: AMBER } },
          ],
          { yAxis: { type: 'value', name: 's' } },
        )
      : undefined,
    table: { head: ['day (UTC)', 'median s', 'longest s'], rows: days.map((d) => [d.day, seconds(d.medianSeconds), seconds(d.maxSeconds)]) },
  };
}

function requestsChart(days: RunDay[]): ChartSpec {
  const requests = days.reduce((s, d) => s + d.requests, 0);
  const failed = days.reduce((s, d) => s + d.usersFailed, 0);
  return {
    id: 'requests',
    section: 'sync',
    title: 'Management API requests and users failed per day',
    reading:
      days.length === 0
        ? 'No sync run in the last 30 days.'
        : `${fmt(requests)} requests in 30 days; ${failed === 0 ? 'no user failed' : `${fmt(failed)} user syncs failed`}.`,
    height: 260,
    option:
      days.length === 0
        ? undefined
        : perDay(
            days,
            [
              { name: 'requests', type: 'bar', barMaxWidth: 40, data: days.map((d) => d.requests), itemStyle: { color: BLUE } },
              { name: 'users failed', type: 'line', yAxisIndex: 1, data: days.map((d) => d.usersFailed), itemStyle: { color: RED } },
            ],
            {
              yAxis: [
                { type: 'value', name: 'requests', minInterval: 1 },
                { type: 'value', name: 'users failed', minInterval: 1, splitLine: { show: false } },
              ],
            },
          ),
    table: { head: ['day (UTC)', 'requests', 'users failed'], rows: days.map((d) => [d.day, d.requests, d.usersFailed]) },
  };
}
