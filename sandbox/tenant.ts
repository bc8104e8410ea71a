/**
 * The sandbox tenant's data: deterministic, realistic refresh token objects and generated
 * tenants. Pure (no I/O); auth0-server.ts serves them.
 */
import { createHash } from 'node:crypto';

/** A refresh token object exactly as the API returns it. */
export type Auth0TokenJson = Record<string, unknown>;

/** Tiny seeded PRNG (mulberry32): returns floats in [0, 1). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export function tokenId(token: Auth0TokenJson): string {
  const id = token.id;
  return typeof id === 'string' ? id : '';
}

export function byId(a: Auth0TokenJson, b: Auth0TokenJson): number {
  const x = tokenId(a);
  const y = tokenId(b);
  return x < y ? -1 : x > y ? 1 : 0;
}

const CLIENT_IDS = [
  'aZ3kPq7LmN2xV8rT5wY1bC4dE6fG9hJ0',
  'Qw8eR5tY2uI7oP4aS1dF6gH3jK9lZ0xC',
  'mN5bV2cX8zL1kJ7hG4fD9sA3pO6iU0yT',
  'Tr4eW7qA1sD8fG5hJ2kL9zX6cV3bN0mQ',
  'Ly2uI9oP6aS3dF0gH7jK4lZ1xC8vB5nM',
];
const AUDIENCES = ['https://api.example.com/', 'https://billing.example.com/'];
const USER_AGENTS = [
  'Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Safari/605.1.15',
  'Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36',
  'MyApp/3.2.1 (iPhone; iOS 17.4.1; Scale/3.00)',
  'okhttp/4.12.0',
];
const BASE_TIME = Date.UTC(2023, 0, 1);
const DAY_MS = 24 * 60 * 60 * 1000;

/**
 * One realistic refresh token object. Deterministic in (userId, n): every value is derived
 * from a SHA-256 of both, so the same call always returns the same object. `overrides` are
 * spread last (a key set to `undefined` disappears from the JSON).
 */
export function makeToken(userId: string, n: number, overrides: Auth0TokenJson = {}): Auth0TokenJson {
  const digest = createHash('sha256').update(`${userId}\0${n}`).digest();
  const hex = digest.toString('hex');
  const byte = (i: number): number => digest[i]!;
  const u32 = (i: number): number => digest.readUInt32BE(i);

  const created = BASE_TIME + (u32(8) % ((700 * DAY_MS) / 1000)) * 1000 + (u32(12) % 1000);
  const lastExchanged = created + (u32(16) % (30 * DAY_MS));
  const iso = (ms: number): string => new Date(ms).toISOString();
  const ip = (i: number): string => `${(byte(i) % 223) + 1}.${byte(i + 1)}.${byte(i + 2)}.${(byte(i + 3) % 254) + 1}`;

  const token: Auth0TokenJson = {
    id: `rt_${hex.slice(0, 16)}`,
    user_id: userId,
    created_at: iso(created),
    idle_expires_at: iso(lastExchanged + 30 * DAY_MS),
    expires_at: iso(created + 365 * DAY_MS),
  };
  // Roughly half carry a device; real recorded list responses have no `device` key at all.
  if (byte(20) % 2 === 0) {
    const ua = USER_AGENTS[byte(21) % USER_AGENTS.length]!;
    token.device = {
      initial_ip: ip(22),
      initial_asn: String(1000 + (u32(22) % 60000)),
      initial_user_agent: ua,
      last_ip: byte(26) % 3 === 0 ? ip(26) : ip(22),
      last_asn: String(1000 + (u32(26) % 60000)),
      last_user_agent: byte(27) % 4 === 0 ? USER_AGENTS[byte(28) % USER_AGENTS.length]! : ua,
    };
  }
  token.client_id = CLIENT_IDS[byte(29) % CLIENT_IDS.length]!;
  // Tokens issued before late 2023 have no session.
  token.session_id = byte(30) % 5 === 0 ? null : hex.slice(32, 64);
  token.rotating = byte(31) % 3 !== 0;
  token.resource_servers = AUDIENCES.slice(0, byte(8) % 3).map((audience) => ({
    audience,
    scopes: 'openid profile offline_access',
  }));
  token.refresh_token_metadata = byte(9) % 4 === 0 ? { device_name: `device-${hex.slice(16, 22)}`, app_version: `3.${byte(10) % 10}.0` } : null;
  token.last_exchanged_at = iso(lastExchanged);
  return { ...token, ...overrides };
}

