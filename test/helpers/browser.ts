import { existsSync } from 'node:fs';
import { describe } from '@jest/globals';
import type { Browser, Page } from 'playwright-core';

/** Debian's Chromium (`apt-get install -y chromium`; .ci/run installs it when missing). */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/**
 * `describe` for tests that drive a real browser: without Chromium they skip, saying so, except
 * under CI=true, where a missing browser must fail the run instead of passing it unseen.
 */
export const describeBrowser: typeof describe =
  existsSync(CHROMIUM) || process.env.CI === 'true'
    ? describe
    : (((name: string, fn: () => void) => {
        process.stderr.write(`Skipping "${name}": no Chromium at ${CHROMIUM} (apt-get install -y chromium, or set CHROMIUM_PATH).\n`);
        return describe.skip(name, fn);
      }) as typeof describe);

/** Flags for a headless Chromium as root in a container, that calls no Google service on its own (docs/../TOOLCHAIN). */
const ARGS = [
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/** What a page did while it loaded: console errors, uncaught errors, every request it made. */
export interface PageWatch {
  errors: string[];
  requests: string[];
}

/** Start Chromium, run `fn` with a new page (1000 px wide) and what it watched, and always close the browser. */
export async function withPage<T>(fn: (page: Page, watch: PageWatch) => Promise<T>): Promise<T> {
  const { chromium } = await import('playwright-core');
  const browser: Browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ARGS });
  try {
    const page = await browser.newPage({ viewport: { width: 1000, height: 1300 } });
    const watch: PageWatch = { errors: [], requests: [] };
    page.on('console', (message) => {
      if (message.type() === 'error' || message.type() === 'warning') watch.errors.push(`console.${message.type()}: ${message.text()}`);
    });
    page.on('pageerror', (error) => watch.errors.push(`page error: ${error.message}`));
    page.on('request', (request) => watch.requests.push(request.url()));
    return await fn(page, watch);
  } finally {
    await browser.close();
  }
}
