import { FatalError } from '../errors.js';
import { isSchemaOrPrivilegeError, sqlState } from '../pg-errors.js';

const NODE_CONNECTION_CODES = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EPIPE', 'EHOSTUNREACH']);

/**
 * True when the error means the database itself is unreachable or going away, which dooms
 * every user. Matched by SQLSTATE class (08 connection, 57P admin shutdown, 53 resources) or
 * Node's socket codes, never by message text, except pg's own "Connection terminated".
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string') {
    if (/^(08|57P|53)/.test(code) || NODE_CONNECTION_CODES.has(code)) return true;
  }
  return isConnectionLost(error);
}

/**
 * True when this one connection was cut under a statement (an administrator's or a proxy's
 * `pg_terminate_backend`, SQLSTATE 57P01/57P02, a reset socket): the statement may succeed on a
 * fresh connection. pg gives its own two messages no code, so they are matched by text.
 */
export function isConnectionLost(error: unknown): boolean {
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && (code === '57P01' || code === '57P02' || code === 'ECONNRESET' || code === 'EPIPE' || code.startsWith('08'))) {
    return true;
  }
  const message = error instanceof Error ? error.message : '';
  return /^Connection terminated|connection error and is not queryable/.test(message);
}

export function databaseUnavailable(error: unknown): FatalError {
  const detail = error instanceof Error ? error.message : String(error);
  return new FatalError('database_unavailable', `The database is unavailable: ${detail}`, { cause: error });
}

/**
 * A write that every user would fail the same way (see isSchemaOrPrivilegeError): one sentence
 * with the SQLSTATE and what to fix, so the run stops at its first batch.
 */
export function databaseRefused(error: unknown): FatalError | undefined {
  if (!isSchemaOrPrivilegeError(error)) return undefined;
  const code = sqlState(error);
  const detail = error instanceof Error ? error.message : String(error);
  const fix =
    code === '42501'
      ? "grant the job's database role SELECT, INSERT, UPDATE and DELETE on the auth0 schema's tables"
      : code === '25006'
        ? 'point DATABASE_URL at a primary that accepts writes, not a read-only replica'
        : 'run `npm run migrate` against this database, or check DATABASE_URL';
  return new FatalError('database_refused', `The database refused the warehouse write (SQLSTATE ${code}: ${detail}); ${fix}.`, {
    cause: error,
  });
}
