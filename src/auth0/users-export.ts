/**
 * The tenant's users export (issue #10; Auth0 docs: "Bulk user exports"):
 * start a job (`POST /api/v2/jobs/users-exports`), poll it (`GET /api/v2/jobs/{id}`) until it
 * completes, then stream the gzip NDJSON file at its `location` (download → gunzip → lines →
 * batches), so memory stays flat whatever the tenant's size.
 *
 * The Management API calls go through the Auth0 client (token, limiter, retries). The download
 * does NOT: `location` is a presigned URL on a storage host, and the Management API token must
 * never be sent there (it needs none, and a third-party host must not see it).
 */
import { StringDecoder } from 'node:string_decoder';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import got, { RequestError, type Response } from 'got';
import type { Clock } from '../core/clock.js';
import { isLoopback } from '../core/config.js';
import type { ExportedUser } from '../core/exported-user.js';
import { FatalError } from '../core/errors.js';
import { toSafeText } from '../core/upstream-text.js';
import type { Auth0Client } from './client.js';
import { Auth0Error, describeRequestError } from './errors.js';
import { IMPORT_CAPS } from '../core/config.js';
import { describeBadLine, isBadLine, LineSplitter, toLineUser, type BadLine } from './users-export-lines.js';

/** The Management API's job object, as far as the export uses it. */
export interface Auth0ExportJob {
  id: string;
  status: string;
  connection_id?: string;
  /** The connection's name, when the job was limited to one connection. */
  connection?: string;
  percentage_done?: number;
  time_left_seconds?: number;
  location?: string;
}

export type UsersExportErrorCode =
  | 'export_failed' // the job says `failed`
  | 'export_timeout' // the job did not complete within --timeout
  | 'export_unreadable' // the file is truncated, not gzip, not NDJSON, or holds too many bad lines
  | 'export_too_large' // a cap reached: compressed size, inflated size (IMPORT_MAX_INFLATE_RATIO), lines (IMPORT_MAX_LINES)
  | 'link_expired' // the storage host refused the presigned link (it lives 60 s)
  | 'download_failed' // the storage host answered something else, or the connection broke
  | 'download_refused'; // the location is not https (or plain http on loopback), or holds credentials

/** The export could not be read; nothing was applied. */
export class UsersExportError extends FatalError {
  declare readonly code: UsersExportErrorCode;
  constructor(code: UsersExportErrorCode, message: string, options?: { cause?: unknown }) {
    super(code, message, options);
  }
}

/**
 * The fields asked for. `identities[0].connection` exported as `connection` is Auth0's own
 * example for the connection of each user (the users-export docs).
 */
const EXPORT_FIELDS: readonly { name: string; export_as?: string }[] = [
  { name: 'user_id' },
  { name: 'email' },
  { name: 'created_at' },
  { name: 'last_login' },
  { name: 'blocked' },
  { name: 'identities[0].connection', export_as: 'connection' },
];

const JOBS_PATH = '/api/v2/jobs';

function toJob(body: unknown, what: string): Auth0ExportJob {
  const job = body as Partial<Auth0ExportJob> | null;
  if (!job || typeof job.id !== 'string' || typeof job.status !== 'string') {
    throw new Auth0Error('bad_response', `${what} answered without a job id and status`);
  }
  return job as Auth0ExportJob;
}

/**
 * Start a users export job in JSON (NDJSON) format with EXPORT_FIELDS, for every connection or
 * only `connectionId`. Needs `read:users`.
 */
export async function startExport(client: Auth0Client, options: { connectionId?: string; signal?: AbortSignal } = {}): Promise<Auth0ExportJob> {
  const what = `POST ${JOBS_PATH}/users-exports`;
  const body = { format: 'json', fields: EXPORT_FIELDS, ...(options.connectionId ? { connection_id: options.connectionId } : {}) };
  const answer = await client.postJson(`${JOBS_PATH}/users-exports`, body, options.signal);
  return toJob(answer, what);
}

