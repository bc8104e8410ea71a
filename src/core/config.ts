import cron from 'node-cron';
import { parseDuration } from './duration.js';
import { ConfigError } from './errors.js';
import type { LogFormat, LogLevel } from './log.js';
import { Secret } from './secret.js';

/** Default caps on what a users export may inflate to (docs/importing-users.md): a real export inflates 5 to 15 times, a gzip bomb 200 to 1,000. */
export const IMPORT_CAPS = { maxInflateRatio: 100, maxLines: 50_000_000 } as const;
import { quoteValue, toPrintable } from './upstream-text.js';
import { isTenantName, tenantNameFromDomain, TENANT_NAME_RULE } from './tenant-name.js';
import { isSecretVariable, readTenantsFile, TENANT_VARIABLES, type ReadFile, type TenantEntry } from './tenants-file.js';

export interface Config {
  /**
   * The tenant's short name (issue #23): `AUTH0_TENANT_NAME`, else its domain's first label. Every
   * row the job writes carries it.
   */
  readonly tenant: string;
  /** Undefined: use the embedded database in `dataDir`. */
  readonly databaseUrl: string | undefined;
  /** Where the embedded database (PGlite) lives when DATABASE_URL is unset. */
  readonly dataDir: string;
  readonly auth0: {
    /** Origin the job talks to, e.g. `https://tenant.eu.auth0.com` (no trailing slash). */
    readonly baseUrl: string;
    readonly clientId: string;
    readonly clientSecret: Secret;
    readonly audience: string;
    /** Per-request timeout in milliseconds. */
    readonly timeoutMs: number;
    /** Cap below the tenant's rate limit, requests per second; undefined = the tenant's limit. */
    readonly maxRps: number | undefined;
    /** Largest answer body read from Auth0, in bytes; a larger one is cut off while it streams. */
    readonly maxResponseBytes: number;
    /** Which route lists tokens: `auto` picks by itself (issue #12). */
    readonly tokensEndpoint: TokensEndpointSetting;
  };
  readonly sync: {
    /** Users fetched at the same time. */
    readonly concurrency: number;
    /** `take` for each list call, 1..100. */
    readonly pageSize: number;
    /** A user whose cursor runs longer than this fails instead of spinning. */
    readonly maxPagesPerUser: number;
    /** Budget of one run: users taken, and time before no new user is taken. */
    readonly maxUsers: number | undefined;
    readonly maxDurationMs: number | undefined;
    /**
     * Deletion guard: the largest share (0..1) of the live tokens held for a run's users that
     * it may mark deleted, and of its users it may record as gone; 1 turns the guard off.
     */
    readonly maxDeleteRatio: number;
    /** Users a run must have done before the guard measures it. */
    readonly deleteGuardMinUsers: number;
    /** `SYNC_SESSIONS`: list each user's sessions too (issue #22); `auto`: when the access token grants read:sessions. */
    readonly sessions: SessionsSetting;
  };
  /** `import-users` on a bad export (issue #24). */
  readonly import: {
    /** `IMPORT_MAX_INFLATE_RATIO`: the file may inflate to this many times its compressed bytes (plus 1 MiB). */
    readonly maxInflateRatio: number;
    /** `IMPORT_MAX_LINES`: most lines the file may hold. */
    readonly maxLines: number;
    /** `IMPORT_MAX_BAD_LINES`: bad lines skipped before the whole file is refused; 0 refuses any. */
    readonly maxBadLines: number;
  };
  readonly worker: {
    /** Cron expression (node-cron, five or six fields). */
    readonly schedule: string;
    readonly timezone: string;
    /** Run one sync as soon as the worker starts. */
    readonly runOnStart: boolean;
    /** Cron expression for the log follower (issue #10), or `off`. */
    readonly logsSchedule: string;
    /**
     * `SYNC_HISTORY_DAYS`: after each scheduled run the worker prunes runs and change rows older
     * than this many days (src/warehouse/history-retention.ts); undefined keeps everything.
     */
    readonly historyDays: number | undefined;
    /**
     * `WORKER_CONCURRENCY` (default 4): jobs one worker replica runs at once on a server database
     * (issue #23), each a different tenant's; the other tenants wait for a free slot or another replica.
     */
    readonly concurrency: number;
  };
  readonly monitoring: {
    /** Port serving `/metrics` and `/healthz` (0: any free port, logged); undefined: no server. */
    readonly metricsPort: number | undefined;
    /** Address that server listens on, default 127.0.0.1. */
    readonly metricsHost: string;
    /**
     * Where the worker POSTs a JSON notice when a run fails or is partial, and when runs recover.
     * A Secret: a webhook URL (Slack's, say) is itself a credential.
     */
    readonly notifyWebhookUrl: Secret | undefined;
  };
  readonly source: {
    /** Schema and table name, as PostgreSQL names them (quoted wherever they are used). */
    readonly table: readonly [schema: string, table: string];
    readonly column: string;
  };
  readonly logLevel: LogLevel;
  /** `LOG_FORMAT`: `json` lines or `pretty` text; undefined = pretty on a terminal, JSON otherwise. */
  readonly logFormat: LogFormat | undefined;
}

