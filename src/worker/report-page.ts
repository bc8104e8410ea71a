import type { Kysely } from 'kysely';
import type { Database } from '../warehouse/schema.js';

/**
 * The report the monitoring server shows at `/`, built at most once per `maxAgeMs` (default a
 * minute) however often it is asked for: requests in between get the last page, requests while
 * one is being built wait for that one. The report code (and ECharts) is loaded on the first
 * request, not at start. A failed build rejects; the next request tries again.
 */
export function createReportPage(db: Kysely<Database>, options: { maxAgeMs?: number; now?: () => number } = {}): () => Promise<string> {
  const maxAgeMs = options.maxAgeMs ?? 60_000;
  const now = options.now ?? Date.now;
  let last: { html: string; builtAt: number } | undefined;
  let building: Promise<string> | undefined;
  return () => {
    if (last && now() - last.builtAt < maxAgeMs) return Promise.resolve(last.html);
    building ??= (async () => {
      try {
        const { buildReport } = await import('../report/build-report.js');
        const { html } = await buildReport(db);
        last = { html, builtAt: now() };
        return html;
      } finally {
        building = undefined;
      }
    })();
    return building;
  };
}
