/**
 * The lines of a users export (NDJSON, one user a line) as the import takes them (issue #24):
 * numbered, each bounded in length without ever holding an over-long one, and each either a
 * user, a blank line, or a bad line with the reason it cannot be taken. Pure apart from the
 * splitter's own state; no I/O.
 */
import type { ExportedUser } from '../core/exported-user.js';
import { parseIsoDate } from '../core/iso-date.js';
import { checkUserId, describeUserId } from '../core/user-id.js';
import { toPrintable } from '../core/upstream-text.js';

/** Why a line of the export cannot be taken. */
export type BadLineReason = 'too_long' | 'not_json' | 'no_user_id' | 'bad_user_id';

export interface BadLine {
  /** 1-based line number in the inflated file. */
  line: number;
  reason: BadLineReason;
  /** What is wrong, as the end of a sentence, safe to print (`is not JSON`, `holds user ID "a" that contains …`). */
  problem: string;
  /** For `bad_user_id`: the ID as the file holds it (never printed raw; for invalidUserIdKey). */
  userId?: string;
}

/** `line 7 is not JSON`: safe to print (the problem was made so where it was found). */
export function describeBadLine(bad: BadLine): string {
  return `line ${bad.line} ${bad.problem}`;
}

/**
 * Splits decoded text into numbered lines. A line longer than `maxLineChars` is never kept
 * whole: once the unfinished line passes the bound, what follows up to the next newline is
 * dropped as it arrives, and the line is handed over as `undefined` (too long). More than
 * `maxLines` lines stops the split: `onTooMany` throws.
 */
export class LineSplitter {
  /** Lines handed over so far (the number of the last one). */
  line = 0;
  private rest = '';
  private dropping = false;

  constructor(
    private readonly maxLineChars: number,
    private readonly maxLines: number,
    private readonly take: (line: number, text: string | undefined) => void,
    private readonly onTooMany: (line: number) => never,
  ) {}

  write(chunk: string): void {
    let from = 0;
    if (this.dropping) {
      const end = chunk.indexOf('\n');
      if (end === -1) return;
      this.dropping = false;
      this.emit(undefined);
      from = end + 1;
    }
    const text = from === 0 ? this.rest + chunk : chunk.slice(from);
    let start = 0;
    for (let end = text.indexOf('\n'); end !== -1; end = text.indexOf('\n', start)) {
      this.emit(end - start > this.maxLineChars ? undefined : text.slice(start, end));
      start = end + 1;
    }
    this.rest = text.slice(start);
    if (this.rest.length > this.maxLineChars) {
      this.rest = '';
      this.dropping = true;
    }
  }

  /** The last line, when the file does not end with a newline. */
  end(): void {
    if (this.dropping) this.emit(undefined);
    else if (this.rest !== '') this.emit(this.rest);
    this.rest = '';
    this.dropping = false;
  }

  private emit(text: string | undefined): void {
    this.line += 1;
    if (this.line > this.maxLines) this.onTooMany(this.line);
    this.take(this.line, text);
  }
}

/**
 * One line of the export: the user it holds, `undefined` for a blank line, or what is wrong
 * with it. A user ID gets the job's one check (checkUserId), as IDs from flags, files and the
 * source table do.
 */
export function toLineUser(line: number, text: string | undefined, maxLineChars: number): ExportedUser | BadLine | undefined {
  if (text === undefined) return { line, reason: 'too_long', problem: `is longer than ${maxLineChars} characters` };
  if (text.trim() === '') return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return { line, reason: 'not_json', problem: 'is not JSON' };
  }
  const userId = (parsed as { user_id?: unknown } | null)?.user_id;
  if (typeof userId !== 'string' || userId === '') return { line, reason: 'no_user_id', problem: 'holds no user_id' };
  const wrong = checkUserId(userId);
  if (wrong) return { line, reason: 'bad_user_id', problem: `holds user ID ${describeUserId(userId)}, which ${wrong}`, userId };
  return toExportedUser(parsed);
}

export function isBadLine(value: ExportedUser | BadLine): value is BadLine {
  return 'reason' in value;
}

/** Map one parsed NDJSON line of the export; undefined when it holds no user ID. Checks nothing else. */
export function toExportedUser(value: unknown): ExportedUser | undefined {
  if (!value || typeof value !== 'object') return undefined;
  const line = value as Record<string, unknown>;
  if (typeof line.user_id !== 'string' || line.user_id === '') return undefined;
  const identities = Array.isArray(line.identities) ? (line.identities as { connection?: unknown }[]) : [];
  return {
    userId: line.user_id,
    email: storableText(line.email),
    connection: storableText(line.connection) ?? storableText(line['identities[0].connection']) ?? storableText(identities[0]?.connection),
    createdAt: timestamp(line.created_at),
    lastLogin: timestamp(line.last_login),
    blocked: typeof line.blocked === 'boolean' ? line.blocked : null,
  };
}

const LONGEST_FIELD = 1024;

/**
 * A profile field from upstream on its way to a table: control characters stripped (a NUL
 * would make PostgreSQL refuse the whole batch), an unpaired surrogate replaced (PostgreSQL's
 * JSON refuses it too), at most 1,024 characters; empty is no value.
 */
function storableText(value: unknown): string | null {
  if (typeof value !== 'string' || value === '') return null;
  const text = toPrintable(value, LONGEST_FIELD).replace(/\p{Surrogate}/gu, '\ufffd');
  return text === '' ? null : text;
}

/** 0001-01-01T00:00:00Z: an earlier instant is year 0 in UTC, which PostgreSQL refuses (and would fail the batch). */
const EARLIEST = Date.parse('0001-01-01T00:00:00Z');

/** A date that exists (parseIsoDate), as ISO 8601; anything else is no date rather than a failed import. */
function timestamp(value: unknown): string | null {
  if (typeof value !== 'string') return null;
  const ms = parseIsoDate(value);
  return ms === undefined || ms < EARLIEST ? null : new Date(ms).toISOString();
}