export type Env = Record<string, string | undefined>;

/** PostgreSQL keeps the first 63 bytes of a name (NAMEDATALEN - 1) and silently drops the rest. */
const MAX_IDENTIFIER_BYTES = 63;
const LOOPBACK = new Set(['127.0.0.1', 'localhost', '[::1]', '::1']);

/** Plain http:// is allowed only to this machine (the sandbox, a local webhook receiver, a test download host). */
export const isLoopback = (url: URL): boolean => LOOPBACK.has(url.hostname);
const LOG_LEVELS: readonly LogLevel[] = ['debug', 'info', 'warn', 'error'];
const LOG_FORMATS: readonly LogFormat[] = ['json', 'pretty'];
/** `AUTH0_TOKENS_ENDPOINT` values (src/pipeline/tokens-endpoint.ts). */
const TOKENS_ENDPOINT_SETTINGS = ['auto', 'refresh-tokens', 'users'] as const;
export type TokensEndpointSetting = (typeof TOKENS_ENDPOINT_SETTINGS)[number];
/** `SYNC_SESSIONS` values (src/pipeline/sessions-switch.ts). */
const SESSIONS_SETTINGS = ['auto', 'on', 'off'] as const;
export type SessionsSetting = (typeof SESSIONS_SETTINGS)[number];

/** Collects problems while reading variables, so one error can name them all. */
function createReader(env: Env) {
  const problems: string[] = [];
  const text = (name: string, fallback?: string): string => {
    const value = env[name]?.trim();
    if (value) return value;
    if (fallback === undefined) problems.push(`${name} is required`);
    return fallback ?? '';
  };
  /**
   * A variable that `parse` turns into a value (undefined: not valid). Unset: `fallback`; not
   * valid: `fallback` too, and a problem saying what the variable must be.
   */
  const parsed = <T, F>(name: string, fallback: F, mustBe: string, parse: (raw: string) => T | undefined): T | F => {
    const raw = env[name]?.trim();
    if (!raw) return fallback;
    const value = parse(raw);
    if (value === undefined) problems.push(`${name} must be ${mustBe} (got "${raw}")`);
    return value ?? fallback;
  };
  const within = (value: number, min: number, max: number): number | undefined => (value >= min && value <= max ? value : undefined);
  const int = (name: string, fallback: number, min: number, max: number): number =>
    parsed(name, fallback, `a whole number from ${min} to ${max}`, (raw) => (/^\d+$/.test(raw) ? within(Number(raw), min, max) : undefined));
  const positive = (name: string): number | undefined =>
    parsed(name, undefined, 'a number of requests per second above 0', (raw) => {
      const value = Number(raw);
      return Number.isFinite(value) && value > 0 && value <= 10_000 ? value : undefined;
    });
  const ratio = (name: string, fallback: number): number =>
    parsed(name, fallback, 'a number from 0 to 1, such as 0.2', (raw) => (/^(0|1|0?\.\d+|1\.0*)$/.test(raw) ? within(Number(raw), 0, 1) : undefined));
  const duration = (name: string): number | undefined =>
    parsed(name, undefined, 'a duration such as 30m, 2h or 1h30m', (raw) => {
      const value = parseDuration(raw);
      return value !== undefined && value > 0 ? value : undefined;
    });
  const bool = (name: string, fallback: boolean): boolean => {
    const raw = env[name]?.trim().toLowerCase();
    if (!raw) return fallback;
    if (['true', '1', 'yes'].includes(raw)) return true;
    if (['false', '0', 'no'].includes(raw)) return false;
    problems.push(`${name} must be true or false (got "${raw}")`);
    return fallback;
  };
  const done = <T>(config: T): T => {
    if (problems.length > 0) throw new ConfigError(problems);
    return deepFreeze(config);
  };
  return { problems, text, int, positive, ratio, duration, bool, done };
}

