import { Option } from 'commander';
import type { Config } from '../core/config.js';
import { parseDuration } from '../core/duration.js';
import { UsageError } from '../core/errors.js';
import { parseIsoDate } from '../core/iso-date.js';
import type { UserSelection } from '../source/select-users.js';
import { checkUserId, describeUserId } from '../core/user-id.js';
import { readUsersFile } from '../source/users-file.js';
import { toSafeText } from '../core/upstream-text.js';
import { collect, tenantOption } from './tenant-args.js';

/** The flags of `sync` as commander reads them (camelCase keys). */
export interface SyncFlags {
  user?: string[];
  usersFile?: string;
  onlyFailed?: boolean;
  stale?: string;
  dryRun?: boolean;
  maxUsers?: string;
  maxDuration?: string;
  allowMassDelete?: boolean;
  fromLogs?: boolean;
  /** `--tenant NAME` (issue #23), repeatable; src/cli/tenant-args.ts reads it. */
  tenant?: string[];
}

/** The flags of `sync`: the parser and `sync --help` both read these. */
export function syncOptions(): Option[] {
  return [
    new Option('--user <id>', 'sync just this user (repeatable)').argParser(collect),
    new Option('--users-file <path>', 'sync the user IDs in a file, one per line (- for stdin)'),
    new Option('--only-failed', 'sync the users whose last sync failed'),
    new Option('--stale <since>', 'sync users not synced successfully since then: a duration (24h, 7d) or a date (2026-11-01)'),
    new Option('--max-users <n>', 'a budget: at most this many users, stalest first (default SYNC_MAX_USERS)'),
    new Option('--max-duration <duration>', 'a budget: stop taking users after this long, e.g. 30m (default SYNC_MAX_DURATION)'),
    new Option('--dry-run', 'fetch and compare; write nothing'),
    new Option('--allow-mass-delete', 'confirm a run that marks more than SYNC_MAX_DELETE_RATIO of the tokens deleted'),
    new Option('--from-logs', 'follow the tenant logs from the stored checkpoint and sync the users they name'),
    tenantOption('sync only this tenant (repeatable; default every configured tenant, one after the other)'),
  ];
}

type SyncValues = SyncFlags;

/** Largest `--max-users` (the same bound as SYNC_MAX_USERS). */
const MAX_USERS_LIMIT = 1_000_000_000;
/** `--max-duration` bounds: under a second is a typo; over a year, too. */
const MIN_DURATION_MS = 1000;
const MAX_DURATION_MS = 366 * 86_400_000;

/**
 * Flags to a run request; one sentence naming the flag to fix when a value is wrong or they
 * do not fit together. A `--users-file` is read and checked in full here, before any run
 * starts, so a bad line never leaves a half run. `loadConfig` is called only once every flag
 * has passed, for the budget defaults: a wrong flag is a usage error (exit 64) whatever the
 * configuration, and a wrong configuration is exit 1 only with flags that are right.
 */
