/**
 * The report in a real browser (issue #21): `npm run report`'s file and the worker's `/` page,
 * from a real sync of the sandbox tenant, opened by Chromium (playwright-core). No console
 * error, no request but the page itself, every chart an SVG of non-zero size, the headline
 * numbers equal to SQL counts on the same database, and a screenshot (docs/report.png with
 * UPDATE_SCREENSHOTS=1).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { expect, it } from '@jest/globals';
import { sql } from 'kysely';
import type { Page } from 'playwright-core';
import { main } from '../../src/cli/main.js';
import { loadConfig } from '../../src/core/config.js';
import { createLogger } from '../../src/core/log.js';
import { runWorker } from '../../src/worker/worker.js';
import { SCOPE_WITH_SESSIONS } from '../../sandbox/auth0-server.js';
import { describeBrowser, withPage, type PageWatch } from '../helpers/browser.js';
import { captureIo, cliDeps, loadUsers, type TestDatabase } from '../helpers/db.js';
import { envFor, generateTenant } from '../helpers/fake-auth0.js';
import { sharedDatabase, withFakeTenant, withTempDir } from '../helpers/fixtures.js';
import { createTestScheduler } from '../helpers/scheduler.js';

const ROOT = path.resolve(import.meta.dirname, '../..');

/**
 * One warehouse for both tests (they only read it, or undo what they change): a real sync of the
 * sandbox tenant, as the demo does (dates around now, so every view has rows), then revocations
 * and a token used from a new network, synced again, so the change history has deletions. With
 * sessions (read:sessions granted), so the sessions charts are drawn too.
 */
const shared = sharedDatabase({
  seed: (t) =>
    withFakeTenant(
      async (fake) => {
        for (const [userId, tokens] of generateTenant({ users: 80, manyTokensEvery: 40, seed: 21, datesAround: Date.now() })) fake.setUser(userId, tokens);
        await loadUsers(t.db, fake.users.keys());
        const env = envFor(fake, t.url, { SYNC_MAX_DELETE_RATIO: '1' });
        const sync = async () => expect(await main(['sync'], env, captureIo().io, cliDeps(t))).toBe(0);
        await sync();
        for (const [userId, tokens] of [...fake.users].filter((_, i) => i % 10 === 0)) fake.setUser(userId, tokens.slice(1));
        const moved = [...fake.users.values()].flat().find((token) => token.device);
        if (moved) moved.device = { ...(moved.device as object), last_ip: '203.0.113.7', last_asn: '64500' };
        await sync();
      },
      { scope: SCOPE_WITH_SESSIONS },
    ),
});

/** The headline numbers the page shows, as numbers. */
async function headline(page: Page): Promise<Record<string, number>> {
  const cells = await page.locator('[data-headline]').evaluateAll((nodes) => nodes.map((n) => [n.getAttribute('data-headline'), n.textContent] as const));
  return Object.fromEntries(cells.filter(([, text]) => /^[\d,]+$/.test(text ?? '')).map(([key, text]) => [key, Number(text!.replace(/,/g, ''))]));
}

/** The same numbers, counted by SQL on the same database. */
async function counted(t: TestDatabase): Promise<Record<string, number>> {
  const { rows } = await sql<Record<string, number>>`
    select (select count(*) from auth0.active_refresh_tokens)::int as "live-tokens",
           (select count(distinct user_id) from auth0.active_refresh_tokens)::int as users,
           (select count(distinct client_id) from auth0.active_refresh_tokens)::int as applications,
           (select count(*) from auth0.refresh_tokens_expiring_soon)::int as "expiring-soon",
           (select count(*) from auth0.refresh_tokens_unused)::int as unused,
           (select count(*) from auth0.refresh_tokens_location_changed)::int as "location-changed",
           (select count(*) from auth0.refresh_token_changes
             where change = 'deleted' and reason = 'unexplained' and observed_at > now() - interval '24 hours')::int as "unexplained-24h",
           (select count(*) from auth0.sessions s where s.deleted_at is null
             and coalesce(s.expires_at, 'infinity') > now() and coalesce(s.idle_expires_at, 'infinity') > now())::int as "live-sessions",
           (select count(*) from auth0.refresh_tokens_outliving_session)::int as "outliving-session",
           (select count(*) from auth0.refresh_tokens_without_second_factor)::int as "without-second-factor"
  `.execute(t.db);
  return rows[0]!;
}