type Reader = ReturnType<typeof createReader>;

function readDatabase({ text, problems }: Reader) {
  const databaseUrl = text('DATABASE_URL', '') || undefined;
  if (databaseUrl && !/^postgres(ql)?:\/\/\S+$/.test(databaseUrl)) {
    problems.push('DATABASE_URL must be a postgres:// or postgresql:// URL');
  }
  const dataDir = text('PGLITE_DATA_DIR', '.data/pglite');
  const logLevel = text('LOG_LEVEL', 'info') as LogLevel;
  if (!LOG_LEVELS.includes(logLevel)) problems.push(`LOG_LEVEL must be one of ${LOG_LEVELS.join(', ')}`);
  const logFormat = (text('LOG_FORMAT', '') || undefined) as LogFormat | undefined;
  if (logFormat !== undefined && !LOG_FORMATS.includes(logFormat)) problems.push(`LOG_FORMAT must be one of ${LOG_FORMATS.join(', ')}`);
  return { databaseUrl, dataDir, logLevel, logFormat };
}

function readSource({ text, problems }: Reader): Config['source'] {
  const tableName = text('SOURCE_USERS_TABLE', 'auth0.users');
  const tableParts = parseName(tableName);
  let table: [string, string] = ['public', 'users'];
  if (typeof tableParts === 'string') {
    problems.push(`SOURCE_USERS_TABLE ${tableParts} (got ${quoteValue(tableName)})`);
  } else if (tableParts.length > 2) {
    problems.push(`SOURCE_USERS_TABLE must be table or schema.table; put a name holding a dot in double quotes (got ${quoteValue(tableName)})`);
  } else {
    table = tableParts.length === 2 ? [tableParts[0]!, tableParts[1]!] : ['public', tableParts[0]!];
  }
  const columnName = text('SOURCE_USER_ID_COLUMN', 'user_id');
  const columnParts = parseName(columnName);
  let column = 'user_id';
  if (typeof columnParts === 'string') {
    problems.push(`SOURCE_USER_ID_COLUMN ${columnParts} (got ${quoteValue(columnName)})`);
  } else if (columnParts.length > 1) {
    problems.push(`SOURCE_USER_ID_COLUMN must be one column name; put a name holding a dot in double quotes (got ${quoteValue(columnName)})`);
  } else {
    column = columnParts[0]!;
  }
  return { table, column };
}

/**
 * A dotted name written as in SQL, without case folding: parts split on dots, a part in
 * double quotes may hold dots and doubled quotes (`"My Schema"."users.v2"`); an unquoted part
 * is taken exactly as written (mixed case, spaces and any letters kept). Every part is then
 * quoted wherever it is used (sql.id), never pasted. Returns the parts, or the problem as the
 * end of a sentence: an empty part, a NUL, a part over 63 bytes, a stray double quote.
 */
function parseName(text: string): string[] | string {
  const parts: string[] = [];
  let i = 0;
  for (;;) {
    let part = '';
    if (text[i] === '"') {
      for (i += 1; ; i += 1) {
        if (i >= text.length) return 'has a double quote that is not closed';
        if (text[i] === '"') {
          if (text[i + 1] !== '"') break;
          i += 1;
        }
        part += text[i];
      }
      i += 1;
    } else {
      const dot = text.indexOf('.', i);
      part = text.slice(i, dot === -1 ? text.length : dot);
      i += part.length;
      if (part.includes('"')) return 'has a double quote inside a name: put that name in double quotes and double the quote';
    }
    if (part === '') return 'has an empty name';
    if (part.includes('\u0000')) return 'contains a NUL character';
    if (Buffer.byteLength(part, 'utf8') > MAX_IDENTIFIER_BYTES) {
      return `has a name longer than ${MAX_IDENTIFIER_BYTES} bytes, which PostgreSQL would cut short`;
    }
    parts.push(part);
    if (i >= text.length) return parts;
    if (text[i] !== '.') return 'must have a dot after a name in double quotes';
    i += 1;
  }
}