export async function toSyncRequest(values: SyncValues, loadConfig: () => Pick<Config, 'sync'>) {
  const explicit = values.user !== undefined || values.usersFile !== undefined;
  const kinds = [explicit, values.onlyFailed === true, values.stale !== undefined].filter(Boolean).length;
  if (kinds > 1) throw new UsageError('--user/--users-file, --only-failed and --stale choose users in different ways: use one');
  const fromFlags = [...new Set((values.user ?? []).map(toFlagUserId))];
  const maxUsersFlag = values.maxUsers === undefined ? undefined : parseMaxUsers(values.maxUsers);
  const maxDurationFlag = values.maxDuration === undefined ? undefined : parseMaxDuration(values.maxDuration);
  // The tenant logs choose the users, all of them: a selection, a budget or a dry run would skip entries.
  const fromLogs = values.fromLogs === true;
  if (fromLogs && (kinds > 0 || values.dryRun || values.maxUsers !== undefined || values.maxDuration !== undefined)) {
    throw new UsageError(
      '--from-logs syncs the users the tenant logs name: it takes no --user, --users-file, --only-failed, --stale, --max-users, --max-duration or --dry-run',
    );
  }

  let selection: UserSelection = { kind: 'source' };
  if (explicit) {
    const file = values.usersFile;
    if (file !== undefined && file.trim() === '') throw new UsageError('--users-file needs a path (or - for stdin), not an empty value.');
    const userIds = file === undefined ? fromFlags : [...new Set([...fromFlags, ...(await readUsersFile(file))])];
    selection = { kind: 'ids', userIds, total: userIds.length };
  } else if (values.onlyFailed) {
    selection = { kind: 'failed' };
  } else if (values.stale !== undefined) {
    selection = { kind: 'stale', since: parseSince(values.stale) };
  }

  const { sync: defaults } = loadConfig();
  const maxUsers = maxUsersFlag ?? defaults.maxUsers;
  const maxDurationMs = maxDurationFlag ?? defaults.maxDurationMs;
  const backfill = selection.kind !== 'source';
  const args = Object.fromEntries(
    Object.entries({
      users: values.user && fromFlags.slice(0, 100),
      usersFile: values.usersFile,
      onlyFailed: values.onlyFailed,
      stale: values.stale,
      maxUsers,
      maxDurationMs,
      allowMassDelete: values.allowMassDelete,
    }).filter(([, value]) => value !== undefined),
  );
  return {
    fromLogs,
    trigger: backfill ? ('backfill' as const) : ('manual' as const),
    selection,
    budget: { maxUsers, maxDurationMs },
    dryRun: values.dryRun === true,
    allowMassDelete: values.allowMassDelete === true,
    args: Object.keys(args).length > 0 ? args : undefined,
  };
}

/** A `--user` value, trimmed; refused when empty or when checkUserId finds a problem. */
function toFlagUserId(raw: string): string {
  const id = raw.trim();
  if (id === '') throw new UsageError('--user needs a user ID, not an empty value.');
  const problem = checkUserId(id);
  if (problem) throw new UsageError(`--user ${describeUserId(id)}: the user ID ${problem}.`);
  return id;
}

/** A plain positive integer: digits only (no `0x10`, `1e3`, `+5`, `2.0`), 1 to 1,000,000,000. */
function parseMaxUsers(text: string): number {
  const value = /^\d{1,10}$/.test(text) ? Number(text) : NaN;
  if (!(value >= 1 && value <= MAX_USERS_LIMIT)) {
    throw new UsageError(`--max-users takes a whole number from 1 to ${MAX_USERS_LIMIT.toLocaleString('en')} written in digits (got ${quote(text)}).`);
  }
  return value;
}

function parseMaxDuration(text: string): number {
  const value = parseDuration(text);
  if (value === undefined || !(value >= MIN_DURATION_MS && value <= MAX_DURATION_MS)) {
    throw new UsageError(`--max-duration takes a duration from 1s to 366d such as 30m or 2h (got ${quote(text)}).`);
  }
  return value;
}

/**
 * `--stale 24h` (not synced in the last 24 hours) or `--stale 2026-11-01` (not since that
 * date, UTC midnight; a date-time such as 2026-11-01T08:00Z works too). A date that does not
 * exist (2026-02-31) or lies in the future is refused: it would select every user.
 */
function parseSince(text: string): Date {
  const duration = parseDuration(text);
  if (duration !== undefined) return new Date(Date.now() - duration);
  const ms = parseIsoDate(text.trim());
  if (ms === undefined) {
    throw new UsageError(`--stale takes a duration such as 24h or 7d, or a date that exists such as 2026-11-01 (got ${quote(text)}).`);
  }
  if (ms > Date.now()) throw new UsageError(`--stale ${quote(text)} is in the future; give a past date or a duration such as 24h.`);
  return new Date(ms);
}

const quote = (text: string) => JSON.stringify(toSafeText(text, 60));