/** One `GET /api/v2/jobs/{id}`. Auth0 lists read:users and create:users for it. */
async function fetchExportJob(client: Auth0Client, jobId: string, signal?: AbortSignal): Promise<Auth0ExportJob> {
  const what = `GET ${JOBS_PATH}/{id}`;
  const answer = await client.getJson(`${JOBS_PATH}/${encodeURIComponent(jobId)}`, {}, signal);
  return toJob(answer, what);
}

export interface WaitOptions {
  clock: Clock;
  /** Give up after this long, in milliseconds (`--timeout`). */
  timeoutMs: number;
  /** Called after each poll: percentage done and time left. */
  onProgress?: (job: Auth0ExportJob) => void;
  /** First wait between polls; doubles up to `maxPollMs`. */
  firstPollMs?: number;
  maxPollMs?: number;
  signal?: AbortSignal;
}

/**
 * Poll the job until it is `completed` with a `location`. `failed` is an error; any other status
 * counts as not done yet (exports document `pending` then `completed`; imports also use
 * `processing`). Past `timeoutMs` it throws `export_timeout`.
 */
export async function waitForExport(client: Auth0Client, job: Auth0ExportJob, options: WaitOptions): Promise<Auth0ExportJob & { location: string }> {
  const deadline = options.clock.now() + options.timeoutMs;
  const jobName = toSafeText(job.id, 80);
  let wait = options.firstPollMs ?? 200;
  let current = job;
  for (;;) {
    if (current.status === 'completed') {
      if (typeof current.location === 'string' && current.location) return current as Auth0ExportJob & { location: string };
      throw new UsersExportError('export_failed', `The users export job ${jobName} completed without a location to download it from.`);
    }
    if (current.status === 'failed') {
      throw new UsersExportError('export_failed', `The users export job ${jobName} failed on Auth0's side; nothing was imported. Run the import again later.`);
    }
    const left = deadline - options.clock.now();
    if (left <= 0) {
      throw new UsersExportError(
        'export_timeout',
        `The users export job ${jobName} did not complete within ${Math.round(options.timeoutMs / 1000)} s (last: ${toSafeText(current.status, 40)}, ${current.percentage_done ?? 0}% done); nothing was imported. Raise --timeout or run the import again later.`,
      );
    }
    await options.clock.sleep(Math.min(wait, left), options.signal);
    wait = Math.min(wait * 2, options.maxPollMs ?? 5000);
    current = await fetchExportJob(client, job.id, options.signal);
    options.onProgress?.(current);
  }
}

/** The download URL, refused unless https (plain http only on loopback) and without credentials. */
export function checkDownloadUrl(location: string): URL {
  let url: URL;
  try {
    url = new URL(location);
  } catch {
    throw new UsersExportError('download_refused', 'The users export job gave a location that is not a URL.');
  }
  const secure = url.protocol === 'https:' || (url.protocol === 'http:' && isLoopback(url));
  if (!secure || url.username || url.password) {
    throw new UsersExportError(
      'download_refused',
      `The users export job gave a location on ${toSafeText(url.protocol, 10)}//${toSafeText(url.host, 100)}; only https:// (plain http only on loopback) without credentials is downloaded.`,
    );
  }
  return url;
}