/**
 * Dates around `now`, so the reporting views have something to show: created within the 300
 * days before, last used within the last 40, idle expiry 45 days after that (so some are
 * unused for 30 days yet live), absolute a year after creation. Deterministic in (id, salt, now).
 */
function recentDates(id: string, salt: number, now: number): Auth0TokenJson {
  const n = [...id].reduce((h, ch) => (h * 31 + ch.charCodeAt(0)) >>> 0, salt);
  const created = now - (1 + (n % 300)) * DAY_MS;
  const exchanged = Math.max(created, now - ((n >>> 9) % 40) * DAY_MS - ((n >>> 3) % 1000) * 60_000);
  const iso = (ms: number) => new Date(ms).toISOString();
  return {
    created_at: iso(created),
    last_exchanged_at: iso(exchanged),
    idle_expires_at: iso(exchanged + 45 * DAY_MS),
    expires_at: iso(created + 365 * DAY_MS),
  };
}

/**
 * `token` as a live tenant of today would hold it: `recentDates` around `now`, and a device
 * still on the network it was issued to, but for about one token in twenty (so the
 * location-changed view has a few rows, not half the tenant).
 */
export function aroundNow(token: Auth0TokenJson, salt: number, now: number): Auth0TokenJson {
  const id = String(token.id);
  const device = token.device as Record<string, unknown> | undefined;
  const moved = [...id].reduce((h, ch) => (h * 33 + ch.charCodeAt(0)) >>> 0, salt) % 20 === 0;
  const calm = device && !moved ? { ...device, last_ip: device.initial_ip, last_asn: device.initial_asn } : device;
  return { ...token, ...recentDates(id, salt, now), ...(calm ? { device: calm } : {}) };
}

/**
 * A deterministic tenant of `users` users (`${userIdPrefix}000001`...), each with 0..maxTokensPerUser
 * tokens (uniform, from the seeded PRNG), or 120-260 for every `manyTokensEvery`-th user so it needs
 * several pages. Token arrays are sorted by id ascending. With `datesAround` (epoch ms) every
 * token is `aroundNow` it (dates in the last year, not 2023–2024), so the reporting views have rows.
 */
export function generateTenant(opts: {
  users: number;
  seed?: number;
  maxTokensPerUser?: number;
  manyTokensEvery?: number;
  userIdPrefix?: string;
  datesAround?: number;
}): Map<string, Auth0TokenJson[]> {
  const random = mulberry32(opts.seed ?? 1);
  const max = opts.maxTokensPerUser ?? 5;
  const manyEvery = opts.manyTokensEvery ?? 0;
  const prefix = opts.userIdPrefix ?? 'auth0|user';
  const width = Math.max(6, String(opts.users).length);
  const tenant = new Map<string, Auth0TokenJson[]>();
  for (let i = 1; i <= opts.users; i++) {
    const userId = `${prefix}${String(i).padStart(width, '0')}`;
    const count = manyEvery > 0 && i % manyEvery === 0 ? 120 + Math.floor(random() * 141) : Math.floor(random() * (max + 1));
    const tokens: Auth0TokenJson[] = [];
    for (let n = 0; n < count; n++) {
      const token = makeToken(userId, n);
      tokens.push(opts.datesAround === undefined ? token : aroundNow(token, n, opts.datesAround));
    }
    tenant.set(userId, tokens.sort(byId));
  }
  return tenant;
}

/** A session object exactly as `GET /api/v2/users/{user_id}/sessions` returns it (issue #22). */
export type Auth0SessionJson = Record<string, unknown>;

/**
 * The sessions a tenant holds for one user, derived from its tokens: one per distinct
 * `session_id`, deterministic in (userId, session id). Pure. About one session in five has ended
 * before its tokens (not listed: Auth0 lists live sessions only), so the outliving view has rows;
 * the others outlive their tokens. Methods alternate between a password alone, a password and an
 * OTP second factor, a passkey, a federated login and a password with a WebAuthn key, so some
 * sessions have a second factor and some do not. Every third user also holds a session with no
 * refresh token (a web login without `offline_access`). Sorted by id.
 */
