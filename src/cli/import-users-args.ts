import { Option } from 'commander';
import { parseDuration } from '../core/duration.js';
import { UsageError } from '../core/errors.js';
import { describeBadLine } from '../auth0/users-export-lines.js';
import type { ImportUsersResult } from '../jobs/import-users.js';
import { toSafeText } from '../core/upstream-text.js';
import { plural } from '../core/wording.js';
import { tenantOption } from './tenant-args.js';

/** The flags of `import-users` as commander reads them (camelCase keys). */
export interface ImportUsersFlags {
  connection?: string;
  dryRun?: boolean;
  timeout?: string;
  allowMassDelete?: boolean;
  /** `--tenant NAME` (issue #23), repeatable; src/cli/tenant-args.ts reads it. */
  tenant?: string[];
}

/** The flags of `import-users`: the parser and `import-users --help` both read these. */
export function importUsersOptions(): Option[] {
  return [
    new Option('--connection <con_ID>', 'only this connection (removals only among its users)'),
    new Option('--dry-run', 'print what would be added and removed; write nothing'),
    new Option('--timeout <duration>', 'give up on an export job that has not completed by then').default('30m'),
    new Option('--allow-mass-delete', 'confirm an import that marks more than SYNC_MAX_DELETE_RATIO of the users removed'),
    tenantOption('import only this tenant (repeatable; default every configured tenant, one after the other)'),
  ];
}

/** Flags to an import request; one sentence naming the flag to fix. */
export function toImportRequest(values: ImportUsersFlags) {
  const connectionId = values.connection?.trim();
  if (values.connection !== undefined && !/^con_[A-Za-z0-9]+$/.test(connectionId ?? '')) {
    throw new UsageError('--connection takes a connection ID such as con_0000000000000001 (Auth0 dashboard → Authentication → the connection)');
  }
  const timeoutMs = parseDuration(values.timeout ?? '');
  if (timeoutMs === undefined || timeoutMs <= 0) throw new UsageError('--timeout must be a duration above zero such as 30m, 90s or 1h');
  return { connectionId, timeoutMs, dryRun: values.dryRun ?? false, allowMassDelete: values.allowMassDelete ?? false };
}

/** The lines `import-users` prints when it is done; names from the export go through toSafeText. */
export function describeImport(result: ImportUsersResult): string[] {
  const { counts } = result;
  const of = result.connection ? ` of connection ${toSafeText(result.connection, 200)}` : '';
  const ids = (userIds: string[]) => userIds.map((id) => toSafeText(id, 200)).join(', ');
  const lines = result.dryRun
    ? [
        `Dry run: the export holds ${counts.exported} users; would add ${counts.added}, update ${counts.updated}, ` +
          `restore ${counts.returned} and mark removed ${counts.removed} of the ${counts.held} held${of}. Nothing was written.`,
      ]
    : [
        `Imported ${counts.exported} users in ${result.seconds} s: ${counts.added} added, ${counts.updated} updated, ` +
          `${counts.returned} returned, ${counts.removed} marked removed${of}.`,
      ];
  if (counts.duplicated > 0) {
    lines.push(`${plural(counts.duplicated, 'user')} appeared more than once; the last line of each was kept.`);
  }
  const bad = result.badLines;
  if (bad.count > 0) {
    const named = bad.first.map(describeBadLine).join('; ');
    lines.push(`${plural(bad.count, 'line')} of the export skipped: ${named}${bad.count > bad.first.length ? '; …' : ''}.`);
    lines.push(
      result.removalsWithheld
        ? 'No user was marked removed: a line that could not be read may hold any user. Exit 2.'
        : 'The users on them were neither added nor marked removed. Exit 2.',
    );
  }
  if (result.followStartedAt) {
    lines.push(`The log follower had no checkpoint: it starts at ${toSafeText(result.followStartedAt, 100)}, the tenant's newest entry when the export began.`);
  }
  if (!result.dryRun) return lines;
  if (result.sampleAdded?.length) lines.push(`  would add: ${ids(result.sampleAdded)}${counts.added > result.sampleAdded.length ? ', …' : ''}`);
  if (result.sampleRemoved?.length) lines.push(`  would remove: ${ids(result.sampleRemoved)}${counts.removed > result.sampleRemoved.length ? ', …' : ''}`);
  return lines;
}