/** What every report page must be, wherever it is served from. */
async function checkPage(t: TestDatabase, page: Page, watch: PageWatch, url: string, screenshot: string): Promise<void> {
  const response = await page.goto(url, { waitUntil: 'load' });
  expect(response?.ok() ?? url.startsWith('file:')).toBe(true);
  expect(watch.errors).toEqual([]);
  expect(watch.requests).toEqual([url]); // the page itself, nothing else: no CDN, no font, no script

  const charts = page.locator('figure[data-chart]');
  expect(await charts.count()).toBeGreaterThanOrEqual(16);
  for (const chart of await charts.all()) {
    const id = await chart.getAttribute('data-chart');
    const box = await chart.locator('svg').first().boundingBox();
    expect({ id, drawn: box !== null && box.width > 100 && box.height > 50 }).toEqual({ id, drawn: true });
  }
  const numbers = await headline(page);
  const expected = await counted(t);
  expect(expected['live-tokens']).toBeGreaterThan(100); // the check below would pass on an empty page otherwise
  expect(expected['location-changed']).toBeGreaterThan(0);
  expect(expected['live-sessions']).toBeGreaterThan(0); // the sessions chart is drawn, so the loop above checked it
  expect(await page.locator('figure[data-chart="deletions-by-reason"] svg').count()).toBe(1);
  expect(await page.locator('figure[data-chart="sessions-per-client"] svg').count()).toBe(1);
  expect(numbers).toEqual(expected);

  await page.screenshot({ path: screenshot, fullPage: true });
  expect((await readFile(screenshot)).subarray(1, 4).toString()).toBe('PNG');
}

describeBrowser('the report in a browser', () => {
  it(
    'npm run report writes a page that opens offline: charts drawn, numbers as SQL counts them',
    () =>
      shared.withDatabase((t) =>
        withTempDir(async (dir) => {
          const file = path.join(dir, 'report.html');
          const out = captureIo();
          expect(await main(['report', '--out', file], { DATABASE_URL: t.url }, out.io, cliDeps(t))).toBe(0);
          expect(out.stdout.join('\n')).toMatch(
            new RegExp(`^Report written to ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(\\d+ KB, 16 charts, \\d+ live tokens\\) in [\\d.]+ s\\.`),
          );
          await withPage(async (page, watch) => {
            await checkPage(t, page, watch, pathToFileURL(file).href, path.join(dir, 'report-full.png'));
            // The README's picture: the top of the page, as a reader first sees it.
            if (process.env.UPDATE_SCREENSHOTS === '1') await page.screenshot({ path: path.join(ROOT, 'docs/report.png') });
          });
        }),
      ),
    60_000,
  );

  it(
    "the worker's monitoring server serves the same report at /, rebuilt at most once a minute",
    () =>
      shared.withDatabase((t) =>
        withFakeTenant((fake) =>
          withTempDir(async (dir) => {
            const lines: Record<string, unknown>[] = [];
            const stop = new AbortController();
            const config = loadConfig(envFor(fake, t.url, { METRICS_PORT: '0', SYNC_SCHEDULE: '0 0 1 1 *' }));
            const logger = createLogger({ level: 'info', write: (line) => lines.push(JSON.parse(line) as Record<string, unknown>) });
            const done = runWorker({
              configs: [config],
              db: t.db,
              logger,
              stopSignal: stop.signal,
              runOptions: { ownsDatabase: t.embedded },
              scheduler: createTestScheduler(),
            });
            try {
              let listening: Record<string, unknown> | undefined;
              for (let i = 0; i < 300 && !listening; i++) {
                listening = lines.find((l) => l.msg === 'monitoring server listening');
                if (!listening) await new Promise((r) => setTimeout(r, 50));
              }
              const url = `${String(listening!.url)}/`;
              expect(listening!.report).toBe(url);
              await withPage((page, watch) => checkPage(t, page, watch, url, path.join(dir, 'worker-report.png')));

              const first = await fetch(url);
              expect(first.headers.get('content-type')).toBe('text/html; charset=utf-8');
              expect(first.headers.get('content-security-policy')).toContain("default-src 'none'");
              const page = await first.text();
              // A change within the minute shows at the next build, not at every request.
              const marker = new Date('2001-01-01T00:00:00Z');
              await t.db.updateTable('auth0.refresh_tokens').set({ deleted_at: marker }).where('deleted_at', 'is', null).execute();
              try {
                expect(await (await fetch(url)).text()).toBe(page);
              } finally {
                await t.db.updateTable('auth0.refresh_tokens').set({ deleted_at: null }).where('deleted_at', '=', marker).execute();
              }
              expect((await fetch(url, { method: 'POST' })).status).toBe(405);
            } finally {
              stop.abort();
              await done;
            }
          }),
        ),
      ),
    60_000,
  );
});