export function sessionsForTokens(userId: string, tokens: readonly Auth0TokenJson[]): Auth0SessionJson[] {
  const bySession = new Map<string, Auth0TokenJson[]>();
  for (const token of tokens) {
    if (typeof token.session_id !== 'string' || !token.session_id) continue;
    const group = bySession.get(token.session_id) ?? [];
    group.push(token);
    bySession.set(token.session_id, group);
  }
  const sessions: Auth0SessionJson[] = [];
  for (const [id, group] of bySession) {
    if (sessionEnded(id)) continue;
    sessions.push(makeSession(userId, id, group));
  }
  const userDigest = createHash('sha256').update(`session\0${userId}`).digest();
  if (userDigest[0]! % 3 === 0) sessions.push(makeSession(userId, `web_${userDigest.toString('hex').slice(0, 24)}`, []));
  return sessions.sort(byId);
}

/** Whether the sandbox's session `id` ended before its tokens (about one in five). */
export function sessionEnded(sessionId: string): boolean {
  return createHash('sha256').update(`ended\0${sessionId}`).digest()[0]! % 5 === 0;
}

const METHOD_SETS: readonly ((at: string) => Record<string, unknown>[])[] = [
  (at) => [{ name: 'pwd', timestamp: at }],
  (at) => [
    { name: 'pwd', timestamp: at },
    { name: 'mfa', type: 'otp', timestamp: at },
  ],
  (at) => [{ name: 'passkey', timestamp: at }],
  (at) => [{ name: 'federated', timestamp: at }],
  (at) => [
    { name: 'pwd', timestamp: at },
    { name: 'mfa', type: 'webauthn-roaming', timestamp: at },
  ],
];

/** Whether the sandbox's session `id` saw a second factor (a method named `mfa`). */
export function sessionHasSecondFactor(sessionId: string): boolean {
  const set = METHOD_SETS[createHash('sha256').update(`methods\0${sessionId}`).digest()[0]! % METHOD_SETS.length]!('x');
  return set.some((method) => method.name === 'mfa');
}

/**
 * One session object, deterministic in (userId, id) and the tokens issued in it: created when the
 * first was, last used when one was last exchanged, ending a day after the last token expires
 * (so a listed session outlives its tokens), on the first token's device (or one of its own).
 */
export function makeSession(userId: string, id: string, tokens: readonly Auth0TokenJson[]): Auth0SessionJson {
  const digest = createHash('sha256').update(`${userId}\0${id}`).digest();
  const byte = (i: number): number => digest[i]!;
  const iso = (ms: number): string => new Date(ms).toISOString();
  const times = (field: string) => tokens.map((t) => Date.parse(String(t[field] ?? ''))).filter((ms) => Number.isFinite(ms));
  const created = Math.min(...times('created_at'), BASE_TIME + (digest.readUInt32BE(0) % ((700 * DAY_MS) / 1000)) * 1000);
  const lastUsed = Math.max(created, ...times('last_exchanged_at'));
  const expires = Math.max(created + 7 * DAY_MS, ...times('expires_at')) + DAY_MS;
  const withDevice = tokens.find((t) => t.device && typeof t.device === 'object');
  const ip = (i: number): string => `${(byte(i) % 223) + 1}.${byte(i + 1)}.${byte(i + 2)}.${(byte(i + 3) % 254) + 1}`;
  const device = withDevice
    ? { ...(withDevice.device as Record<string, unknown>) }
    : {
        initial_ip: ip(4),
        initial_asn: String(1000 + (digest.readUInt32BE(4) % 60000)),
        initial_user_agent: USER_AGENTS[byte(8) % USER_AGENTS.length]!,
        last_ip: ip(4),
        last_asn: String(1000 + (digest.readUInt32BE(4) % 60000)),
        last_user_agent: USER_AGENTS[byte(8) % USER_AGENTS.length]!,
      };
  const clients = [...new Set(tokens.map((t) => t.client_id).filter((c): c is string => typeof c === 'string'))];
  if (clients.length === 0) clients.push(CLIENT_IDS[byte(9) % CLIENT_IDS.length]!);
  const methods = METHOD_SETS[createHash('sha256').update(`methods\0${id}`).digest()[0]! % METHOD_SETS.length]!(iso(created));
  return {
    id,
    user_id: userId,
    created_at: iso(created),
    updated_at: iso(lastUsed),
    authenticated_at: iso(created),
    idle_expires_at: iso(expires),
    expires_at: iso(expires),
    last_interacted_at: iso(lastUsed),
    device,
    clients: clients.map((client_id) => ({ client_id })),
    authentication: { methods },
    cookie: { mode: byte(10) % 2 === 0 ? 'persistent' : 'non-persistent' },
    session_metadata: {},
  };
}