/** A name for messages: parts holding a dot or a quote in double quotes, control characters stripped. */
export function formatName(parts: readonly string[]): string {
  const quoted = parts.map((part) => (/[".]/.test(part) ? `"${part.replaceAll('"', '""')}"` : part));
  return toPrintable(quoted.join('.'), 200);
}

export type DatabaseConfig = Pick<Config, 'databaseUrl' | 'dataDir' | 'logLevel' | 'logFormat' | 'source'>;

/** The tenants a command that needs no credentials knows of (issue #23). */
export interface TenantNames {
  /** From TENANTS_FILE, else AUTH0_TENANT_NAME or AUTH0_DOMAIN's first label; empty when nothing names one. */
  readonly tenantNames: readonly string[];
  /** The source of each tenant whose TENANTS_FILE entry sets `usersTable` or `userIdColumn`; the others read `source`. */
  readonly tenantSources: Readonly<Record<string, Config['source']>>;
}

/**
 * What `migrate`, `status`, `report` and `db` need: the database, the source table and the
 * configured tenants, no Auth0 credentials: the secrets need not be set to read a warehouse.
 */
export function loadDatabaseConfig(env: Env, readFile?: ReadFile): DatabaseConfig & TenantNames {
  const reader = createReader(env);
  const file = readTenantsFile(env, readFile);
  reader.problems.push(...(file?.problems ?? []));
  const tenantSources: Record<string, Config['source']> = {};
  for (const tenant of file?.tenants ?? []) {
    const given = givenFields(tenant, ['usersTable', 'userIdColumn']);
    if (given.length === 0) continue;
    const own = createReader(overlay(env, given));
    tenantSources[tenant.name] = readSource(own);
    for (const problem of own.problems) {
      const mine = tenantProblem(problem, given, tenant.name);
      if (mine !== undefined) reader.problems.push(mine);
    }
  }
  const tenantNames = file ? file.tenants.map((tenant) => tenant.name) : singleTenantName(env, reader.problems);
  return reader.done({ ...readDatabase(reader), source: readSource(reader), tenantNames, tenantSources });
}

/** The one tenant the AUTH0_* variables name (readTenantName); none when neither AUTH0_TENANT_NAME nor AUTH0_DOMAIN is set. */
function singleTenantName(env: Env, problems: string[]): string[] {
  // AUTH0_DOMAIN's own mistakes are loadConfig's to name: a command without credentials does not need it.
  const baseUrl = parseDomain(env.AUTH0_DOMAIN?.trim() ?? '', []);
  const name = readTenantName(env, baseUrl, problems);
  return isTenantName(name) ? [name] : [];
}

/**
 * The tenant's name: AUTH0_TENANT_NAME, else the first label of the domain; a problem when
 * the one given, or the label a domain gives, is not a tenant name. Empty when neither is set.
 */
function readTenantName(env: Env, baseUrl: string, problems: string[]): string {
  const given = env.AUTH0_TENANT_NAME?.trim();
  const tenant = given || tenantNameFromDomain(baseUrl);
  if ((given || baseUrl) && !isTenantName(tenant)) {
    problems.push(
      given
        ? `AUTH0_TENANT_NAME must be ${TENANT_NAME_RULE} (got ${quoteValue(tenant)})`
        : `AUTH0_TENANT_NAME must be set: the first label of AUTH0_DOMAIN (${quoteValue(tenant)}) is not ${TENANT_NAME_RULE}`,
    );
  }
  return tenant;
}

type TenantField = Exclude<keyof TenantEntry, 'clientSecretEnv'>;

/** Each TENANTS_FILE field and the variable it stands for: the file's values go through that variable's parser. */
const FIELD_VARIABLES: Readonly<Record<TenantField, string>> = {
  name: 'AUTH0_TENANT_NAME',
  domain: 'AUTH0_DOMAIN',
  clientId: 'AUTH0_CLIENT_ID',
  audience: 'AUTH0_AUDIENCE',
  maxRps: 'AUTH0_MAX_RPS',
  tokensEndpoint: 'AUTH0_TOKENS_ENDPOINT',
  schedule: 'SYNC_SCHEDULE',
  logsSchedule: 'SYNC_LOGS_SCHEDULE',
  usersTable: 'SOURCE_USERS_TABLE',
  userIdColumn: 'SOURCE_USER_ID_COLUMN',
};

/** The fields of `fields` that the entry sets, each with its variable and its value as that variable would hold it. */
function givenFields(tenant: TenantEntry, fields: readonly TenantField[] = Object.keys(FIELD_VARIABLES) as TenantField[]): Given[] {
  return fields.filter((field) => tenant[field] !== undefined).map((field) => ({ field, variable: FIELD_VARIABLES[field], value: String(tenant[field]) }));
}

interface Given {
  readonly field: TenantField;
  readonly variable: string;
  readonly value: string;
}

/** The environment with the entry's values in place of the variables they stand for. */
const overlay = (env: Env, given: readonly Given[]): Env => ({ ...env, ...Object.fromEntries(given.map(({ variable, value }) => [variable, value])) });

/**
 * A problem the parsers found, in the file's words and labelled with its tenant when it is about
 * one of the entry's values (`SYNC_SCHEDULE must be …` becomes `TENANTS_FILE: tenant "x":
 * schedule must be …`); undefined when it is about a shared variable, named once elsewhere.
 */
function tenantProblem(problem: string, given: readonly Given[], tenant: string): string | undefined {
  const own = given.filter(({ variable }) => new RegExp(`\\b${variable}\\b`).test(problem));
  if (own.length === 0) return undefined;
  return `TENANTS_FILE: tenant "${tenant}": ${own.reduce((text, { variable, field }) => text.replaceAll(variable, field), problem)}`;
}

/**
 * Every tenant this process serves, one full Config each (issue #23). Without TENANTS_FILE the
 * AUTH0_* variables define the one tenant, exactly as loadConfig always did. With it, each
 * entry of the file is laid over the environment and read by loadConfig, so a field is checked
 * by the same parser as its variable, and the shared settings (DATABASE_URL, SYNC_*, guards,
 * timeouts) apply to every tenant that does not override them. One ConfigError names every
 * mistake and its tenant; a shared variable's mistake is named once, not per tenant.
 */
export function loadTenants(env: Env, readFile?: ReadFile): readonly Config[] {
  const file = readTenantsFile(env, readFile);
  if (!file) return [loadConfig(env)];
  const problems = [...file.problems];
  const shared = new Set<string>();
  const configs: Config[] = [];
  for (const tenant of file.tenants) {
    const label = `TENANTS_FILE: tenant "${tenant.name}"`;
    const named = isSecretVariable(tenant.clientSecretEnv);
    const secret = named ? env[tenant.clientSecretEnv]?.trim() : undefined;
    if (named && !secret) problems.push(`${label}: clientSecretEnv names ${tenant.clientSecretEnv}, which is not set`);
    const given = givenFields(tenant);
    // The per-tenant variables are unset here (readTenantsFile refused them), the secret is the one the entry names.
    const unset = Object.fromEntries(TENANT_VARIABLES.map((variable) => [variable, undefined]));
    const tenantEnv = overlay({ ...env, ...unset, AUTH0_CLIENT_SECRET: secret || 'unset' }, given);
    try {
      const config = loadConfig(tenantEnv);
      const twin = configs.find((other) => other.auth0.baseUrl === config.auth0.baseUrl);
      if (twin) problems.push(`${label}: domain is also tenant "${twin.tenant}"'s: each tenant needs a domain of its own`);
      if (secret) configs.push(config);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      for (const problem of error.problems) {
        const mine = tenantProblem(problem, given, tenant.name);
        if (mine === undefined) shared.add(problem);
        else problems.push(mine);
      }
    }
  }
  if (problems.length > 0 || shared.size > 0) throw new ConfigError([...shared, ...problems]);
  return configs;
}

/**
 * Parse and validate the environment once. Pure: collects every problem and throws one
 * ConfigError naming each variable to fix. The result is frozen; the client secret is wrapped
 * in a Secret so the config can be logged or inspected safely.
 */
export function loadConfig(env: Env): Config {
  const reader = createReader(env);
  const { text, int, positive, ratio, duration, bool, problems } = reader;
  const database = readDatabase(reader);

  const baseUrl = parseDomain(text('AUTH0_DOMAIN'), problems);
  const clientId = text('AUTH0_CLIENT_ID');
  const clientSecret = new Secret(text('AUTH0_CLIENT_SECRET'));
  const audience = text('AUTH0_AUDIENCE', baseUrl ? `${baseUrl}/api/v2/` : '');
  const tenant = readTenantName(env, baseUrl, problems);

  const source = readSource(reader);
  const tokensEndpoint = text('AUTH0_TOKENS_ENDPOINT', 'auto').toLowerCase() as TokensEndpointSetting;
  if (!TOKENS_ENDPOINT_SETTINGS.includes(tokensEndpoint)) {
    problems.push(`AUTH0_TOKENS_ENDPOINT must be one of ${TOKENS_ENDPOINT_SETTINGS.join(', ')} (got "${tokensEndpoint}")`);
  }

  const sessions = text('SYNC_SESSIONS', 'auto').toLowerCase() as SessionsSetting;
  if (!SESSIONS_SETTINGS.includes(sessions)) problems.push(`SYNC_SESSIONS must be one of ${SESSIONS_SETTINGS.join(', ')} (got ${quoteValue(sessions)})`);

  return reader.done({
    ...database,
    tenant,
    auth0: {
      baseUrl,
      clientId,
      clientSecret,
      audience,
      timeoutMs: int('AUTH0_TIMEOUT_MS', 30_000, 100, 600_000),
      maxRps: positive('AUTH0_MAX_RPS'),
      maxResponseBytes: int('AUTH0_MAX_RESPONSE_BYTES', 10 * 1024 * 1024, 1024, 1024 * 1024 * 1024),
      tokensEndpoint,
    },
    sync: {
      concurrency: int('SYNC_CONCURRENCY', 8, 1, 256),
      pageSize: int('SYNC_PAGE_SIZE', 100, 1, 100),
      maxPagesPerUser: int('SYNC_MAX_PAGES_PER_USER', 200, 1, 100_000),
      maxUsers: env.SYNC_MAX_USERS?.trim() ? int('SYNC_MAX_USERS', 0, 1, 1_000_000_000) : undefined,
      maxDurationMs: duration('SYNC_MAX_DURATION'),
      maxDeleteRatio: ratio('SYNC_MAX_DELETE_RATIO', 0.2),
      deleteGuardMinUsers: int('SYNC_DELETE_GUARD_MIN', 50, 1, 1_000_000),
      sessions,
    },
    import: {
      // A real export inflates 5 to 15 times (measured on generated NDJSON at gzip levels 1..9);
      // a gzip bomb 200 to 1,000 times.
      maxInflateRatio: int('IMPORT_MAX_INFLATE_RATIO', IMPORT_CAPS.maxInflateRatio, 2, 1_000_000),
      maxLines: int('IMPORT_MAX_LINES', IMPORT_CAPS.maxLines, 1, 10_000_000_000),
      maxBadLines: int('IMPORT_MAX_BAD_LINES', 1000, 0, 1_000_000_000),
    },
    worker: {
      ...readWorker(reader, bool),
      historyDays: env.SYNC_HISTORY_DAYS?.trim() ? int('SYNC_HISTORY_DAYS', 0, 1, 36_500) : undefined,
      concurrency: int('WORKER_CONCURRENCY', 4, 1, 64),
    },
    monitoring: readMonitoring(reader),
    source,
  });
}

const DEFAULT_SCHEDULE = '0 * * * *';
const DEFAULT_LOGS_SCHEDULE = '* * * * *';

function readWorker({ text, problems }: Reader, bool: (name: string, fallback: boolean) => boolean): Omit<Config['worker'], 'historyDays' | 'concurrency'> {
  const schedule = text('SYNC_SCHEDULE', DEFAULT_SCHEDULE);
  if (!cron.validate(schedule)) {
    problems.push(`SYNC_SCHEDULE must be a cron expression such as "0 * * * *" (hourly) (got "${schedule}")`);
  }
  const timezone = text('SYNC_TIMEZONE', 'UTC');
  try {
    new Intl.DateTimeFormat('en', { timeZone: timezone });
  } catch {
    problems.push(`SYNC_TIMEZONE must be an IANA time zone such as UTC or Europe/Paris (got "${timezone}")`);
  }
  const logsSchedule = text('SYNC_LOGS_SCHEDULE', DEFAULT_LOGS_SCHEDULE);
  if (logsSchedule !== 'off' && !cron.validate(logsSchedule)) {
    problems.push(`SYNC_LOGS_SCHEDULE must be a cron expression such as "* * * * *" (every minute) or off (got "${logsSchedule}")`);
  }
  return { schedule, timezone, runOnStart: bool('SYNC_RUN_ON_START', false), logsSchedule };
}

function readMonitoring({ text, int, problems }: Reader): Config['monitoring'] {
  const metricsPort = text('METRICS_PORT', '') ? int('METRICS_PORT', 0, 0, 65_535) : undefined;
  const metricsHost = text('METRICS_HOST', '127.0.0.1');
  if (!/^[\w.:[\]-]+$/.test(metricsHost)) {
    problems.push(`METRICS_HOST must be an address or host name such as 127.0.0.1 or 0.0.0.0 (got ${quoteValue(metricsHost)})`);
  }
  const raw = text('NOTIFY_WEBHOOK_URL', '');
  return { metricsPort, metricsHost, notifyWebhookUrl: raw ? parseWebhookUrl(raw, problems) : undefined };
}

/**
 * An https:// URL (plain http only for loopback hosts, like AUTH0_DOMAIN). Its value is never
 * echoed: the path of a Slack webhook URL is a credential, and the URL may carry user:pass@.
 */
function parseWebhookUrl(raw: string, problems: string[]): Secret | undefined {
  let url: URL;
  try {
    url = new URL(raw);
  } catch {
    problems.push('NOTIFY_WEBHOOK_URL must be an https:// URL (the value given is not a valid URL)');
    return undefined;
  }
  if (url.protocol === 'http:' && !isLoopback(url)) {
    problems.push('NOTIFY_WEBHOOK_URL must use https:// (plain http:// is allowed only for 127.0.0.1, localhost and [::1])');
    return undefined;
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    problems.push(`NOTIFY_WEBHOOK_URL must be an https:// URL (got a ${quoteValue(url.protocol)} URL)`);
    return undefined;
  }
  return new Secret(url.toString());
}

/**
 * `tenant.eu.auth0.com` or `https://tenant.eu.auth0.com[/]` become `https://tenant.eu.auth0.com`.
 * Plain http is accepted only for loopback hosts, so the client secret never crosses a network
 * in clear; local test servers still work.
 */
function parseDomain(raw: string, problems: string[]): string {
  if (!raw) return '';
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `https://${raw}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    // Never echoed: a value that fails to parse may still carry credentials (user:pass@).
    problems.push('AUTH0_DOMAIN must be a host name such as tenant.eu.auth0.com (the value given is not a valid host or URL)');
    return '';
  }
  if (url.protocol === 'http:' && !isLoopback(url)) {
    problems.push('AUTH0_DOMAIN must use https:// (plain http:// is allowed only for 127.0.0.1, localhost and [::1])');
    return '';
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    problems.push(`AUTH0_DOMAIN must be an https:// URL or a bare host name (got a ${quoteValue(url.protocol)} URL)`);
    return '';
  }
  if ((url.pathname !== '/' && url.pathname !== '') || url.search || url.username || url.password) {
    problems.push('AUTH0_DOMAIN must be a host name without path, query or credentials');
    return '';
  }
  return url.origin;
}

function deepFreeze<T>(value: T): T {
  if (value && typeof value === 'object' && !(value instanceof Secret)) {
    for (const inner of Object.values(value)) deepFreeze(inner);
    Object.freeze(value);
  }
  return value;
}

/** Whether the source is the job's own `auth0.users` (which import-users and the log follower keep). */
export function isDefaultUsersSource(source: Config['source']): boolean {
  return source.table[0] === 'auth0' && source.table[1] === 'users';
}
