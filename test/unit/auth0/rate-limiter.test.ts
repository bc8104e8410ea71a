import { describe, expect, it } from '@jest/globals';
import { createRateLimiter } from '../../../src/auth0/rate-limiter.js';
import type { Clock } from '../../../src/core/clock.js';

/** A clock whose time only moves when every pending promise has settled: deterministic and instant. */
function virtualClock() {
  let now = 1_700_000_000_000;
  const timers: { at: number; resolve: () => void }[] = [];
  const clock: Clock = {
    now: () => now,
    sleep: (ms) => new Promise<void>((resolve) => timers.push({ at: now + Math.max(0, ms), resolve })),
  };
  const settle = () => new Promise((resolve) => setImmediate(resolve));
  return {
    clock,
    get now() {
      return now;
    },
    /** Advance to the next timer; false when none is left. */
    async step(): Promise<boolean> {
      await settle();
      if (timers.length === 0) return false;
      timers.sort((a, b) => a.at - b.at);
      const timer = timers.shift()!;
      now = Math.max(now, timer.at);
      timer.resolve();
      return true;
    },
  };
}

/** Auth0's token bucket as the fake server implements it, with its three headers. */
function tenantBucket(perSecond: number, burst: number) {
  let tokens = burst;
  let at = 0;
  return (now: number) => {
    tokens = Math.min(burst, tokens + ((now - at) / 1000) * perSecond);
    at = now;
    const ok = tokens >= 1;
    if (ok) tokens -= 1;
    const nextTokenAt = tokens >= 1 ? now : now + ((1 - tokens) / perSecond) * 1000;
    return {
      status: ok ? 200 : 429,
      headers: {
        'x-ratelimit-limit': String(burst),
        'x-ratelimit-remaining': String(Math.floor(tokens)),
        'x-ratelimit-reset': String(Math.ceil(nextTokenAt / 1000)),
      },
    };
  };
}

async function simulate(o: { perSecond: number; burst: number; seconds: number; concurrency?: number; latencyMs?: number; maxRps?: number }) {
  const v = virtualClock();
  const limiter = createRateLimiter(v.clock, { maxRps: o.maxRps });
  const bucket = tenantBucket(o.perSecond, o.burst);
  const start = v.now;
  const end = start + o.seconds * 1000;
  let ok = 0;
  let okInFirstSecond = 0;
  let refused = 0;
  const worker = async () => {
    while (v.now < end) {
      await limiter.acquire();
      if (v.now >= end) break;
      const answer = bucket(v.now);
      await v.clock.sleep(o.latencyMs ?? 5);
      limiter.observe(answer.status, answer.headers);
      if (answer.status === 200) ok += 1;
      else refused += 1;
      if (answer.status === 200 && v.now < start + 1000) okInFirstSecond += 1;
    }
  };
  const workers = Promise.all(Array.from({ length: o.concurrency ?? 8 }, worker));
  while (await v.step());
  await workers;
  return {
    achieved: ok / o.seconds / Math.min(o.perSecond, o.maxRps ?? Infinity),
    refusedShare: refused / (ok + refused),
    okInFirstSecond,
  };
}

describe('rate limiter', () => {
  it.each([
    { perSecond: 40, burst: 10 }, // the benchmark's server
    { perSecond: 16, burst: 50 }, // Enterprise production
    { perSecond: 40, burst: 5 }, // a small bucket: a full one reads 4 of 5, under the "full" share
    { perSecond: 2, burst: 10 }, // Enterprise non-production
    { perSecond: 2.5, burst: 10 }, // Essentials: 150/min
    { perSecond: 200, burst: 100 }, // Private Cloud
  ])('runs just under a $perSecond/s limit with burst $burst', async ({ perSecond, burst }) => {
    const { achieved, refusedShare } = await simulate({ perSecond, burst, seconds: 120 });
    expect(achieved).toBeGreaterThanOrEqual(0.95);
    expect(refusedShare).toBeLessThan(0.02);
  });

  it('copes with a two-request bucket, where remaining only says 0 or 1', async () => {
    // The Free plan's 2/s with burst 2 (which cannot call this endpoint, but other tools share
    // small buckets too): the level signal is too coarse to run at the very edge.
    const { achieved, refusedShare } = await simulate({ perSecond: 2, burst: 2, seconds: 120 });
    expect(achieved).toBeGreaterThanOrEqual(0.7);
    expect(refusedShare).toBeLessThan(0.02);
  });

  it("reaches a big bucket's pace within about a second, from what the first answers say", async () => {
    // Issue #8: starting at 10/s and doubling, a 1,000-request bucket took seconds to find.
    // The bucket starts full: its budget above the target level is there to spend at once.
    const { okInFirstSecond, refusedShare } = await simulate({ perSecond: 1000, burst: 1000, seconds: 3, concurrency: 32, latencyMs: 10 });
    expect(okInFirstSecond).toBeGreaterThanOrEqual(1000);
    expect(refusedShare).toBeLessThan(0.02);
  });

  it.each([
    { perSecond: 2, burst: 2 },
    { perSecond: 16, burst: 50 },
    { perSecond: 40, burst: 5 },
  ])('refuses under 2% from the very start at $perSecond/s burst $burst with 32 callers', async ({ perSecond, burst }) => {
    const { refusedShare } = await simulate({ perSecond, burst, seconds: 20, concurrency: 32, latencyMs: 10 });
    expect(refusedShare).toBeLessThan(0.02);
  });

  it('stays under AUTH0_MAX_RPS when the tenant allows more', async () => {
    const { achieved, refusedShare } = await simulate({ perSecond: 50, burst: 50, seconds: 60, maxRps: 10 });
    expect(achieved).toBeLessThanOrEqual(1.001);
    expect(achieved).toBeGreaterThan(0.95);
    expect(refusedShare).toBe(0);
  });

  it('holds every caller until x-ratelimit-reset after a 429, at least a second', async () => {
    const v = virtualClock();
    const limiter = createRateLimiter(v.clock);
    const t0 = v.now;
    limiter.observe(429, { 'x-ratelimit-limit': '10', 'x-ratelimit-remaining': '0', 'x-ratelimit-reset': String(Math.floor(t0 / 1000)) });
    const released: number[] = [];
    const callers = Promise.all([1, 2, 3].map(() => limiter.acquire().then(() => released.push(v.now - t0))));
    while (await v.step());
    await callers;
    expect(Math.min(...released)).toBeGreaterThanOrEqual(1000);

    limiter.observe(429, { 'x-ratelimit-reset': String(Math.ceil(v.now / 1000) + 5) });
    const t1 = v.now;
    const late = limiter.acquire().then(() => v.now);
    while (await v.step());
    expect((await late) - t1).toBeGreaterThanOrEqual(5000 - 1000);
  });

  it('does not pace at all when the answers carry no rate-limit headers', async () => {
    const v = virtualClock();
    const limiter = createRateLimiter(v.clock);
    await limiter.acquire();
    limiter.observe(200, {});
    const t0 = v.now;
    for (let i = 0; i < 100; i++) {
      await limiter.acquire();
      limiter.observe(200, {});
    }
    expect(v.now).toBe(t0);
    expect(limiter.rate).toBe(Infinity);
  });
});
