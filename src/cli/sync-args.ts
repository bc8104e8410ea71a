import { createReadStream, existsSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { parseArgs } from 'node:util';
import type { Config } from '../config.js';
import { parseDuration } from '../duration.js';
import { UsageError } from '../errors.js';
import type { UserSelection } from '../source/select-users.js';
import type { SyncJobResult } from '../sync/run.js';

/** The flags of `sync`, for node:util parseArgs. */
export const SYNC_OPTIONS = {
  user: { type: 'string', multiple: true },
  'users-file': { type: 'string' },
  'only-failed': { type: 'boolean' },
  stale: { type: 'string' },
  'dry-run': { type: 'boolean' },
  'max-users': { type: 'string' },
  'max-duration': { type: 'string' },
  'allow-mass-delete': { type: 'boolean' },
  'from-logs': { type: 'boolean' },
} as const;

type SyncValues = ReturnType<typeof parseArgs<{ options: typeof SYNC_OPTIONS }>>['values'];

/** Flags to a run request; one line naming the flag to fix when they do not fit together. */
export function toSyncRequest(values: SyncValues, config: Config) {
  const explicit = values.user !== undefined || values['users-file'] !== undefined;
  const fromFlags = [...new Set((values.user ?? []).map((id) => id.trim()).filter(Boolean))];
  const kinds = [explicit, values['only-failed'] === true, values.stale !== undefined].filter(Boolean).length;
  if (kinds > 1) throw new UsageError('--user/--users-file, --only-failed and --stale choose users in different ways: use one');
  // The tenant logs choose the users, all of them: a selection, a budget or a dry run would skip entries.
  const fromLogs = values['from-logs'] === true;
  if (fromLogs && (kinds > 0 || values['dry-run'] || values['max-users'] !== undefined || values['max-duration'] !== undefined)) {
    throw new UsageError('--from-logs syncs the users the tenant logs name: it takes no --user, --users-file, --only-failed, --stale, --max-users, --max-duration or --dry-run');
  }

  let selection: UserSelection = { kind: 'source' };
  if (explicit) {
    const file = values['users-file'];
    if (file && file !== '-' && !existsSync(file)) throw new UsageError(`--users-file ${file}: no such file`);
    selection = file
      ? { kind: 'ids', userIds: unique(concatIds(fromFlags, readIdsFile(file))) }
      : { kind: 'ids', userIds: fromFlags, total: fromFlags.length };
  } else if (values['only-failed']) {
    selection = { kind: 'failed' };
  } else if (values.stale !== undefined) {
    selection = { kind: 'stale', since: parseSince(values.stale) };
  }

  const maxUsers = values['max-users'] === undefined ? config.sync.maxUsers : Number(values['max-users']);
  if (maxUsers !== undefined && !(Number.isInteger(maxUsers) && maxUsers > 0)) throw new UsageError('--max-users must be a whole number above 0');
  const maxDurationMs = values['max-duration'] === undefined ? config.sync.maxDurationMs : parseDuration(values['max-duration']);
  if (values['max-duration'] !== undefined && !(maxDurationMs !== undefined && maxDurationMs > 0)) {
    throw new UsageError('--max-duration must be a duration above zero such as 30m or 2h');
  }

  const backfill = selection.kind !== 'source';
  const args = Object.fromEntries(
    Object.entries({
      users: values.user && fromFlags.slice(0, 100),
      usersFile: values['users-file'],
      onlyFailed: values['only-failed'],
      stale: values.stale,
      maxUsers,
      maxDurationMs,
      allowMassDelete: values['allow-mass-delete'],
    }).filter(([, value]) => value !== undefined),
  );
  return {
    fromLogs,
    trigger: backfill ? ('backfill' as const) : ('manual' as const),
    selection,
    budget: { maxUsers, maxDurationMs },
    dryRun: values['dry-run'] === true,
    allowMassDelete: values['allow-mass-delete'] === true,
    args: Object.keys(args).length > 0 ? args : undefined,
  };
}

/** `--stale 24h` (not synced in the last 24 hours) or `--stale 2026-11-01` (not since that date). */
function parseSince(text: string): Date {
  const duration = parseDuration(text);
  if (duration !== undefined) return new Date(Date.now() - duration);
  if (/^\d{4}-\d{2}-\d{2}/.test(text) && !Number.isNaN(Date.parse(text))) return new Date(text);
  throw new UsageError(`--stale takes a duration such as 24h or 7d, or a date such as 2026-11-01 (got "${text}")`);
}

/** One ID per line; blank lines and lines starting with # are skipped. `-` reads stdin. */
async function* readIdsFile(path: string): AsyncGenerator<string> {
  const input = path === '-' ? process.stdin : createReadStream(path);
  const lines = createInterface({ input, crlfDelay: Infinity });
  try {
    for await (const line of lines) {
      const id = line.trim();
      if (id && !id.startsWith('#')) yield id;
    }
  } catch (error) {
    throw new UsageError(`--users-file ${path}: ${(error as Error).message}`);
  }
}

async function* concatIds(first: string[], rest: AsyncIterable<string>): AsyncGenerator<string> {
  yield* first;
  yield* rest;
}

/** Drops repeats. Holds every ID seen: a users file is a backfill list, not the whole tenant. */
async function* unique(ids: AsyncIterable<string>): AsyncGenerator<string> {
  const seen = new Set<string>();
  for await (const id of ids) {
    if (seen.has(id)) continue;
    seen.add(id);
    yield id;
  }
}

export function describeDryRun(result: SyncJobResult): string {
  const { counts } = result;
  return (
    `Dry run over ${counts.usersSynced + counts.usersNotFound} users (${counts.usersNotFound} gone from Auth0, ${counts.usersFailed} failed): ` +
    `would add ${counts.tokensAdded}, change ${counts.tokensChanged} and mark deleted ${counts.tokensDeleted} tokens. Nothing was written.`
  );
}

