import { ConfigError, SyncError, UsageError } from '../core/errors.js';
import type { Io } from '../core/io.js';
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

/**
 * Say why a command stopped, in one line on stderr, and return its exit code: another run holds
 * the lock (3), a wrong flag or value (64), anything else (1). Used by the CLI and the demo.
 */
export function reportFailure(error: unknown, io: Io): number {
  if (error instanceof SyncError && error.code === 'run_locked') {
    io.stderr(error.message);
    return EXIT.locked;
  }
  if (error instanceof UsageError) {
    io.stderr(`error ${describeFatal(error)}`);
    return EXIT.usage;
  }
  io.stderr(error instanceof ConfigError ? error.message : `error ${describeFatal(error)}`);
  return EXIT.fatal;
}

/** Exit codes from the least to the most serious: a command over several tenants exits with the worst of theirs. */
const SEVERITY: readonly number[] = [EXIT.ok, EXIT.partial, EXIT.interrupted, EXIT.locked, EXIT.fatal];

/** The more serious of two exit codes (one not in SEVERITY, such as 64, counts as most serious). */
export function worseExit(a: number, b: number): number {
  const rank = (code: number) => (SEVERITY.includes(code) ? SEVERITY.indexOf(code) : SEVERITY.length);
  return rank(b) > rank(a) ? b : a;
}
