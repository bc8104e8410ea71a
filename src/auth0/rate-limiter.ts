import type { IncomingHttpHeaders } from 'node:http';
import type { Clock } from '../clock.js';

/**
 * One rate budget for the whole process: every request to the Management API calls
 * `acquire()` before it goes out and `observe()` with the answer's status and headers.
 */
export interface RateLimiter {
  acquire(signal?: AbortSignal): Promise<void>;
  observe(status: number, headers: IncomingHttpHeaders): void;
  /** Current pace in requests per second (Infinity when the tenant reports no limit and none is set). */
  readonly rate: number;
}

export interface RateLimiterOptions {
  /** Never exceed this many requests per second (AUTH0_MAX_RPS), to leave room for other tools. */
  maxRps?: number;
}

/** The shortest wait after a 429: `x-ratelimit-reset` can equal "now" (go-auth0#501). */
const MIN_BLOCK_MS = 1_000;
/** The bucket level to steer for, as a share of `x-ratelimit-limit`. */
const TARGET_FILL = 0.4;
/** Proportional gain on the level error (as a share of the bucket); the integral gain follows from it. */
const GAIN = 1;
const INITIAL_RATE = 10;
/** A bucket this full after our request was (almost surely) full before it: budget was going to waste. */
const FULL = 0.9;

/**
 * Paces requests evenly (no bursts) at a rate learned from the tenant's answers, so a long run
 * uses the whole budget without bouncing off it. Auth0's limit is a token bucket shared by
 * every client of the tenant; each answer says how full it is (`x-ratelimit-remaining` out of
 * `x-ratelimit-limit`). A PI controller keeps the bucket near 40% full: the pace is the
 * estimated refill rate, scaled up or down by how far the level is from that target, and the
 * estimate itself moves with the accumulated error. Near 40% the bucket neither overflows
 * (budget wasted) nor runs dry (429s). While the bucket stays full and the pace is what holds
 * callers back, the estimate doubles every half second or so until it finds the limit.
 * A 429 cuts the estimate and holds every caller until `x-ratelimit-reset`, at least a second
 * (Management API 429s carry no Retry-After).
 */
export function createRateLimiter(clock: Clock, options: RateLimiterOptions = {}): RateLimiter {
  const ceiling = options.maxRps ?? Infinity;
  const clamp = (value: number) => Math.min(ceiling, Math.max(0.5, value));
  /** Requests/s. Modest until the first answer says whether the tenant reports a limit at all. */
  let rate = Math.min(ceiling, INITIAL_RATE);
  /** Estimated refill rate of the tenant's bucket, requests/s; undefined until headers arrive. */
  let refill: number | undefined;
  let lastObservedAt = clock.now();
  let nextSlot = 0;
  let blockedUntil = 0;
  /** When a caller last had to wait for its slot: only then is the pace the bottleneck. */
  let lastWaitAt = -Infinity;

  return {
    get rate() {
      return rate;
    },
    async acquire(signal) {
      for (;;) {
        const now = clock.now();
        const at = Math.max(nextSlot, blockedUntil);
        if (at <= now) break;
        lastWaitAt = now;
        await clock.sleep(at - now, signal);
      }
      // Relative to now when behind, so a stall never turns into a burst of catch-up requests.
      nextSlot = Math.max(nextSlot, clock.now()) + (Number.isFinite(rate) ? 1000 / rate : 0);
    },
    observe(status, headers) {
      const limit = Number(headers['x-ratelimit-limit']);
      const remaining = Number(headers['x-ratelimit-remaining']);
      const now = clock.now();
      const dt = Math.min(1, Math.max(0, now - lastObservedAt) / 1000);
      lastObservedAt = now;
      if (status === 429) {
        const reset = Number(headers['x-ratelimit-reset']) * 1000;
        blockedUntil = Math.max(blockedUntil, Number.isFinite(reset) ? reset : 0, now + MIN_BLOCK_MS);
        refill = clamp((refill ?? (limit > 0 ? limit : 2)) * 0.7);
        rate = refill;
        return;
      }
      if (!(limit > 0) || !Number.isFinite(remaining)) {
        if (refill === undefined && rate !== ceiling) {
          rate = ceiling; // no rate-limit headers: nothing to pace by but AUTH0_MAX_RPS
          nextSlot = 0;
        }
        return;
      }
      refill ??= clamp(Math.min(limit, INITIAL_RATE)); // a cautious first guess; a full bucket makes it grow fast
      const error = remaining / limit - TARGET_FILL;
      const paceIsBottleneck = now - lastWaitAt < 2 * (1000 / rate);
      if (remaining >= FULL * limit && paceIsBottleneck) {
        refill = clamp(refill * (1 + Math.min(0.5, 3 * dt)));
      } else if (remaining === 0) {
        // Empty: the next request would likely be refused. Brake now instead of waiting for a 429.
        refill = clamp(refill * 0.8);
      } else {
        // Critically damped: the level relaxes in about limit / (refill · GAIN) seconds, which
        // is `limit` answers whatever the rate, so the loop stays stable at 2/s and at 200/s.
        const integralGain = (refill * GAIN * GAIN) / (4 * limit);
        refill = clamp(refill * (1 + integralGain * error * dt));
      }
      rate = clamp(refill * (1 + GAIN * error));
    },
  };
}
