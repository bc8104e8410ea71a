import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { UsageError } from '../core/errors.js';
import { toSafeText } from '../core/upstream-text.js';
import { checkUserId, MAX_USER_ID_LENGTH } from '../core/user-id.js';

/**
 * Longest line read, in bytes. A user ID is at most 512 characters (up to 4 bytes each in
 * UTF-8); a longer line is refused as soon as it passes this, so one endless line (`/dev/zero`,
 * a binary file) never fills memory.
 */
const MAX_LINE_BYTES = 4 * MAX_USER_ID_LENGTH;

const NEWLINE = 0x0a;
const CARRIAGE_RETURN = 0x0d;

/**
 * The user IDs of a `--users-file` (`-` reads stdin), each once, in file order. One ID per
 * line; empty lines and lines starting with `#` are skipped; an ID's surrounding spaces are
 * trimmed; LF or CRLF line endings. The whole file is read and checked before anything runs,
 * so a bad line 10,000 never leaves a half run: a line of only spaces or tabs, a NUL byte,
 * invalid UTF-8, an ID that fails `checkUserId`, a line over MAX_LINE_BYTES, a missing file or
 * a directory throws one UsageError naming the path and the line. Holds every ID in memory (a
 * users file is a backfill list, not the whole tenant), but never more than one line of text.
 */
export async function readUsersFile(path: string): Promise<string[]> {
  const name = `--users-file ${path === '-' ? '- (stdin)' : toSafeText(path, 200)}`;
  const input: Readable = path === '-' ? process.stdin : createReadStream(path);
  const ids = new Set<string>();
  const decoder = new TextDecoder('utf-8', { fatal: true });
  let lineNumber = 0;

  const takeLine = (bytes: Buffer): void => {
    lineNumber += 1;
    const at = `${name}: line ${lineNumber}`;
    const line = bytes.at(-1) === CARRIAGE_RETURN ? bytes.subarray(0, -1) : bytes;
    if (line.includes(0)) throw new UsageError(`${at} contains a NUL byte; is this a text file of user IDs?`);
    if (line.length > MAX_LINE_BYTES)
      throw new UsageError(`${at} is longer than ${MAX_LINE_BYTES} bytes; a user ID is at most ${MAX_USER_ID_LENGTH} characters.`);
    let text: string;
    try {
      text = decoder.decode(line);
    } catch {
      throw new UsageError(`${at} is not valid UTF-8; save the file as UTF-8 text.`);
    }
    if (text === '') return;
    const id = text.trim();
    if (id === '') throw new UsageError(`${at} holds only whitespace; leave it empty or remove it.`);
    if (id.startsWith('#')) return;
    const problem = checkUserId(id);
    if (problem) throw new UsageError(`${at}: the user ID ${problem}.`);
    ids.add(id);
  };

  let partial: Buffer[] = [];
  let partialBytes = 0;
  try {
    for await (const chunk of input as AsyncIterable<Buffer | string>) {
      const bytes = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
      let start = 0;
      for (let end = bytes.indexOf(NEWLINE); end !== -1; end = bytes.indexOf(NEWLINE, start)) {
        const piece = bytes.subarray(start, end);
        takeLine(partial.length === 0 ? piece : Buffer.concat([...partial, piece]));
        partial = [];
        partialBytes = 0;
        start = end + 1;
      }
      const rest = bytes.subarray(start);
      if (rest.length === 0) continue;
      partial.push(rest);
      partialBytes += rest.length;
      // An unfinished line is judged as soon as it can no longer be a user ID.
      if (partialBytes > MAX_LINE_BYTES + 1 || rest.includes(0)) takeLine(Buffer.concat(partial));
    }
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError(`${name} ${describeReadError(error)}.`);
  }
  if (partialBytes > 0) takeLine(Buffer.concat(partial));
  return [...ids];
}

function describeReadError(error: unknown): string {
  switch ((error as NodeJS.ErrnoException).code) {
    case 'ENOENT':
      return 'does not exist';
    case 'EISDIR':
      return 'is a directory, not a file of user IDs';
    case 'EACCES':
    case 'EPERM':
      return 'cannot be read (permission denied)';
    default:
      return `cannot be read (${toSafeText((error as Error).message ?? String(error), 200)})`;
  }
}
