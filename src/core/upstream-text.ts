/**
 * The one door for text that comes from outside the program (an Auth0 answer, a proxy's error
 * page, a users file, a source-table ID) on its way to a log line, a terminal, an error message
 * or a table: cap its length, scrub every secret this process holds, and strip the control
 * characters that could rewrite an operator's screen or forge a log line.
 */

/** Longest upstream text kept in a message, log field or error column, in characters. */
const MAX_UPSTREAM_TEXT = 1024;
/** Longest text scanned for secrets before the final cap (bounds the work on a huge body). */
const MAX_SCANNED = 64 * 1024;
const REDACTED = '[redacted]';

/**
 * Every secret this process has held: the client secret and each access token it was issued.
 * Process-wide on purpose: an access token echoed by an answer to another request, or after
 * it was renewed, must be scrubbed all the same.
 */
const secrets = new Set<string>();

/**
 * Remember a secret so `scrubSecrets` removes it from now on. Values shorter than 8 characters
 * are ignored: scrubbing them would mangle ordinary words (a test secret, say) and they are
 * not credentials worth the name.
 */
export function rememberSecret(value: string): void {
  if (value.length >= 8) secrets.add(value);
}

/** Replace every remembered secret, raw, JSON-escaped or URL-encoded, with `[redacted]`. */
export function scrubSecrets(text: string): string {
  let out = text;
  for (const secret of secrets) {
    for (const form of new Set([secret, JSON.stringify(secret).slice(1, -1), encodeURIComponent(secret)])) {
      if (out.includes(form)) out = out.replaceAll(form, REDACTED);
    }
  }
  return out;
}

// ANSI escape sequences (CSI … final byte, OSC … BEL/ST, and two-byte ESC forms), then any
// other C0/C1 control character, DEL, and the Unicode bidirectional overrides that can make
// text display in another order than it reads.
const ANSI = /\u001b(?:\[[0-?]*[ -/]*[@-~]|\][^\u0007\u001b]*(?:\u0007|\u001b\\)?|[@-Z\\-_])/g;
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

/**
 * Remove ANSI escapes and control characters; line breaks and tabs become one space each, so
 * a message stays on one line.
 */
export function stripControlCharacters(text: string): string {
  return text
    .replace(ANSI, '')
    .replace(/[\r\n\t]/g, ' ')
    .replace(CONTROL, '');
}

/** Whether `text` holds a character `stripControlCharacters` would remove (besides ANSI escapes' printable rest). */
export function hasControlCharacter(text: string): boolean {
  CONTROL.lastIndex = 0;
  return CONTROL.test(text);
}

/** A value a setting holds, for a message: in double quotes, control characters stripped, at most 100 characters. */
export const quoteValue = (value: string): string => JSON.stringify(toPrintable(value, 100));

/** Text with no secret in it (an ID, a name we chose) made safe to print: control characters stripped, cut to `max`. */
export function toPrintable(text: string, max: number): string {
  return capText(stripControlCharacters(text), max);
}

/**
 * At most `max` characters, with `…` marking a cut; never half a surrogate pair before it
 * (PostgreSQL's text and jsonb refuse an unpaired surrogate).
 */
export function capText(text: string, max = MAX_UPSTREAM_TEXT): string {
  if (text.length <= max) return text;
  const kept = text.slice(0, max - 1);
  return `${/[\uD800-\uDBFF]$/.test(kept) ? kept.slice(0, -1) : kept}…`;
}

/**
 * Text from outside, made safe to print and store: secrets scrubbed, control characters
 * stripped, length capped (default 1 KB).
 */
export function toSafeText(raw: string, max = MAX_UPSTREAM_TEXT): string {
  const scanned = raw.length > MAX_SCANNED ? raw.slice(0, MAX_SCANNED) : raw;
  // Scrubbed again once stripped: a secret with an escape sequence spliced in would come back
  // whole when the sequence is removed.
  return capText(scrubSecrets(stripControlCharacters(scrubSecrets(scanned))), max);
}

/**
 * What is wrong with an ID from outside (a user ID, a log ID) as the end of a sentence (`is
 * empty`, `is longer than 512 characters`, `contains a control character`); undefined when it
 * can be stored, sent on and printed. Pure.
 */
export function checkIdText(id: string, maxLength: number): string | undefined {
  if (id === '') return 'is empty';
  if (id.trim() === '') return 'is only whitespace';
  if (id.length > maxLength) return `is longer than ${maxLength} characters`;
  if (id.includes('\u0000')) return 'contains a NUL character';
  if (hasControlCharacter(id)) return 'contains a control character';
  // PostgreSQL refuses an unpaired surrogate (it is not Unicode): the ID could never be stored.
  if (/\p{Surrogate}/u.test(id)) return 'is not valid Unicode (an unpaired surrogate)';
  return undefined;
}

/**
 * checkIdText for a value read from an answer, not yet known to be text: `is not a string` for
 * anything else (a number, null, a missing property). Pure.
 */
export function checkIdValue(id: unknown, maxLength: number): string | undefined {
  return typeof id === 'string' ? checkIdText(id, maxLength) : 'is not a string';
}
