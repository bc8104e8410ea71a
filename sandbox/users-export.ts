/**
 * The sandbox tenant's users export (issue #10): `POST /api/v2/jobs/users-exports` and
 * `GET /api/v2/jobs/{id}` on the Management API server (routed here by auth0-server.ts), and a
 * second loopback HTTP server standing for the storage host that serves the gzip file at the
 * job's presigned `location`: NDJSON for `format: "json"`, CSV (a header row, then one row a user)
 * for `format: "csv"`, which is the default when `format` is absent, as Auth0's is. `limit` keeps
 * only that many users. Like the real one (Auth0 documents a 60-second link), a link lives
 * 60 s (`linkLifetimeMs`), asking for the job again gives a fresh one, and the storage host
 * refuses a request that carries an Authorization header (400, counted in
 * `stats.authorizationRefused` so tests can assert the job never sent one).
 */
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip, gzipSync } from 'node:zlib';
import { closeServer, errorBody, listenOnLoopback, readBody } from './http.js';

/** A user as the export file holds it (the fields asked for, named by `export_as`). */
export type ExportUserJson = Record<string, unknown>;

export interface UsersExportOptions {
  /** How long a `location` link stays valid, default 60 s. */
  linkLifetimeMs?: number;
  /** `GET /api/v2/jobs/{id}` answers before a job completes, default 2. */
  pollsToComplete?: number;
  /**
   * Users generated lazily (`auth0|exp0000001`…) in every export instead of the tenant's user
   * map, so a benchmark can export a million users without holding them in memory.
   */
  generatedUsers?: number;
}

/**
 * What the next jobs created do, until changed: finish, fail, or never finish; and what their
 * file holds on a bad day (issue #24): a cut-off file, hostile lines, a large generated tenant,
 * a gzip bomb.
 */
export interface ExportScript {
  outcome?: 'complete' | 'fail' | 'never';
  /** Serve the file cut in half (a valid HTTP answer holding a truncated gzip stream). */
  truncate?: boolean;
  /**
   * Raw lines put into the file so that each stands at the given 1-based line number, the
   * users' lines moving down (numbers past the end are appended in order): text that is not
   * JSON, a line without user_id, a hostile user ID, a second line for a user.
   */
  insert?: Record<number, string>;
  /** The file holds this many generated users (`auth0|exp0000001`…, made while it is served) instead of the tenant's. */
  generate?: number;
  /**
   * A gzip bomb instead of users: `unit` repeated `times` times, compressed at level 9 as it is
   * served (a long line of `x`, or one valid line repeated, inflate about 1,000 times).
   */
  bomb?: { unit: string; times: number };
  /** Called as the file's line `line` is generated (before it is compressed and sent). */
  onLine?: { line: number; run: () => void };
}

export interface UsersExportStats {
  jobsCreated: number;
  /** `GET /api/v2/jobs/{id}` answers. */
  jobReads: number;
  /** Requests to the storage host, refused ones included. */
  downloads: number;
  /** Requests to the storage host that carried an Authorization header (each refused with 400). */
  authorizationRefused: number;
  /** Downloads refused because the link had expired. */
  expiredRefused: number;
  /** The last job's request body, as posted. */
  lastJobRequest?: unknown;
}

export interface UsersExportSandbox {
  /** Origin of the storage host, e.g. `http://127.0.0.1:PORT`. */
  readonly downloadUrl: string;
  readonly stats: UsersExportStats;
  /** Profile fields that override the generated ones for a user (email, connection, blocked, …). */
  setProfile(userId: string, fields: ExportUserJson): void;
  script(next: ExportScript): void;
  /** The next `n` downloads are refused as expired, whatever their link says. */
  expireNextDownloads(n: number): void;
  /** Whether this module answers `method path` on the API server. */
  handles(method: string, path: string): boolean;
  /** Answer an API request `handles` accepted, once auth0-server.ts has checked the token. */
  answer(req: IncomingMessage, res: ServerResponse, path: string, scopes: ReadonlySet<string>, send: Send): Promise<void>;
  close(): Promise<void>;
}

type Send = (res: ServerResponse, status: number, body: string) => void;

interface Job {
  id: string;
  format: 'json' | 'csv';
  /** Most users the file holds, when the request set `limit`. */
  limit: number | undefined;
  connectionId: string | undefined;
  connection: string | undefined;
  fields: { name: string; export_as?: string }[];
  createdAt: string;
  reads: number;
  script: ExportScript;
  /** The users the export holds: a snapshot of the tenant's IDs when the job was created. */
  userIds: string[] | undefined;
  generated: number;
}

