import type { Kysely } from 'kysely';
import type { Database } from '../warehouse/schema.js';

/**
 * The report the monitoring server shows at `/`, built at most once per `maxAgeMs` (default a
 * minute) however often it is asked for: requests in between get the last page, requests while
 * one is being built wait for that one. The report code (and ECharts) is loaded on the first
 * request, not at start. A failed build counts as a build: until `maxAgeMs` has passed, requests
 * get the last good page, or (none yet) the same failure, so a failing database is asked once a
 * minute, not once a request.
 */
export function createReportPage(db: Kysely<Database>, options: { maxAgeMs?: number; now?: () => number } = {}): () => Promise<string> {
  const maxAgeMs = options.maxAgeMs ?? 60_000;
  const now = options.now ?? Date.now;
  let last: { html: string; builtAt: number } | undefined;
  let building: Promise<string> | undefined;
  let failed: { error: unknown; at: number } | undefined;
  return () => {
    if (last && now() - last.builtAt < maxAgeMs) return Promise.resolve(last.html);
    if (failed && now() - failed.at < maxAgeMs) return last ? Promise.resolve(last.html) : Promise.reject(failed.error);
    building ??= (async () => {
      try {
        const { buildReport } = await import('../report/build-report.js');
        const { html } = await buildReport(db);
        last = { html, builtAt: now() };
        failed = undefined;
        return html;
      } catch (error) {
        failed = { error, at: now() };
        throw error;
      } finally {
        building = undefined;
      }
    })();
    return building;
  };
}
