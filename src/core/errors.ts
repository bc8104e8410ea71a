/**
 * Errors with stable codes. `code` is what tests, logs and the `sync_runs.error` column rely on;
 * messages are for people and may change.
 */
export class SyncError extends Error {
  /** The class's own name (`RunLockedError`, `Auth0Error`, ...): no subclass repeats it. */
  override name = this.constructor.name;
  constructor(
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
  /** Dooms every user (database gone, bad credentials, missing scope): the run stops at once. */
  get fatal(): boolean {
    return false;
  }
}

/** The environment is wrong; `problems` names each variable to fix. Never carries a secret. */
export class ConfigError extends SyncError {
  constructor(readonly problems: readonly string[]) {
    super('invalid_config', `Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

/** A command-line flag is wrong; the message names it. */
export class UsageError extends SyncError {
  constructor(message: string) {
    super('usage', message);
  }
}

/** Something that dooms every user (database gone, bad credentials, missing scope): stop the run. */
export class FatalError extends SyncError {
  override get fatal(): boolean {
    return true;
  }
}

/** Whether an error stops the run (see SyncError.fatal). */
export function isFatal(error: unknown): boolean {
  return error instanceof SyncError && error.fatal;
}

/** Coerce anything thrown into an Error, once, at the boundary that catches it. */
export function toError(value: unknown): Error {
  return value instanceof Error ? value : new Error(String(value));
}

/** The stable code of an error, or 'internal' for anything we did not classify. */
export function errorCode(error: unknown): string {
  return error instanceof SyncError ? error.code : 'internal';
}
