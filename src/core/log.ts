import type { Io } from './io.js';
import { stripControlCharacters } from './upstream-text.js';

/**
 * JSON-lines logger. Fields are merged into each line; nothing here ever sees a secret. String
 * values lose their control characters (JSON escapes C0 ones, but not C1 or bidirectional
 * overrides, which a terminal or log viewer would still act on).
 */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
/** `json`: one JSON object a line (machines); `pretty`: `time LEVEL msg key=value …` (people). */
export type LogFormat = 'json' | 'pretty';

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

const ORDER: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40 };

export function createLogger(options: { level?: LogLevel; format?: LogFormat; write?: (line: string) => void; fields?: Record<string, unknown> } = {}): Logger {
  const format = options.format === 'pretty' ? toPrettyLine : toJsonLine;
  const min = ORDER[options.level ?? 'info'];
  const write = options.write ?? ((line: string) => process.stdout.write(line + '\n'));
  const base = options.fields ?? {};
  const log = (level: LogLevel) => (msg: string, fields?: Record<string, unknown>) => {
    if (ORDER[level] < min) return;
    write(format({ time: new Date().toISOString(), level, msg, ...base, ...fields }));
  };
  return {
    debug: log('debug'),
    info: log('info'),
    warn: log('warn'),
    error: log('error'),
    child: (fields) => createLogger({ ...options, fields: { ...base, ...fields } }),
  };
}

/** A command's logger: LOG_FORMAT if set, else pretty when stdout is a terminal and JSON lines otherwise. */
export function createCommandLogger(
  settings: { logLevel: LogLevel; logFormat: LogFormat | undefined },
  io: Pick<Io, 'stdout' | 'stdoutIsTTY'>,
  write: (line: string) => void = io.stdout,
): Logger {
  return createLogger({ level: settings.logLevel, format: settings.logFormat ?? (io.stdoutIsTTY ? 'pretty' : 'json'), write });
}

type Entry = { time: string; level: LogLevel; msg: string } & Record<string, unknown>;

const toJsonLine = (entry: Entry): string => JSON.stringify(entry, safeStrings);

/**
 * `12:00:01.234 INFO  sync started runId=7 usersTotal=1000`: the time of day (UTC), the level,
 * the message, then the fields; strings with spaces or quotes are JSON-quoted, objects are JSON.
 */
export function toPrettyLine(entry: Entry): string {
  const { time, level, msg, ...fields } = entry;
  const parts = [time.slice(11, 23), level.toUpperCase().padEnd(5), stripControlCharacters(msg)];
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    parts.push(`${key}=${toPrettyValue(value)}`);
  }
  return parts.join(' ');
}

function toPrettyValue(value: unknown): string {
  if (typeof value === 'string') {
    const text = stripControlCharacters(value);
    return text === '' || /[\s"=]/.test(text) ? JSON.stringify(text) : text;
  }
  if (value instanceof Date) return value.toISOString();
  if (value !== null && typeof value === 'object') return JSON.stringify(value, safeStrings);
  return String(value);
}

function safeStrings(_key: string, value: unknown): unknown {
  return typeof value === 'string' ? stripControlCharacters(value) : value;
}

/** A logger that drops everything (tests, library use). */
export const silentLogger: Logger = createLogger({ write: () => {} });