const JOBS_EXPORT_PATH = '/api/v2/jobs/users-exports';
const JOB_PATH = /^\/api\/v2\/jobs\/(job_[A-Za-z0-9]+)$/;
const DEFAULT_FIELDS = ['user_id', 'email', 'created_at', 'last_login', 'blocked', 'identities'];

/** The connection of a user, from its ID's provider prefix (`auth0|…` is the database connection). */
function connectionOf(userId: string): string {
  const provider = userId.slice(0, Math.max(0, userId.indexOf('|')));
  if (provider === 'auth0' || provider === '') return 'Username-Password-Authentication';
  return provider;
}

/** The sandbox's connection ID for a connection name: stable, `con_` and 16 characters. */
export function connectionIdOf(name: string): string {
  return `con_${createHash('sha256').update(name).digest('hex').slice(0, 16)}`;
}

const BASE_TIME = Date.UTC(2022, 0, 1);
const DAY_MS = 86_400_000;

/** A user's full profile: deterministic in the user ID, then `overrides`. */
function makeExportUser(userId: string, overrides: ExportUserJson = {}): ExportUserJson {
  const digest = createHash('sha256').update(userId).digest();
  const created = BASE_TIME + (digest.readUInt32BE(0) % (900 * 86_400)) * 1000;
  const connection = typeof overrides.connection === 'string' ? overrides.connection : connectionOf(userId);
  const local = userId.slice(userId.indexOf('|') + 1).replace(/[^A-Za-z0-9._-]/g, '');
  return {
    user_id: userId,
    email: `${local || 'user'}@example.com`,
    created_at: new Date(created).toISOString(),
    last_login: digest[4]! % 5 === 0 ? null : new Date(created + (digest.readUInt32BE(5) % (300 * 86_400)) * 1000 + DAY_MS).toISOString(),
    blocked: digest[9]! % 17 === 0,
    identities: [
      {
        connection,
        provider: connection === 'Username-Password-Authentication' ? 'auth0' : connection,
        user_id: local,
        isSocial: connection !== 'Username-Password-Authentication',
      },
    ],
    ...overrides,
  };
}

/** `identities[0].connection` → the value at that path. */
function pick(user: ExportUserJson, path: string): unknown {
  let value: unknown = user;
  for (const part of path.replace(/\[(\d+)\]/g, '.$1').split('.')) {
    if (value === null || typeof value !== 'object') return undefined;
    value = (value as Record<string, unknown>)[part];
  }
  return value;
}

/** One line of the file: the fields asked for, each under its `export_as` name (NDJSON) or in its column (CSV). */
function toLine(user: ExportUserJson, fields: Job['fields'], format: Job['format']): string {
  if (format === 'csv') return fields.map((field) => csvCell(pick(user, field.name))).join(',');
  const out: Record<string, unknown> = {};
  for (const field of fields) {
    const value = pick(user, field.name);
    if (value !== undefined) out[field.export_as ?? field.name] = value;
  }
  return JSON.stringify(out);
}

/** A CSV cell: objects as JSON, quoted (RFC 4180) when it holds a comma, a quote or a line break. */
function csvCell(value: unknown): string {
  if (value === undefined || value === null) return '';
  const text = typeof value === 'object' ? JSON.stringify(value) : String(value);
  return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
}

