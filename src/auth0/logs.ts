import { SyncError } from '../errors.js';
import type { Auth0Client } from './client.js';
import { answerOf, Auth0Error } from './errors.js';

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

export interface LogPage {
  entries: Auth0LogEntry[];
  /** The `from` to read the next page with: the `Link` header's, or this page's last `log_id`. */
  next: string;
}

export interface ReadLogsOptions {
  /** `take`, 1..100; default 100. */
  take?: number;
  /** Pages after which the generator stops (the caller resumes from the last `next`). */
  maxPages?: number;
  signal?: AbortSignal;
}

/**
 * The tenant logs after the checkpoint `from`, one page at a time, in `log_id` order
 * (checkpoint mode: `GET /api/v2/logs?from=&take=`). Follows the `Link` header's `rel="next"`,
 * keeping only its `from` and `take` (never its host), and stops at the first empty page.
 * Throws LogsError for an expired checkpoint or a missing scope, Auth0Error otherwise.
 */
export async function* readLogs(client: Auth0Client, from: string, options: ReadLogsOptions = {}): AsyncGenerator<LogPage> {
  let take = options.take ?? 100;
  let cursor = from;
  for (let page = 1; page <= (options.maxPages ?? Infinity); page += 1) {
    const { body, headers } = await client
      .getJsonWithHeaders(LOGS_PATH, { from: cursor, take }, options.signal)
      .catch((error: unknown) => {
        throw toLogsError(error);
      });
    if (!Array.isArray(body)) throw new Auth0Error('bad_response', `GET ${LOGS_PATH} answered with JSON that is not an array`);
    const entries = body as Auth0LogEntry[];
    if (entries.length === 0) return;
    const link = nextLink(headers.link);
    const lastId = entries.at(-1)?.log_id;
    // A `next` that does not move on would read the same page forever: continue after the last entry.
    const next = link?.from && link.from !== cursor ? link.from : typeof lastId === 'string' && lastId ? lastId : undefined;
    if (!next) throw new Auth0Error('bad_response', `GET ${LOGS_PATH} answered entries without a log_id to continue from`);
    yield { entries, next };
    cursor = next;
    if (link?.take) take = link.take;
  }
}

/**
 * The newest log entry (search mode, `sort=date:-1&per_page=1&page=0`), or undefined when the
 * tenant has none: where following starts when no checkpoint is stored.
 */
export async function fetchNewestLog(client: Auth0Client, signal?: AbortSignal): Promise<Auth0LogEntry | undefined> {
  const body = await client
    .getJson(LOGS_PATH, { sort: 'date:-1', per_page: 1, page: 0 }, signal)
    .catch((error: unknown) => {
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
