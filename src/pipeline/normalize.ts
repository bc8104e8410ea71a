import type { Auth0RefreshToken } from '../auth0/refresh-tokens.js';
import { SyncError } from '../core/errors.js';
import { parseIsoDate } from '../core/iso-date.js';
import { stripControlCharacters, toPrintable } from '../core/upstream-text.js';
import type { DeviceRecord, ResourceServerRecord, TokenRecord, UserTokenRecords } from '../warehouse/model.js';

const DATE_FIELDS = ['created_at', 'idle_expires_at', 'expires_at', 'last_exchanged_at'] as const;
const DEVICE_FIELDS = ['initial_ip', 'initial_asn', 'initial_user_agent', 'last_ip', 'last_asn', 'last_user_agent'] as const;
const CANONICAL_UTC = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
const ISO_8601 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})$/;
/**
 * Longest text, in UTF-8 bytes, of a field the warehouse indexes (token id, client_id,
 * audience; session_id for good measure). PostgreSQL refuses a btree entry over ~2,700 bytes
 * and fails the whole write with an index-row-size error; a field over this fails its user
 * instead, naming the field. Real values are a few dozen bytes.
 */
const MAX_KEY_BYTES = 512;

/** A record that cannot be keyed or typed; the message names the field. */
export class InvalidRecordError extends SyncError {
  constructor(message: string) {
    super('invalid_record', message);
  }
}

/**
 * Map one user's complete listing to warehouse rows. Pure. Throws InvalidRecordError naming
 * the first field that cannot be keyed or typed (`refresh_tokens[3].created_at: …`), so the
 * caller can fail that user without writing any of it. A token listed twice keeps its last copy.
 */
export function toWarehouseRows(userId: string, apiTokens: readonly Auth0RefreshToken[]): UserTokenRecords {
  const byId = new Map<string, { token: TokenRecord; device?: DeviceRecord; resourceServers: ResourceServerRecord[] }>();
  apiTokens.forEach((apiToken, index) => {
    const mapped = toTokenRows(userId, apiToken, `refresh_tokens[${index}]`);
    byId.set(mapped.token.id, mapped);
  });
  const records: UserTokenRecords = { tokens: [], devices: [], resourceServers: [] };
  for (const { token, device, resourceServers } of byId.values()) {
    records.tokens.push(token);
    if (device) records.devices.push(device);
    records.resourceServers.push(...resourceServers);
  }
  return records;
}

function toTokenRows(userId: string, apiToken: Auth0RefreshToken, at: string) {
  if (!isObject(apiToken)) throw new InvalidRecordError(`${at} is not an object`);
  const id = apiToken.id;
  if (typeof id !== 'string' || id === '') throw new InvalidRecordError(`${at}.id is missing or not a string`);
  checkKeyLength(id, `${at}.id`);
  const where = `${at} (id ${toPrintable(id, 80)})`;
  if (apiToken.user_id !== undefined && apiToken.user_id !== null && apiToken.user_id !== userId) {
    throw new InvalidRecordError(`${where}.user_id is ${JSON.stringify(apiToken.user_id)}, expected ${JSON.stringify(userId)}`);
  }
  const raw = JSON.stringify(apiToken);
  // PostgreSQL text and jsonb cannot hold U+0000; say which token instead of failing in SQL.
  if (raw.includes('\\u0000')) throw new InvalidRecordError(`${where} contains a NUL character (\\u0000)`);

  const metadata = apiToken.refresh_token_metadata;
  if (metadata !== undefined && metadata !== null && !isObject(metadata)) {
    throw new InvalidRecordError(`${where}.refresh_token_metadata is not an object`);
  }
  const rotating = apiToken.rotating;
  if (rotating !== undefined && rotating !== null && typeof rotating !== 'boolean') {
    throw new InvalidRecordError(`${where}.rotating is not a boolean`);
  }
  const dates = Object.fromEntries(DATE_FIELDS.map((field) => [field, toDate(apiToken[field], `${where}.${field}`)])) as Record<
    (typeof DATE_FIELDS)[number],
    string | null
  >;

  const token: TokenRecord = {
    id,
    user_id: userId,
    client_id: toKey(apiToken.client_id, `${where}.client_id`),
    session_id: toKey(apiToken.session_id, `${where}.session_id`),
    rotating: rotating ?? null,
    ...dates,
    metadata: isObject(metadata) ? JSON.stringify(metadata) : null,
    raw,
  };
  return { token, device: toDevice(id, apiToken.device, where), resourceServers: toResourceServers(id, apiToken.resource_servers, where) };
}

