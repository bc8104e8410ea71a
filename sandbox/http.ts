/**
 * HTTP pieces every sandbox endpoint family shares: Auth0's error body, a bounded body reader,
 * where a page starts after a cursor, listening on the loopback address and closing.
 */
import type { IncomingMessage, Server } from 'node:http';
import type { AddressInfo } from 'node:net';

const MAX_BODY_BYTES = 64 * 1024;

const STATUS_TEXT: Record<number, string> = {
  400: 'Bad Request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not Found',
  408: 'Request Timeout',
  429: 'Too Many Requests',
  500: 'Internal Server Error',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
};

/**
 * A Management API error body in Auth0's full shape, `{statusCode, error, message, errorCode}`;
 * every sandbox route answers its errors through this one helper. `errorCode` is required: pass
 * `null` only where Auth0 itself sends none, which is the framework's generic 404 for a route it
 * does not serve (`{"statusCode":404,"error":"Not Found","message":"Not Found"}`, the body
 * auth0/auth0-cli's own tests take as the Management API's, unlike a resource's 404 such as
 * `inexistent_user`). The codes used: `invalid_token` (401), `invalid_query_string` (400),
 * `insufficient_scope` (403), `inexistent_user` (404), `too_many_requests` (429).
 */
export function errorBody(status: number, message: string, errorCode: string | null): string {
  const body: Record<string, unknown> = { statusCode: status, error: STATUS_TEXT[status] ?? 'Error', message };
  if (errorCode !== null) body.errorCode = errorCode;
  return JSON.stringify(body);
}

/** Auth0's answer for a route it does not serve (see errorBody). */
export const UNKNOWN_ROUTE_BODY = errorBody(404, 'Not Found', null);

/**
 * Auth0's 400 for a query parameter a route does not take (its validator refuses additional
 * properties; third-party mocks record `Query validation error: 'Additional properties not
 * allowed: include_totals'.` for a checkpoint-paged route).
 */
export function unknownParameterBody(name: string): string {
  return errorBody(400, `Query validation error: 'Additional properties not allowed: ${name}'.`, 'invalid_query_string');
}

/** The first parameter of `query` not in `allowed`, if any. */
export function unknownParameter(query: URLSearchParams, allowed: ReadonlySet<string>): string | undefined {
  for (const name of query.keys()) if (!allowed.has(name)) return name;
  return undefined;
}

/** Auth0's 400 for a boolean parameter that is not `true` or `false`; undefined when it is fine. */
export function booleanProblem(query: URLSearchParams, name: string): string | undefined {
  const value = query.get(name);
  if (value === null || value === 'true' || value === 'false') return undefined;
  return errorBody(400, `Query validation error: '${name}' must be a boolean.`, 'invalid_query_string');
}

/** A request body of at most 64 KB as text; undefined when larger or broken. */
export function readBody(req: IncomingMessage): Promise<string | undefined> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= MAX_BODY_BYTES) chunks.push(chunk);
    });
    req.on('end', () => resolve(size > MAX_BODY_BYTES ? undefined : Buffer.concat(chunks).toString('utf8')));
    req.on('error', () => resolve(undefined));
  });
}

/**
 * Index of the first item whose id is greater than `after`, in `items` sorted by id (binary
 * search): where a page that starts after a cursor begins.
 */
export function firstAfter<T>(items: readonly T[], idOf: (item: T) => string, after: string): number {
  let lo = 0;
  let hi = items.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (idOf(items[mid]!) <= after) lo = mid + 1;
    else hi = mid;
  }
  return lo;
}

/** Listen on 127.0.0.1 (`port` 0: any free one); resolves to the server's base URL. */
export async function listenOnLoopback(server: Server, port = 0): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

/** Stop listening and drop every connection, keep-alive ones included. */
export function closeServer(server: Server): Promise<void> {
  return new Promise((resolve, reject) => {
    server.close((err) => (err ? reject(err) : resolve()));
    server.closeAllConnections();
  });
}
