import { FatalError } from '../core/errors.js';
import { isSchemaOrPrivilegeError, sqlState } from './pg-errors.js';

/** The database is unreachable or going away (see isDatabaseUnavailable): the run must stop. */
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
