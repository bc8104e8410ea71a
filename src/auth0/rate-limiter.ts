import type { IncomingHttpHeaders } from 'node:http';
import type { Clock } from '../clock.js';

/**
 * One rate budget for the whole process: every request to the Management API calls
 * `acquire()` before it goes out and `observe()` with the answer's status and headers.
 */
export interface RateLimiter {
  acquire(signal?: AbortSignal): Promise<void>;
  observe(status: number, headers: IncomingHttpHeaders): void;
}

/** The shortest wait after a 429: `x-ratelimit-reset` can equal "now" (go-auth0#501). */
const MIN_BLOCK_MS = 1_000;

/**
 * Paces requests to at most `maxRps` (when set) and, when the tenant says the budget is spent
 * (a 429, or `x-ratelimit-remaining: 0`), holds every caller until `x-ratelimit-reset`.
 * Management API 429s carry no Retry-After, so the reset header is all there is.
 */
export function createRateLimiter(clock: Clock, options: { maxRps?: number } = {}): RateLimiter {
  const interval = options.maxRps ? 1000 / options.maxRps : 0;
  let nextSlot = 0;
  let blockedUntil = 0;

  return {
    async acquire(signal) {
      for (;;) {
        const now = clock.now();
        const at = Math.max(nextSlot, blockedUntil);
        if (at <= now) break;
        await clock.sleep(at - now, signal);
      }
      nextSlot = Math.max(nextSlot, clock.now()) + interval;
    },
    observe(status, headers) {
      const remaining = Number(headers['x-ratelimit-remaining']);
      const resetSeconds = Number(headers['x-ratelimit-reset']);
      if (status !== 429 && !(remaining === 0 && Number.isFinite(resetSeconds))) return;
      const now = clock.now();
      const reset = Number.isFinite(resetSeconds) ? resetSeconds * 1000 : 0;
      blockedUntil = Math.max(blockedUntil, status === 429 ? Math.max(reset, now + MIN_BLOCK_MS) : reset);
    },
  };
}
