/**
 * PostgreSQL errors, read by SQLSTATE (never by message text, except pg's own two connection
 * messages, which carry no code): one reader and named sets.
 * https://www.postgresql.org/docs/current/errcodes-appendix.html
 */

/** The SQLSTATE (or Node socket code) of an error from pg, or undefined. */
export function sqlState(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/** Undefined table (42P01), schema (3F000) and column (42703): the schema is not what we expect. */
export const MISSING_OBJECT: ReadonlySet<string> = new Set(['42P01', '3F000', '42703']);

/**
 * Lost a race with another process doing the same DDL or insert: chosen as a deadlock's victim
 * (40P01), or beaten to a name (23505 unique violation, 42P07 duplicate table).
 */
export const LOST_RACE: ReadonlySet<string> = new Set(['40P01', '23505', '42P07']);

const NODE_CONNECTION_CODES: ReadonlySet<string> = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'ENOTFOUND', 'EPIPE', 'EHOSTUNREACH']);

/**
 * True when this one connection was cut under a statement (an administrator's or a proxy's
 * `pg_terminate_backend`, SQLSTATE 57P01/57P02, a reset socket): the statement may succeed on a
 * fresh connection.
 */
export function isConnectionLost(error: unknown): boolean {
  const code = sqlState(error);
  if (code === '57P01' || code === '57P02' || code === 'ECONNRESET' || code === 'EPIPE' || code?.startsWith('08')) return true;
  const message = error instanceof Error ? error.message : '';
  return /^Connection terminated|connection error and is not queryable/.test(message);
}

/**
 * True when the database itself is unreachable or going away, which dooms every user: SQLSTATE
 * class 08 (connection), 57P (shutdown), 53 (resources), Node's socket codes, or a lost connection.
 */
export function isDatabaseUnavailable(error: unknown): boolean {
  const code = sqlState(error);
  if (code !== undefined && (/^(08|57P|53)/.test(code) || NODE_CONNECTION_CODES.has(code))) return true;
  return isConnectionLost(error);
}

/** Reachable, but refusing these credentials (class 28) or this database name (3D000). */
export function isDatabaseRefusingUs(error: unknown): boolean {
  const code = sqlState(error);
  return code !== undefined && /^(28|3D)/.test(code);
}

/**
 * Errors that any write of any user would hit the same way: privileges (42501), a schema that is
 * not the one the job expects (the rest of class 42, 3F000), a read-only server (25006), or a
 * feature the server lacks (0A000). Retrying user by user would only spend the tenant's rate
 * budget to fail every user.
 */
export function isSchemaOrPrivilegeError(error: unknown): boolean {
  const code = sqlState(error);
  return code !== undefined && (/^42/.test(code) || code === '3F000' || code === '25006' || code === '0A000');
}
