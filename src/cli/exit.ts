import { SyncError } from '../core/errors.js';
import { isDatabaseRefusingUs, isDatabaseUnavailable } from '../warehouse/pg-errors.js';

/** Exit codes that alerting can tell apart; `usage` is sysexits' EX_USAGE (a wrong command, flag or value). */
export const EXIT = { ok: 0, fatal: 1, partial: 2, locked: 3, interrupted: 4, unreadable: 5, usage: 64 } as const;

/** `[code]: one sentence` for people, with the stable code where there is one. */
export function describeFatal(error: unknown): string {
  if (error instanceof SyncError) return `[${error.code}]: ${error.message}`;
  const message = error instanceof Error ? error.message : String(error);
  if (isDatabaseUnavailable(error) || isDatabaseRefusingUs(error)) {
    return `[database_unavailable]: cannot use DATABASE_URL: ${message}`;
  }
  // Anything else: the message says what to fix.
  return `: ${message}`;
}
