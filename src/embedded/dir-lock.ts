import { mkdirSync, readFileSync, unlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { RunLockedError } from '../run-lock.js';

interface LockOwner {
  pid: number;
  host: string;
  command: string;
  since: string;
}

/**
 * An exclusive lock on a data directory for the life of this process: PGlite takes none, and
 * two processes on one directory silently lose committed rows (TOOLCHAIN.md). The lock is a
 * file next to the directory, created with O_EXCL and holding the owner's pid. A lock whose
 * process is gone (kill -9, machine restart) is taken over. Throws RunLockedError (exit 3)
 * naming the owner when another live process holds it. Returns the release function.
 */
export function acquireDirLock(dir: string, command: string): () => void {
  const file = `${path.resolve(dir)}.lock`;
  mkdirSync(path.dirname(file), { recursive: true });
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

function lockedError(dir: string, file: string, cause: unknown, owner?: LockOwner | undefined): RunLockedError {
  if ((cause as NodeJS.ErrnoException).code !== 'EEXIST') {
    return new RunLockedError(`Cannot lock the embedded database ${dir} (${file}): ${(cause as Error).message}`);
  }
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
