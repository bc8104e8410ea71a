import { SyncError } from '../core/errors.js';
import type { Auth0Client } from './client.js';
import { answerOf, Auth0Error } from './errors.js';
import { checkLogId, compareLogIds, logIdOf } from './log-id.js';

/** A tenant log entry as far as we read it; `user_id` and `date` are optional in Auth0's schema. */
export interface Auth0LogEntry {
  log_id?: unknown;
  date?: unknown;
  type?: unknown;
  user_id?: unknown;
  client_id?: unknown;
  details?: unknown;
  [key: string]: unknown;
}

const LOGS_PATH = '/api/v2/logs';

/**
 * The tenant logs could not be followed from where we are:
 * - `log_checkpoint_expired`: the API no longer accepts the stored `from` (older than the plan's
 *   retention, 1 to 30 days): history between it and now is lost.
 * - `logs_forbidden`: the client lacks `read:logs` (a 403): the log follower is off.
 */
export class LogsError extends SyncError {
  declare readonly code: 'log_checkpoint_expired' | 'logs_forbidden';
}

/**
 * Why the reader dropped an answered entry before it reached the pipeline (issue #18):
 * - `bad_log_id`: its `log_id` fails `checkLogId` (missing, control characters, over 256 characters);
 * - `before_checkpoint`: at or before the checkpoint the follow started from (an inclusive `from`);
 * - `duplicate`: already read in this follow.
 */
export type LogIgnoreReason = 'bad_log_id' | 'before_checkpoint' | 'duplicate';

/**
 * Why reading stopped, on the last page:
 * - `caught_up`: an answer with nothing new (`[]`, or only entries already read) and no cursor past this one;
 * - `stuck`: new entries, or a full page, but no `next` past the cursor: reading again would loop;
 * - `page_limit` / `time_limit`: the follow's bound on pages or time was reached.
 */
export type LogReadEnd = 'caught_up' | 'stuck' | 'page_limit' | 'time_limit';

export interface LogPage {
  /** The entries new to this follow (a valid `log_id` after the checkpoint, not read before), as answered. */
  entries: Auth0LogEntry[];
  /**
   * The cursor after this page, always a checked log id past the previous one (or the same one
   * on the last page): the `Link` header's `from`, or this page's last good `log_id` when the
   * Link's is bad, does not move on or jumps past the entries answered.
   */
  next: string;
  ignored: Record<LogIgnoreReason, number>;
  /** Set on the last page only. */
  end?: LogReadEnd;
}

export interface ReadLogsOptions {
  /** `take`, 1..100; default 100. */
  take?: number;
  /** Pages after which reading stops with `page_limit`; default unbounded. */
  maxPages?: number;
  /** Milliseconds since the epoch (by `now`) after which no page is requested (`time_limit`). */
  deadline?: number;
  /** The clock for `deadline`; default Date.now. */
  now?: () => number;
  signal?: AbortSignal;
}

/** Zero counts of each LogIgnoreReason. */
export function noLogsIgnored(): Record<LogIgnoreReason, number> {
  return { bad_log_id: 0, before_checkpoint: 0, duplicate: 0 };
}

/**
 * The tenant logs after `checkpoint`, one page at a time (checkpoint mode:
 * `GET /api/v2/logs?from=&take=`), each page moving the cursor on. Follows the `Link` header's
 * `rel="next"`, keeping only its `from` and `take` (never its host). Every entry whose log id
 * is bad, at or before `checkpoint`, or already read is dropped and counted, never yielded.
 * Always ends, and its last page says why (`end`): an answer with nothing new, a `next` that
 * does not advance, `maxPages` or `deadline`. One request per page.
 * Throws LogsError for an expired checkpoint or a missing scope, Auth0Error otherwise.
 */
export async function* readLogs(client: Auth0Client, checkpoint: string, options: ReadLogsOptions = {}): AsyncGenerator<LogPage> {
  const now = options.now ?? Date.now;
  const maxPages = options.maxPages ?? Infinity;
  const seen = new Set<string>();
  let take = options.take ?? 100;
  let cursor = checkpoint;
  for (let pages = 1; ; pages += 1) {
    // Time spent between pages (the caller syncing a batch) counts too.
    if (pages > 1 && options.deadline !== undefined && now() >= options.deadline) {
      yield { entries: [], next: cursor, ignored: noLogsIgnored(), end: 'time_limit' };
      return;
    }
    const { body, headers } = await client.getJsonWithHeaders(LOGS_PATH, { from: cursor, take }, options.signal).catch((error: unknown) => {
      throw toLogsError(error);
    });
    if (!Array.isArray(body)) throw new Auth0Error('bad_response', `GET ${LOGS_PATH} answered with JSON that is not an array`);
    const entries: Auth0LogEntry[] = [];
    const ignored = noLogsIgnored();
    let last: string | undefined;
    for (const entry of body as Auth0LogEntry[]) {
      const id = logIdOf(entry);
      if (id === undefined) ignored.bad_log_id += 1;
      else if (compareLogIds(id, checkpoint) <= 0) ignored.before_checkpoint += 1;
      else if (seen.has(id)) ignored.duplicate += 1;
      else {
        seen.add(id);
        entries.push(entry);
      }
      if (id !== undefined && (last === undefined || compareLogIds(id, last) > 0)) last = id;
    }
    const link = nextLink(headers.link);
    const next = toNextCursor(cursor, link?.from, last);
    let end: LogReadEnd | undefined;
    // A full page that cannot be read past (take 1 and an inclusive `from`) may hide more: stuck, not caught up.
    if (next === undefined) end = entries.length > 0 || body.length >= take ? 'stuck' : 'caught_up';
    else if (pages >= maxPages) end = 'page_limit';
    else if (options.deadline !== undefined && now() >= options.deadline) end = 'time_limit';
    yield { entries, next: next ?? cursor, ignored, ...(end ? { end } : {}) };
    if (end || next === undefined) return;
    cursor = next;
    if (link?.take) take = link.take;
  }
}

