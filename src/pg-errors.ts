/**
 * PostgreSQL errors, read by SQLSTATE (never by message text): one reader and named sets.
 * https://www.postgresql.org/docs/current/errcodes-appendix.html
 */

/** The SQLSTATE (or Node socket code) of an error from pg, or undefined. */
export function sqlState(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
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
