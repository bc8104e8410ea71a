import { formatDuration } from '../core/duration.js';
import type { SyncJobResult } from '../jobs/sync.js';
import { plural } from '../core/wording.js';

/**
 * The sentence a finished `sync` ends with on a terminal, for people (stderr; the `sync
 * finished` log line carries the same counts for machines): users, tokens, the run and how long
 * it took.
 */
export function describeRun(result: SyncJobResult, elapsedMs: number): string {
  const { counts } = result;
  return (
    `Run ${result.runId} ${result.status} in ${formatDuration(elapsedMs)}: synced ${plural(counts.usersSynced, 'user')} ` +
    `(${counts.usersNotFound} gone from Auth0, ${counts.usersFailed} failed); ` +
    `${plural(counts.tokensSeen, 'token')} seen: ${counts.tokensAdded} new, ${counts.tokensChanged} changed, ${counts.tokensDeleted} marked deleted.`
  );
}

/** What a dry run found, in one paragraph. */
export function describeDryRun(result: SyncJobResult): string {
  const { counts } = result;
  return (
    `Dry run over ${plural(counts.usersSynced + counts.usersNotFound, 'user')} (${counts.usersNotFound} gone from Auth0, ${counts.usersFailed} failed): ` +
    `would add ${counts.tokensAdded}, change ${counts.tokensChanged} and mark deleted ${counts.tokensDeleted} tokens. Nothing was written.` +
    (result.wouldStop ? ` A real run would stop at the deletion guard: it would ${result.wouldStop} (see --allow-mass-delete).` : '')
  );
}