/**
 * Where reading goes on from after a page, or undefined when nothing moves past `cursor` (an
 * empty answer, an inclusive `from` answering only the checkpoint, a `next` that stays put).
 * The Link's `from` wins when it is a good log id past the cursor and not past the page's last
 * good entry (`last`): a `next` beyond the entries answered would skip entries in silence.
 * Pure.
 */
export function toNextCursor(cursor: string, linkFrom: string | undefined, last: string | undefined): string | undefined {
  const advances = (id: string | undefined): id is string => id !== undefined && checkLogId(id) === undefined && compareLogIds(id, cursor) > 0;
  if (advances(linkFrom) && (last === undefined || compareLogIds(linkFrom, last) <= 0)) return linkFrom;
  return advances(last) ? last : undefined;
}

/** Pages read together before the follower syncs the users they name. */
export interface LogBatch {
  entries: Auth0LogEntry[];
  /** The cursor after the batch (the `from` it started at when no page was read). */
  next: string;
  ignored: Record<LogIgnoreReason, number>;
  pages: number;
  /** Why reading stopped, when it did within this batch. */
  end?: LogReadEnd;
}

/**
 * Up to `maxPages` pages more from `pages` (a `readLogs` generator that began at or before
 * `from`), gathered into one batch. A batch with `end` is the last one.
 */
export async function nextLogBatch(pages: AsyncIterator<LogPage>, from: string, maxPages: number): Promise<LogBatch> {
  const batch: LogBatch = { entries: [], next: from, ignored: noLogsIgnored(), pages: 0 };
  while (batch.pages < maxPages) {
    const { value: page, done } = await pages.next();
    if (done) {
      batch.end ??= 'caught_up';
      break;
    }
    batch.pages += 1;
    batch.entries.push(...page.entries);
    batch.next = page.next;
    for (const reason of Object.keys(batch.ignored) as LogIgnoreReason[]) batch.ignored[reason] += page.ignored[reason];
    if (page.end) {
      batch.end = page.end;
      break;
    }
  }
  return batch;
}

/**
 * The newest log entry (search mode, `sort=date:-1&per_page=1&page=0`), or undefined when the
 * tenant has none: where following starts when no checkpoint is stored, and how far behind the
 * checkpoint is. One request.
 */
export async function fetchNewestLog(client: Auth0Client, signal?: AbortSignal): Promise<Auth0LogEntry | undefined> {
  return fetchEdgeLog(client, 'date:-1', signal);
}

/**
 * The oldest retained log entry (search mode, `sort=date:1&per_page=1&page=0`, as Auth0's log
 * export extension starts), or undefined when the tenant has none: whether retention has cut
 * past a checkpoint. One request.
 */
export async function fetchOldestLog(client: Auth0Client, signal?: AbortSignal): Promise<Auth0LogEntry | undefined> {
  return fetchEdgeLog(client, 'date:1', signal);
}

async function fetchEdgeLog(client: Auth0Client, sort: string, signal?: AbortSignal): Promise<Auth0LogEntry | undefined> {
  const body = await client.getJson(LOGS_PATH, { sort, per_page: 1, page: 0 }, signal).catch((error: unknown) => {
    throw toLogsError(error);
  });
  if (!Array.isArray(body)) throw new Auth0Error('bad_response', `GET ${LOGS_PATH} answered with JSON that is not an array`);
  return body[0] as Auth0LogEntry | undefined;
}

/**
 * The `from` and `take` of a `Link: <…>; rel="next"` header. Only those two query values are
 * kept: the URL's host and path are ignored, so an answer cannot send the job elsewhere.
 */
export function nextLink(header: string | string[] | undefined): { from?: string; take?: number } | undefined {
  const text = Array.isArray(header) ? header.join(',') : header;
  if (!text) return undefined;
  for (const part of text.split(/,(?=\s*<)/)) {
    const match = /^\s*<([^>]*)>(.*)$/.exec(part);
    if (!match || !/;\s*rel="?next"?/i.test(match[2] ?? '')) continue;
    let url: URL;
    try {
      url = new URL(match[1] ?? '', 'http://link.invalid');
    } catch {
      return undefined;
    }
    const from = url.searchParams.get('from') ?? undefined;
    const takeText = url.searchParams.get('take');
    const take = takeText && /^\d+$/.test(takeText) && Number(takeText) >= 1 && Number(takeText) <= 100 ? Number(takeText) : undefined;
    return { from: from || undefined, take };
  }
  return undefined;
}

/**
 * What an error from the logs endpoint means. What Auth0 answers for a checkpoint older than
 * retention is not documented: a 404, or a 400 that speaks of the checkpoint,
 * `from` or a log id, is taken as expired. Any 403 means the logs are closed to this client.
 */
function toLogsError(error: unknown): unknown {
  if (!(error instanceof Auth0Error)) return error;
  const detail = answerOf(error);
  if (error.status === 403) {
    return new LogsError(
      'logs_forbidden',
      `The client may not read the tenant logs (${LOGS_PATH} answered 403); grant it the read:logs scope to follow them.`,
      { cause: error },
    );
  }
  if (error.status === 404 || (error.status === 400 && (error.code === 'cursor_expired' || /checkpoint|from|log.?id|retention/i.test(detail)))) {
    return new LogsError('log_checkpoint_expired', `The stored log checkpoint is no longer accepted (${detail.replace(/^ answered /, '')})`, {
      cause: error,
    });
  }
  return error;
}
