import type { IncomingHttpHeaders } from 'node:http';
import type { Clock } from '../core/clock.js';

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
/** Shortest span over which the bucket's refill rate is measured from its level, ms. */
const MEASURE_MS = 250;

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
 *
 * Two shortcuts use what the answers say to reach the tenant's pace within about a second
 * (issue #8): budget the bucket holds above the target level is spent at once, unpaced
 * (`credit`, less the requests already on their way), and the refill rate is measured from the
 * level's change plus the requests the bucket served, as a lower bound (it only ever raises
 * the estimate). On a small bucket the credit is a request or two; on a full bucket of 1,000
 * it is some 600 requests that would otherwise have waited for a slow ramp.
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
  /** Earliest next request under AUTH0_MAX_RPS. */
  let ceilingSlot = 0;
  /** When a caller last had to wait for its slot: only then is the pace the bottleneck. */
  let lastWaitAt = -Infinity;
  /** Requests sent and not yet answered (network failures never answer: an overestimate, so cautious). */
  let outstanding = 0;
  /** Requests the bucket can serve right now above its target level: sent without pacing. */
  let credit = 0;
  /** Start of the current refill measurement: when, the level then, and what was in flight. */
  let window: { at: number; remaining: number; served: number; inFlight: number } | undefined;

  return {
    get rate() {
      return rate;
    },
    async acquire(signal) {
      for (;;) {
        const now = clock.now();
        // AUTH0_MAX_RPS holds for every request, credit or not.
        const allowed = Math.max(blockedUntil, ceilingSlot);
        const paced = Math.max(nextSlot, allowed);
        const byCredit = credit >= 1 ? allowed : Infinity;
        const at = Math.min(paced, byCredit);
        if (at <= now) {
          if (byCredit <= now) {
            credit -= 1;
          } else {
            // Relative to now when behind, so a stall never turns into a burst of catch-up requests.
            nextSlot = Math.max(nextSlot, now) + (Number.isFinite(rate) ? 1000 / rate : 0);
          }
          if (Number.isFinite(ceiling)) ceilingSlot = Math.max(ceilingSlot, now) + 1000 / ceiling;
          outstanding += 1;
          return;
        }
        lastWaitAt = now;
        // Never longer than a measurement span: an answer may grant credit meanwhile.
        await clock.sleep(Math.min(at - now, MEASURE_MS), signal);
      }
    },
    observe(status, headers) {
      const limit = Number(headers['x-ratelimit-limit']);
      const remaining = Number(headers['x-ratelimit-remaining']);
      const now = clock.now();
      const dt = Math.min(1, Math.max(0, now - lastObservedAt) / 1000);
      lastObservedAt = now;
      outstanding = Math.max(0, outstanding - 1);
      if (status === 429) {
        credit = 0;
        window = undefined;
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
      // After our own request a full bucket reads limit - 1: with a small limit that is well under 90%.
      const full = remaining >= Math.min(FULL * limit, limit - 1);
      credit = Math.max(0, remaining - TARGET_FILL * limit - outstanding);
      if (!window) {
        window = { at: now, remaining, served: 0, inFlight: outstanding };
      } else {
        window.served += 1;
        const span = now - window.at;
        if (span >= MEASURE_MS) {
          // The level rose by (remaining - window.remaining), less up to 1 for the floor on each
          // reading, while the bucket served `served` requests, less those already in flight at
          // the start (counted here, spent before). Others' requests only lower the figure.
          const refilled = remaining - window.remaining - 1 + window.served - window.inFlight;
          const measured = refilled / ((span + 20) / 1000);
          if (measured > refill) refill = clamp(measured);
          window = { at: now, remaining, served: 0, inFlight: outstanding };
        }
      }
      const paceIsBottleneck = now - lastWaitAt < 2 * (1000 / rate);
      if (full && paceIsBottleneck) {
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