export interface StreamOptions {
  /** Users per `onBatch` call (a chunk's lines may take it a little over). */
  batchSize?: number;
  /** Largest compressed file accepted, in bytes (default 8 GiB). */
  maxBytes?: number;
  /** Longest line accepted, in characters (default 1 MiB): a bound on what one line may hold in memory. */
  maxLineBytes?: number;
  /**
   * Largest inflated size, as a multiple of the compressed bytes read so far, plus 1 MiB
   * (default 100: a real export inflates 5 to 15 times, a gzip bomb 200 to 1,000 times).
   */
  maxInflateRatio?: number;
  /** Most lines the file may hold (default 50,000,000). */
  maxLines?: number;
  /**
   * A line that cannot be taken (too long, not JSON, no user_id, a user ID checkUserId refuses).
   * Given, the line is skipped and reading goes on (it may throw to stop); not given, the first
   * bad line fails the read with `export_unreadable`.
   */
  onBadLine?: (bad: BadLine) => void;
  /** Connect, first byte and idle-socket timeout, in milliseconds. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

/** Inflated bytes always allowed on top of the ratio, so a small file is never measured by its header. */
const INFLATE_ALLOWANCE = 2 ** 20;

/**
 * Download `location` and hand its users to `onBatch`, in order, about `batchSize` at a time,
 * with the number of the last line read; the next chunk is read only once `onBatch` has
 * resolved (back-pressure reaches the socket). A plain got stream, no Management API client:
 * no Authorization header, no redirects, no retries (a failed download is retried by asking the
 * job for a fresh link, see readExport). Throws `link_expired` for a 403/410,
 * `download_failed` for other answers and broken connections, `export_unreadable` for a
 * truncated or malformed file, `export_too_large` for a cap reached; an error thrown by
 * `onBatch` or `onBadLine` comes out as it was thrown. Returns the number of users handed over.
 */
export async function streamExport(
  location: string,
  onBatch: (users: ExportedUser[], lastLine: number) => Promise<void>,
  options: StreamOptions = {},
): Promise<number> {
  const url = checkDownloadUrl(location);
  const batchSize = options.batchSize ?? 2000;
  const maxBytes = options.maxBytes ?? 8 * 2 ** 30;
  const maxLineBytes = options.maxLineBytes ?? 2 ** 20;
  const maxInflateRatio = options.maxInflateRatio ?? IMPORT_CAPS.maxInflateRatio;
  const maxLines = options.maxLines ?? IMPORT_CAPS.maxLines;
  const timeoutMs = options.timeoutMs ?? 60_000;
  const where = `the users export file on ${url.host}`;
  const Where = `The users export file on ${url.host}`;
  const download = got.stream(url, {
    headers: { 'user-agent': 'auth0-refresh-token-sync' },
    followRedirect: false,
    throwHttpErrors: false,
    decompress: false,
    retry: { limit: 0 },
    timeout: { connect: timeoutMs, response: timeoutMs, socket: timeoutMs },
    signal: options.signal,
  });
  let response: Response;
  try {
    response = await new Promise<Response>((resolve, reject) => {
      download.once('response', resolve);
      download.once('error', reject);
    });
  } catch (error) {
    download.destroy();
    throw downloadBroke(error, where);
  }
  if (response.statusCode !== 200) {
    const body = toSafeText(await readSome(download, 2048), 200);
    download.destroy();
    const message = `${Where} answered ${response.statusCode}${body ? `: ${body}` : ''}`;
    throw response.statusCode === 403 || response.statusCode === 410
      ? new UsersExportError('link_expired', message)
      : new UsersExportError('download_failed', message);
  }

  // The first error raised while reading (a cap, a bad line, onBatch's own). Kept here because
  // the pipeline, once it tears the streams down, may reject with its own AbortError ("The
  // operation was aborted") instead of the cause (issue #24).
  let failure: unknown;
  const fail = (error: unknown): never => {
    failure ??= error;
    throw error;
  };
  let compressed = 0;
  let inflated = 0;
  const splitter = new LineSplitter(
    maxLineBytes,
    maxLines,
    (line, text) => takeLine(line, text),
    (line) =>
      fail(
        new UsersExportError(
          'export_too_large',
          `${Where} holds more than ${maxLines} lines (line ${line} is one too many); refused, nothing was imported. Raise IMPORT_MAX_LINES if the tenant really is that large.`,
        ),
      ),
  );
  const capCompressed = new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      compressed += chunk.length;
      if (compressed <= maxBytes) return callback(null, chunk);
      failure ??= new UsersExportError('export_too_large', `${Where} is larger than ${maxBytes} bytes; refused, nothing was imported.`);
      callback(failure as Error);
    },
  });
  const capInflated = new Transform({
    transform(chunk: Buffer, _encoding, callback: TransformCallback) {
      inflated += chunk.length;
      if (inflated <= maxInflateRatio * compressed + INFLATE_ALLOWANCE) return callback(null, chunk);
      failure ??= new UsersExportError(
        'export_too_large',
        `${Where} inflates to more than ${maxInflateRatio} times its compressed size (${inflated} bytes from ${compressed}, at line ${splitter.line + 1}): a gzip bomb or not a users export; refused, nothing was imported. Raise IMPORT_MAX_INFLATE_RATIO if it is a real export.`,
      );
      callback(failure as Error);
    },
  });
  let users = 0;
  let batch: ExportedUser[] = [];
  const takeLine = (line: number, text: string | undefined) => {
    const taken = toLineUser(line, text, maxLineBytes);
    if (taken === undefined) return;
    if (!isBadLine(taken)) {
      batch.push(taken);
      return;
    }
    if (options.onBadLine) {
      try {
        options.onBadLine(taken);
      } catch (error) {
        fail(error);
      }
      return;
    }
    fail(new UsersExportError('export_unreadable', `${Where}: ${describeBadLine(taken)}; nothing was imported.`));
  };
  const flush = async () => {
    if (batch.length === 0) return;
    const full = batch;
    batch = [];
    users += full.length;
    await onBatch(full, splitter.line).catch(fail);
  };
  try {
    await pipeline(download, capCompressed, createGunzip(), capInflated, async (source: AsyncIterable<Buffer>) => {
      // A line splitter of our own rather than node:readline: it bounds a line's length, so a
      // hostile or broken file cannot make one line take all memory.
      const decoder = new StringDecoder('utf8');
      for await (const chunk of source) {
        splitter.write(decoder.write(chunk));
        if (batch.length >= batchSize) await flush();
      }
      splitter.write(decoder.end());
      splitter.end();
      await flush();
    });
  } catch (error) {
    if (failure !== undefined) throw failure;
    if (error instanceof UsersExportError) throw error;
    // Read by code, not instanceof Error: zlib's errors may come from another realm (Jest's vm).
    const { code, message } = error as { code?: unknown; message?: unknown };
    if (typeof code === 'string' && code.startsWith('Z_')) {
      // zlib: "unexpected end of file" (Z_BUF_ERROR) for a cut-off file, Z_DATA_ERROR for garbage.
      throw new UsersExportError(
        'export_unreadable',
        `${Where} is truncated or not gzip (${String(message)}, after line ${splitter.line}); nothing was imported.`,
        { cause: error },
      );
    }
    if (error instanceof RequestError) throw downloadBroke(error, where);
    throw error;
  }
  return users;
}

