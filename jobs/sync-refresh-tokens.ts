import { pathToFileURL } from 'node:url';
import { main } from '../src/cli/main.js';
import { runSyncJob, SYNC_JOB_NAME } from '../src/jobs/sync.js';

/**
 * The job: one complete sync of Auth0 refresh tokens into the warehouse, for a scheduler that
 * calls functions (`syncRefreshTokensJob.run(options)`) or runs files
 * (`node dist/jobs/sync-refresh-tokens.js [sync flags]`, the same as `npm run sync -- [flags]`).
 * This is the entry point: it imports src/, and nothing in src/ imports it.
 */
export const syncRefreshTokensJob = {
  name: SYNC_JOB_NAME,
  run: runSyncJob,
} as const;

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main(['sync', ...process.argv.slice(2)]).then((code) => {
    process.exitCode = code;
  });
}
