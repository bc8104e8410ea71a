import type { Auth0Session } from '../auth0/sessions.js';
import { checkIdText, toPrintable, toSafeText } from '../core/upstream-text.js';
import type { SessionRecord } from '../warehouse/model.js';
import { InvalidRecordError, isObject, toDate } from './normalize.js';

const DATE_FIELDS = ['created_at', 'updated_at', 'authenticated_at', 'last_interacted_at', 'idle_expires_at', 'expires_at'] as const;
/** Longest session id or client id taken (real ones are a few dozen characters); the warehouse indexes ids. */
const MAX_ID = 512;
/** Caps on device text: an address, an ASN, a user agent. Longer text is cut, not refused. */
const MAX_IP = 100;
const MAX_ASN = 64;
const MAX_USER_AGENT = 1024;
/** Method names and factor types (`pwd`, `mfa`, `webauthn-roaming`, or a custom method's URL). */
const MAX_METHOD = 256;
/** Longest string kept anywhere in `raw`. */
const MAX_RAW_STRING = 4096;
/** Largest `raw` kept whole, in characters of JSON; a larger one keeps only what the columns hold. */
export const MAX_SESSION_RAW = 16 * 1024;

/**
 * Map one user's complete session listing to warehouse records. Pure. Throws InvalidRecordError
 * naming the first field that cannot be keyed or typed (`sessions[2].expires_at: …`), so the
 * caller fails that user without writing any of it. Text is made safe where it enters (control
 * characters stripped, secrets scrubbed, capped); an IP address that does not parse keeps its
 * text and gets a null `inet`. A session listed twice keeps its last copy.
 */
export function toSessionRecords(userId: string, apiSessions: readonly Auth0Session[]): SessionRecord[] {
  const byId = new Map<string, SessionRecord>();
  apiSessions.forEach((session, index) => {
    const record = toSessionRecord(userId, session, `sessions[${index}]`);
    byId.set(record.id, record);
  });
  return [...byId.values()];
}

function toSessionRecord(userId: string, session: Auth0Session, at: string): SessionRecord {
  if (!isObject(session)) throw new InvalidRecordError(`${at} is not an object`);
  const id = session.id;
  if (typeof id !== 'string') throw new InvalidRecordError(`${at}.id is missing or not a string`);
  const problem = checkIdText(id, MAX_ID);
  if (problem) throw new InvalidRecordError(`${at}.id ${problem}`);
  const where = `${at} (id ${toPrintable(id, 80)})`;
  if (session.user_id !== undefined && session.user_id !== null && session.user_id !== userId) {
    throw new InvalidRecordError(`${where}.user_id is ${JSON.stringify(toPrintable(String(session.user_id), 200))}, expected ${JSON.stringify(userId)}`);
  }
  const dates = Object.fromEntries(DATE_FIELDS.map((field) => [field, toDate(session[field], `${where}.${field}`)])) as Record<
    (typeof DATE_FIELDS)[number],
    string | null
  >;
  const device = session.device;
  if (device !== undefined && device !== null && !isObject(device)) throw new InvalidRecordError(`${where}.device is not an object`);
  const text = (field: string, max: number): string | null => {
    const value = isObject(device) ? device[field] : undefined;
    if (value === undefined || value === null) return null;
    if (typeof value !== 'string' && typeof value !== 'number') throw new InvalidRecordError(`${where}.device.${field} is not a string`);
    return toSafeText(String(value), max) || null;
  };
  const initialIp = text('initial_ip', MAX_IP);
  const lastIp = text('last_ip', MAX_IP);
  const methods = toMethods(session.authentication, where);
  return {
    id,
    user_id: userId,
    ...dates,
    initial_ip: initialIp,
    initial_ip_inet: toInet(initialIp),
    initial_asn: text('initial_asn', MAX_ASN),
    initial_user_agent: text('initial_user_agent', MAX_USER_AGENT),
    last_ip: lastIp,
    last_ip_inet: toInet(lastIp),
    last_asn: text('last_asn', MAX_ASN),
    last_user_agent: text('last_user_agent', MAX_USER_AGENT),
    client_ids: toClientIds(session.clients, where),
    authentication_methods: JSON.stringify(methods),
    raw: JSON.stringify(toRaw(session, dates, methods)),
  };
}

