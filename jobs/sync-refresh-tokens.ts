import { runSyncJob } from '../src/sync/run.js';

/**
 * The job: one complete sync of Auth0 refresh tokens into the warehouse. `npm run sync` runs
 * it once; it is the only thing a scheduler needs to call.
 */
export const syncRefreshTokensJob = {
  name: 'sync-refresh-tokens',
  run: runSyncJob,
} as const;