/** A row only where the API gave a `device` object: real list answers often carry none. */
function toDevice(tokenId: string, device: unknown, where: string): DeviceRecord | undefined {
  if (device === undefined || device === null) return undefined;
  if (!isObject(device)) throw new InvalidRecordError(`${where}.device is not an object`);
  const row = { token_id: tokenId } as DeviceRecord;
  for (const field of DEVICE_FIELDS) row[field] = toText(device[field], `${where}.device.${field}`);
  return row;
}

/** `scopes` is one space-separated string on the wire (auth0-java once typed it as an array). */
function toResourceServers(tokenId: string, value: unknown, where: string): ResourceServerRecord[] {
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) throw new InvalidRecordError(`${where}.resource_servers is not an array`);
  const byAudience = new Map<string, ResourceServerRecord>();
  value.forEach((server: unknown, index) => {
    const at = `${where}.resource_servers[${index}]`;
    if (!isObject(server)) throw new InvalidRecordError(`${at} is not an object`);
    const audience = server.audience;
    if (typeof audience !== 'string' || audience === '') throw new InvalidRecordError(`${at}.audience is missing or not a string`);
    checkKeyLength(audience, `${at}.audience`);
    const scopes =
      Array.isArray(server.scopes) && server.scopes.every((s) => typeof s === 'string') ? server.scopes.join(' ') : toText(server.scopes, `${at}.scopes`);
    byAudience.set(audience, { token_id: tokenId, audience, scopes });
  });
  return [...byAudience.values()];
}

function toText(value: unknown, field: string): string | null {
  if (value === undefined || value === null) return null;
  if (typeof value !== 'string') throw new InvalidRecordError(`${field} is not a string`);
  return value;
}

/** Text the warehouse indexes: at most MAX_KEY_BYTES. */
function toKey(value: unknown, field: string): string | null {
  const text = toText(value, field);
  if (text !== null) checkKeyLength(text, field);
  return text;
}

function checkKeyLength(text: string, field: string): void {
  // Cheap first: a string of n UTF-16 units is at most 3n bytes in UTF-8.
  if (text.length * 3 > MAX_KEY_BYTES && Buffer.byteLength(text, 'utf8') > MAX_KEY_BYTES) {
    throw new InvalidRecordError(`${field} is longer than ${MAX_KEY_BYTES} bytes`);
  }
}

/** ISO-8601 with a zone, as Auth0 sends it (`2024-05-01T13:00:30.038Z`); null when absent. */
export function toDate(value: unknown, field: string): string | null {
  if (value === undefined || value === null) return null;
  const shown = () => stripControlCharacters(JSON.stringify(value)?.slice(0, 60) ?? '');
  if (typeof value !== 'string' || !ISO_8601.test(value)) throw new InvalidRecordError(`${field} is not an ISO-8601 date: ${shown()}`);
  // Date.parse alone would roll 2026-02-31 over to March 3rd and take year 0000.
  const ms = parseIsoDate(value);
  if (ms === undefined) throw new InvalidRecordError(`${field} is not a date that exists: ${shown()}`);
  // Auth0's own form is already canonical (UTC, milliseconds): keep the string, skip a Date.
  return CANONICAL_UTC.test(value) ? value : new Date(ms).toISOString();
}

/** A JSON object (not null, not an array). */
export function isObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