/** `clients: [{client_id}]` → the ids, each once, in order. Entries without an id are skipped. */
function toClientIds(clients: unknown, where: string): string[] {
  if (clients === undefined || clients === null) return [];
  if (!Array.isArray(clients)) throw new InvalidRecordError(`${where}.clients is not an array`);
  const ids = new Set<string>();
  for (const client of clients) {
    const id: unknown = isObject(client) ? client.client_id : typeof client === 'string' ? client : undefined;
    if (typeof id !== 'string' || id === '') continue;
    ids.add(toSafeText(id, MAX_ID));
  }
  return [...ids];
}

interface MethodRecord {
  name: string;
  type: string | null;
  timestamp: string | null;
}

/** `authentication: {methods: [{name, type, timestamp}]}` → the methods, text made safe. */
function toMethods(authentication: unknown, where: string): MethodRecord[] {
  if (authentication === undefined || authentication === null) return [];
  if (!isObject(authentication)) throw new InvalidRecordError(`${where}.authentication is not an object`);
  const methods = authentication.methods;
  if (methods === undefined || methods === null) return [];
  if (!Array.isArray(methods)) throw new InvalidRecordError(`${where}.authentication.methods is not an array`);
  return methods.map((method: unknown, index) => {
    const at = `${where}.authentication.methods[${index}]`;
    if (!isObject(method)) throw new InvalidRecordError(`${at} is not an object`);
    const name = method.name;
    if (typeof name !== 'string') throw new InvalidRecordError(`${at}.name is missing or not a string`);
    const type = method.type;
    if (type !== undefined && type !== null && typeof type !== 'string') throw new InvalidRecordError(`${at}.type is not a string`);
    return {
      name: toSafeText(name, MAX_METHOD),
      type: typeof type === 'string' ? toSafeText(type, MAX_METHOD) : null,
      timestamp: toDate(method.timestamp, `${at}.timestamp`),
    };
  });
}

/**
 * The object as Auth0 sent it, every string and key made safe (control characters stripped,
 * secrets scrubbed, each string capped); over MAX_SESSION_RAW characters of JSON it keeps only
 * what the columns hold, marked `truncated` with the size it had.
 */
function toRaw(session: Record<string, unknown>, dates: Record<string, string | null>, methods: MethodRecord[]): unknown {
  const safe = scrubValue(session, 0);
  const size = JSON.stringify(safe).length;
  if (size <= MAX_SESSION_RAW) return safe;
  const whole = safe as Record<string, unknown>;
  const kept: Record<string, unknown> = { id: whole.id, user_id: whole.user_id, ...dates, authentication: { methods }, truncated: true, bytes: size };
  const device = scrubValue(session.device, 0);
  if (JSON.stringify(device ?? null).length <= 4 * MAX_USER_AGENT) kept.device = device;
  const clients = scrubValue(session.clients, 0);
  if (JSON.stringify(clients ?? null).length <= MAX_SESSION_RAW / 2) kept.clients = clients;
  return kept;
}

/** Deeper nesting than this is cut to null: Auth0's session object is three levels deep. */
const MAX_DEPTH = 8;

function scrubValue(value: unknown, depth: number): unknown {
  if (typeof value === 'string') return toSafeText(value, MAX_RAW_STRING);
  if (value === null || typeof value !== 'object') return value;
  if (depth >= MAX_DEPTH) return null;
  if (Array.isArray(value)) return value.map((inner) => scrubValue(inner, depth + 1));
  return Object.fromEntries(Object.entries(value).map(([key, inner]) => [toSafeText(key, MAX_METHOD), scrubValue(inner, depth + 1)]));
}

const IPV4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/;

/**
 * `text` when PostgreSQL's `inet` takes it as one address (IPv4 dotted quad, or IPv6 as the URL
 * parser accepts it in brackets), else null: an address Auth0 sends that does not parse stays in
 * the text column and `raw`, and never fails the user's write.
 */
export function toInet(text: string | null): string | null {
  if (text === null) return null;
  if (IPV4.test(text)) return text;
  if (!/^[0-9a-f:.]+$/i.test(text) || !text.includes(':')) return null;
  try {
    new URL(`http://[${text}]/`);
    return text;
  } catch {
    return null;
  }
}