function s3Error(code: string, message: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`;
}

/**
 * Starts the storage host on 127.0.0.1 and returns the export routes for the API server.
 * `listUserIds` gives the tenant's users at the time a job is created.
 */
export async function startUsersExport(listUserIds: () => Iterable<string>, options: UsersExportOptions = {}): Promise<UsersExportSandbox> {
  const linkLifetimeMs = options.linkLifetimeMs ?? 60_000;
  const pollsToComplete = options.pollsToComplete ?? 2;
  const signingKey = randomBytes(16);
  const jobs = new Map<string, Job>();
  const profiles = new Map<string, ExportUserJson>();
  let script: ExportScript = {};
  let expireNext = 0;
  const stats: UsersExportStats = { jobsCreated: 0, jobReads: 0, downloads: 0, authorizationRefused: 0, expiredRefused: 0 };

  const sign = (jobId: string, expires: number) => createHmac('sha256', signingKey).update(`${jobId}\0${expires}`).digest('hex');

  function jobJson(job: Job): Record<string, unknown> {
    const base = {
      id: job.id,
      type: 'users_export',
      format: job.format,
      ...(job.limit !== undefined ? { limit: job.limit } : {}),
      fields: job.fields,
      created_at: job.createdAt,
      ...(job.connectionId ? { connection_id: job.connectionId, connection: job.connection } : {}),
    };
    const done = job.reads >= pollsToComplete;
    const outcome = job.script.outcome ?? 'complete';
    if (!done || outcome === 'never') {
      const percentage = outcome === 'never' ? Math.min(99, job.reads * 10) : Math.floor((100 * job.reads) / pollsToComplete);
      return {
        ...base,
        status: job.reads === 0 ? 'pending' : 'processing',
        percentage_done: percentage,
        time_left_seconds: Math.max(1, pollsToComplete - job.reads) * 2,
      };
    }
    if (outcome === 'fail') return { ...base, status: 'failed' };
    const expires = Date.now() + linkLifetimeMs;
    const location = `${downloadUrl}/exports/${job.id}.${job.format}.gz?X-Amz-Expires=${Math.round(linkLifetimeMs / 1000)}&X-Amz-Date=${expires}&X-Amz-Signature=${sign(job.id, expires)}`;
    return { ...base, status: 'completed', percentage_done: 100, time_left_seconds: 0, location };
  }

  async function answer(req: IncomingMessage, res: ServerResponse, path: string, scopes: ReadonlySet<string>, send: Send): Promise<void> {
    if (req.method === 'POST' && path === JOBS_EXPORT_PATH) {
      if (!scopes.has('read:users')) {
        send(res, 403, errorBody(403, 'Insufficient scope, expected any of: read:users', 'insufficient_scope'));
        return;
      }
      const body = parseJson(await readBody(req));
      stats.lastJobRequest = body;
      if (!body || typeof body !== 'object' || Array.isArray(body)) {
        send(res, 400, errorBody(400, 'Payload validation error: the body must be a JSON object.', 'invalid_body'));
        return;
      }
      if (body.format !== undefined && body.format !== 'json' && body.format !== 'csv') {
        send(res, 400, errorBody(400, `Payload validation error: 'format' must be one of [json, csv].`, 'invalid_body'));
        return;
      }
      if (body.limit !== undefined && !(Number.isInteger(body.limit) && (body.limit as number) >= 1)) {
        send(res, 400, errorBody(400, `Payload validation error: 'limit' must be an integer of at least 1.`, 'invalid_body'));
        return;
      }
      let connection: string | undefined;
      const connectionId = typeof body.connection_id === 'string' ? body.connection_id : undefined;
      const userIds = options.generatedUsers === undefined ? [...listUserIds()] : undefined;
      if (connectionId !== undefined) {
        const names = new Set((userIds ?? []).map((id) => profileOf(id).identities).map((ids) => (ids as { connection: string }[])[0]!.connection));
        names.add(connectionOf('auth0|x'));
        connection = [...names].find((name) => connectionIdOf(name) === connectionId);
        if (!connection) {
          send(res, 404, errorBody(404, 'The connection does not exist.', 'inexistent_connection'));
          return;
        }
      }
      const fields = Array.isArray(body.fields) ? (body.fields as Job['fields']) : DEFAULT_FIELDS.map((name) => ({ name }));
      const job: Job = {
        id: `job_${randomBytes(8).toString('hex')}`,
        // Auth0 exports CSV unless asked for JSON.
        format: body.format === 'json' ? 'json' : 'csv',
        limit: body.limit as number | undefined,
        connectionId,
        connection,
        fields,
        createdAt: new Date().toISOString(),
        reads: 0,
        script: { ...script },
        userIds: userIds && connection ? userIds.filter((id) => (profileOf(id).identities as { connection: string }[])[0]!.connection === connection) : userIds,
        generated: options.generatedUsers ?? 0,
      };
      jobs.set(job.id, job);
      stats.jobsCreated++;
      send(res, 201, JSON.stringify(jobJson(job)));
      return;
    }
    const match = JOB_PATH.exec(path);
    if (!scopes.has('read:users') && !scopes.has('create:users')) {
      send(res, 403, errorBody(403, 'Insufficient scope, expected any of: create:users,read:users', 'insufficient_scope'));
      return;
    }
    const job = match ? jobs.get(match[1]!) : undefined;
    if (!job) {
      send(res, 404, errorBody(404, 'The job does not exist.', 'inexistent_job'));
      return;
    }
    stats.jobReads++;
    job.reads++;
    send(res, 200, JSON.stringify(jobJson(job)));
  }

  function profileOf(userId: string): ExportUserJson {
    return makeExportUser(userId, profiles.get(userId));
  }

  async function* lines(job: Job): AsyncGenerator<string> {
    let chunk = '';
    let n = 0;
    const inserts = new Map(Object.entries(job.script.insert ?? {}).map(([line, text]) => [Number(line), text]));
    const hook = job.script.onLine;
    const add = (text: string) => {
      chunk += `${text}\n`;
      n += 1;
      if (hook?.line === n) hook.run();
    };
    const ids: Iterable<string> = job.script.generate !== undefined ? generatedIds(job.script.generate) : (job.userIds ?? generatedIds(job.generated));
    if (job.format === 'csv') {
      chunk += `${job.fields.map((field) => csvCell(field.export_as ?? field.name)).join(',')}\n`;
    }
    let users = 0;
    for (const id of ids) {
      if (job.limit !== undefined && users++ >= job.limit) break;
      for (let text = inserts.get(n + 1); text !== undefined; text = inserts.get(n + 1)) {
        inserts.delete(n + 1);
        add(text);
      }
      add(toLine(profileOf(id), job.fields, job.format));
      if (n % 1000 === 0) {
        yield chunk;
        chunk = '';
      }
    }
    for (const line of [...inserts.keys()].sort((a, b) => a - b)) add(inserts.get(line)!);
    if (chunk) yield chunk;
  }

  /** The bomb's inflated text, about 1 MiB at a time. */
  async function* bomb({ unit, times }: { unit: string; times: number }): AsyncGenerator<string> {
    const perChunk = Math.max(1, Math.floor(2 ** 20 / Math.max(1, unit.length)));
    const block = unit.repeat(Math.min(perChunk, times));
    for (let left = times; left > 0; left -= perChunk) yield left >= perChunk ? block : unit.repeat(left);
  }

  async function download(req: IncomingMessage, res: ServerResponse): Promise<void> {
    stats.downloads++;
    const reply = (status: number, body: string) => {
      res.writeHead(status, { 'content-type': 'application/xml', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    };
    if (req.headers.authorization !== undefined) {
      // S3 refuses a presigned URL that also carries an Authorization header.
      stats.authorizationRefused++;
      reply(
        400,
        s3Error(
          'InvalidArgument',
          'Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified',
        ),
      );
      return;
    }
    const url = new URL(req.url ?? '/', 'http://storage');
    const match = /^\/exports\/(job_[A-Za-z0-9]+)\.(?:json|csv)\.gz$/.exec(url.pathname);
    const expires = Number(url.searchParams.get('X-Amz-Date'));
    const job = match ? jobs.get(match[1]!) : undefined;
    if (!job || url.searchParams.get('X-Amz-Signature') !== sign(job.id, expires)) {
      reply(403, s3Error('SignatureDoesNotMatch', 'The request signature we calculated does not match the signature you provided.'));
      return;
    }
    if (expireNext > 0 || Date.now() > expires) {
      expireNext = Math.max(0, expireNext - 1);
      stats.expiredRefused++;
      reply(403, s3Error('AccessDenied', 'Request has expired'));
      return;
    }
    if (job.script.truncate) {
      const chunks: string[] = [];
      for await (const chunk of lines(job)) chunks.push(chunk);
      const whole = gzipSync(chunks.join(''));
      const cut = whole.subarray(0, Math.max(1, Math.floor(whole.length / 2)));
      res.writeHead(200, { 'content-type': 'application/gzip', 'content-length': cut.length });
      res.end(cut);
      return;
    }
    res.writeHead(200, { 'content-type': 'application/gzip' });
    const bombing = job.script.bomb;
    const source = bombing ? bomb(bombing) : lines(job);
    await pipeline(Readable.from(source), createGzip({ level: bombing ? 9 : 1 }), res).catch(() => res.destroy());
  }

  const server = createServer({ keepAlive: true }, (req, res) => {
    download(req, res).catch(() => res.destroy());
  });
  const downloadUrl = await listenOnLoopback(server);

  return {
    downloadUrl,
    stats,
    setProfile(userId, fields) {
      profiles.set(userId, { ...profiles.get(userId), ...fields });
    },
    script(next) {
      script = { ...next };
    },
    expireNextDownloads(n) {
      expireNext = n;
    },
    handles(method, path) {
      return (method === 'POST' && path === JOBS_EXPORT_PATH) || (method === 'GET' && path.startsWith('/api/v2/jobs/'));
    },
    answer,
    close() {
      return closeServer(server);
    },
  };
}

function* generatedIds(count: number): Generator<string> {
  for (let i = 1; i <= count; i++) yield `auth0|exp${String(i).padStart(7, '0')}`;
}

function parseJson(text: string | undefined): Record<string, unknown> | undefined {
  try {
    return text === undefined ? undefined : (JSON.parse(text) as Record<string, unknown>);
  } catch {
    return undefined;
  }
}