function downloadBroke(error: unknown, where: string): UsersExportError {
  return new UsersExportError('download_failed', `Downloading ${where} failed: ${describeRequestError(error, 300)}`, { cause: error });
}

async function readSome(stream: AsyncIterable<Buffer>, max: number): Promise<string> {
  let text = '';
  try {
    for await (const chunk of stream) {
      text += chunk.toString('utf8');
      if (text.length >= max) break;
    }
  } catch {
    // what arrived is enough for a message
  }
  return text.slice(0, max);
}

export interface ReadExportHandlers {
  /** Before each download attempt: forget what an earlier attempt handed over. */
  onAttempt(): Promise<void>;
  /** Users in file order, with the number of the last line read. */
  onBatch(users: ExportedUser[], lastLine: number): Promise<void>;
}

/**
 * Stream the completed job's file; when the link has expired (it lives 60 s) or the download
 * broke, ask for the job again for a fresh link and start over, up to `attempts` times.
 */
export async function readExport(
  client: Auth0Client,
  job: Auth0ExportJob & { location: string },
  handlers: ReadExportHandlers,
  options: StreamOptions & { attempts?: number; onRetry?: (error: UsersExportError) => void } = {},
): Promise<number> {
  const attempts = options.attempts ?? 3;
  let location = job.location;
  for (let attempt = 1; ; attempt += 1) {
    await handlers.onAttempt();
    try {
      return await streamExport(location, handlers.onBatch, options);
    } catch (error) {
      const again = error instanceof UsersExportError && (error.code === 'link_expired' || error.code === 'download_failed');
      if (!again || attempt >= attempts) throw error;
      options.onRetry?.(error);
      const fresh = await fetchExportJob(client, job.id, options.signal);
      if (fresh.status !== 'completed' || !fresh.location) {
        throw new UsersExportError(
          'export_failed',
          `The users export job ${toSafeText(job.id, 80)} no longer offers its file (status ${toSafeText(fresh.status, 40)}); run the import again.`,
        );
      }
      location = fresh.location;
    }
  }
}
