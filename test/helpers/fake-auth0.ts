import type { Clock } from '../../src/core/clock.js';
import { loadConfig, type Config, type Env } from '../../src/core/config.js';
import type { FakeAuth0 } from '../../sandbox/auth0-server.js';

export { startFakeAuth0 } from '../../sandbox/auth0-server.js';
export { generateTenant, makeToken, type Auth0TokenJson } from '../../sandbox/tenant.js';
export type { FakeAuth0, FakeAuth0Options } from '../../sandbox/auth0-server.js';

/** The environment a user would set to point the job at `fake` and `databaseUrl`. */
export function envFor(fake: FakeAuth0, databaseUrl: string | undefined, extra: Env = {}): Env {
  return {
    DATABASE_URL: databaseUrl,
    AUTH0_DOMAIN: fake.url,
    AUTH0_CLIENT_ID: 'test-client',
    AUTH0_CLIENT_SECRET: 'test-secret',
    LOG_LEVEL: 'warn',
    ...extra,
  };
}

export function configFor(fake: FakeAuth0, databaseUrl: string | undefined, extra: Env = {}): Config {
  return loadConfig(envFor(fake, databaseUrl, extra));
}

/** A clock whose sleeps take a millisecond, for backoff paths. */
export const fastClock = {
  now: () => Date.now(),
  sleep: (_ms: number, signal?: AbortSignal) =>
    new Promise<void>((resolve, reject) => {
      if (signal?.aborted) return reject(signal.reason);
      setTimeout(resolve, 1);
    }),
};

/**
 * A clock whose time moves by what it sleeps, each sleep taking a millisecond: waits of seconds
 * (a 429's hold, an export job's polls, `--timeout`) pass at once and still count as waited.
 */
export function skippingClock(): Clock {
  let slept = 0;
  return {
    now: () => Date.now() + slept,
    sleep: (ms, signal) => {
      slept += Math.max(0, ms);
      return fastClock.sleep(ms, signal);
    },
  };
}
