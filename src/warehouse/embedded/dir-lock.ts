import { mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { FatalError, type SyncError } from '../../core/errors.js';
import { RunLockedError } from '../run-lock.js';
import { toSafeText } from '../../core/upstream-text.js';

interface LockOwner {
  pid: number;
  host: string;
  command: string;
  since: string;
}

/**
 * An exclusive lock on a data directory for the life of this process: PGlite takes none, and
 * two processes on one directory silently lose committed rows (measured here before PGlite was adopted). The lock is a
 * file next to the directory, created with O_EXCL and holding the owner's pid. A lock whose
 * process is gone (kill -9, machine restart) is taken over. Throws RunLockedError (exit 3)
 * naming the owner when another live process holds it, and `dataDirUnusable` (exit 1) when
 * the lock file cannot be created at all (a read-only or missing parent, no permission).
 * Returns the release function.
 */
export function acquireDirLock(dir: string, command: string): () => void {
  const file = `${path.resolve(dir)}.lock`;
  try {
    mkdirSync(path.dirname(file), { recursive: true });
  } catch (error) {
    throw dataDirUnusable(dir, error);
  }
  const me: LockOwner = { pid: process.pid, host: os.hostname(), command, since: new Date().toISOString() };
  for (let attempt = 0; ; attempt += 1) {
    try {
      writeFileSync(file, JSON.stringify(me), { flag: 'wx' });
      break;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST' || attempt > 0) throw lockedError(dir, file, error);
      const owner = readOwner(file);
      if (owner && isAlive(owner)) throw lockedError(dir, file, error, owner);
      // Stale: its process is gone. Remove it only if it is still the same stale file.
      if (readFileSafe(file) === JSON.stringify(owner)) unlinkSync(file);
    }
  }
  let released = false;
  const release = () => {
    if (released) return;
    released = true;
    process.off('exit', release);
    if (readFileSafe(file) === JSON.stringify(me)) unlinkSync(file);
  };
  process.on('exit', release);
  return release;
}

const FS_REASONS: Record<string, string> = {
  // mkdir -p answers EEXIST (not ENOTDIR) when a part of the path is a file.
  EEXIST: 'a part of the path is a file, not a directory',
  ENOTDIR: 'a part of the path is a file, not a directory',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
  EROFS: 'read-only file system',
  ENOSPC: 'no space left on the device',
};

/**
 * The embedded database's directory (or its lock file) cannot be created or written: exit 1
 * with code `data_dir_unusable`, never 3, which means only "another process holds it".
 */
export function dataDirUnusable(dir: string, cause: unknown): FatalError {
  const { code, errno, message } = (cause ?? {}) as { code?: unknown; errno?: unknown; message?: unknown };
  const why =
    typeof code === 'string'
      ? (FS_REASONS[code] ?? code)
      : typeof message === 'string' && message
        ? toSafeText(message, 200)
        : `PGlite could not open it, errno ${String(errno ?? 'unknown')}`;
  return new FatalError(
    'data_dir_unusable',
    `The embedded database directory ${toSafeText(path.resolve(dir), 300)} cannot be used (${why}); set PGLITE_DATA_DIR to a writable directory, or DATABASE_URL to use a PostgreSQL server.`,
    { cause },
  );
}

function lockedError(dir: string, file: string, cause: unknown, owner?: LockOwner | undefined): SyncError {
  if ((cause as NodeJS.ErrnoException).code !== 'EEXIST') return dataDirUnusable(dir, cause);
  const who = owner ? `${owner.command}, pid ${owner.pid} on ${owner.host}, since ${owner.since}` : `see ${file}`;
  return new RunLockedError(
    `The embedded database ${dir} is in use by another process (${who}); wait for it or stop it, or set DATABASE_URL to use a PostgreSQL server.`,
  );
}

function readFileSafe(file: string): string | undefined {
  try {
    return readFileSync(file, 'utf8');
  } catch {
    return undefined;
  }
}

function readOwner(file: string): LockOwner | undefined {
  try {
    return JSON.parse(readFileSafe(file) ?? '') as LockOwner;
  } catch {
    return undefined;
  }
}

/** A lock from another host cannot be checked: treat it as held. */
function isAlive(owner: LockOwner): boolean {
  if (owner.host !== os.hostname()) return true;
  try {
    process.kill(owner.pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
