/**
 * `TENANTS_FILE` (issue #23): the JSON file listing the tenants one warehouse serves. This module
 * reads it and checks its shape (fields, types, names, no secret); config.ts's `loadTenants`
 * turns each entry into a full Config with the same parsers as the environment variables.
 */
import { readFileSync } from 'node:fs';
import { isTenantName, TENANT_NAME_RULE } from './tenant-name.js';
import { quoteValue } from './upstream-text.js';

/** The environment, as config.ts reads it (not imported from there: config.ts imports this module). */
type Env = Record<string, string | undefined>;

/** One tenant as the file gives it, after its shape was checked. */
export interface TenantEntry {
  readonly name: string;
  readonly domain: string;
  readonly clientId: string;
  /** The name of the environment variable holding the client secret, never the secret. */
  readonly clientSecretEnv: string;
  readonly audience?: string;
  readonly maxRps?: number;
  readonly schedule?: string;
  readonly logsSchedule?: string;
  readonly usersTable?: string;
  readonly userIdColumn?: string;
  readonly tokensEndpoint?: string;
}

/** Reads a file's text; tests pass their own. */
export type ReadFile = (path: string) => string;

const readUtf8: ReadFile = (path) => readFileSync(path, 'utf8');

/** Every field a tenant may have, with its JSON type; the first four are required. */
const FIELDS = {
  name: 'string',
  domain: 'string',
  clientId: 'string',
  clientSecretEnv: 'string',
  audience: 'string',
  maxRps: 'number',
  schedule: 'string',
  logsSchedule: 'string',
  usersTable: 'string',
  userIdColumn: 'string',
  tokensEndpoint: 'string',
} as const;
const REQUIRED = ['name', 'domain', 'clientId', 'clientSecretEnv'] as const;

/**
 * The variables that describe one tenant. With TENANTS_FILE set they are refused: a value in
 * both places would need a rule for which one wins, and an operator would guess it wrong.
 */
export const TENANT_VARIABLES = [
  'AUTH0_DOMAIN',
  'AUTH0_CLIENT_ID',
  'AUTH0_CLIENT_SECRET',
  'AUTH0_AUDIENCE',
  'AUTH0_TENANT_NAME',
  'AUTH0_MAX_RPS',
  'AUTH0_TOKENS_ENDPOINT',
] as const;

/** An environment variable's name, as `clientSecretEnv` must give it. */
const VARIABLE_NAME = /^[A-Z_][A-Z0-9_]*$/;
/** Keys that look like they hold a credential: refused with a sentence of their own, not as a typo. */
const SECRET_KEY = /secret|passw|token|credential|private|api[-_]?key/i;

/** What reading the file found: its tenants (those whose shape is right) and every problem, each naming its tenant. */
export interface TenantsFile {
  readonly path: string;
  readonly tenants: readonly TenantEntry[];
  readonly problems: readonly string[];
}

/**
 * Read and check `TENANTS_FILE` without looking at any secret (migrate and status read the
 * tenant names through this, and need no credentials). Undefined when the variable is unset.
 * A file that cannot be read or is not JSON gives one problem naming the path; no value from
 * the file that could be a secret is ever echoed (not even JSON.parse's message, which quotes
 * the text around the mistake).
 */
export function readTenantsFile(env: Env, readFile: ReadFile = readUtf8): TenantsFile | undefined {
  const path = env.TENANTS_FILE?.trim();
  if (!path) return undefined;
  const problems: string[] = [];
  const fail = (problem: string): TenantsFile => ({ path, tenants: [], problems: [...problems, `TENANTS_FILE ${problem}`] });
  const set = TENANT_VARIABLES.filter((name) => env[name]?.trim());
  if (set.length > 0) {
    problems.push(
      `TENANTS_FILE is set, so every tenant comes from that file: unset ${set.join(', ')} ` +
        "(put each tenant's domain, client and name in the file, and its secret in the variable its clientSecretEnv names)",
    );
  }
  let text: string;
  try {
    text = readFile(path);
  } catch (error) {
    return fail(`names ${quoteValue(path)}, which cannot be read (${describeReadError(error)})`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    return fail(`names ${quoteValue(path)}, which is not valid JSON`);
  }
  if (!isObject(json) || !Array.isArray(json.tenants)) {
    return fail(`${quoteValue(path)} must be a JSON object with a "tenants" list: { "tenants": [ { "name": ..., "domain": ..., ... } ] }`);
  }
  for (const key of Object.keys(json)) {
    if (key !== 'tenants') problems.push(`TENANTS_FILE: ${describeUnknownKey(key)}`);
  }
  if (json.tenants.length === 0) problems.push('TENANTS_FILE must list at least one tenant');
  const tenants: TenantEntry[] = [];
  const seen = new Set<string>();
  json.tenants.forEach((raw, index) => {
    const entry = checkEntry(raw, index);
    problems.push(...entry.problems);
    if (!entry.tenant) return;
    if (seen.has(entry.tenant.name)) problems.push(`TENANTS_FILE: tenant "${entry.tenant.name}" is listed twice: each tenant needs a name of its own`);
    seen.add(entry.tenant.name);
    tenants.push(entry.tenant);
  });
  return { path, tenants, problems };
}

/** Whether `clientSecretEnv` names a variable the secret may be read from (checkEntry says why not otherwise). */
export const isSecretVariable = (name: string): boolean =>
  VARIABLE_NAME.test(name) && name.includes('SECRET') && !(TENANT_VARIABLES as readonly string[]).includes(name);

/** One entry's shape; its problems start with `TENANTS_FILE: tenant "name":` (or its place in the list when it has no usable name). */
function checkEntry(raw: unknown, index: number): { tenant?: TenantEntry; problems: string[] } {
  // The entry still goes on to have its values checked after an unknown key or a bad
  // clientSecretEnv (so every mistake is named at once); not without a field it needs, or with
  // a field of the wrong type or a name that cannot be one.
  let usable = true;
  const place = `TENANTS_FILE: tenant #${index + 1}`;
  if (!isObject(raw)) return { problems: [`${place} must be an object such as { "name": "prod-eu", "domain": ..., ... }`] };
  const label = typeof raw.name === 'string' && isTenantName(raw.name) ? `TENANTS_FILE: tenant "${raw.name}"` : place;
  const problems: string[] = [];
  const say = (problem: string) => problems.push(`${label}: ${problem}`);
  for (const key of Object.keys(raw)) {
    if (!(key in FIELDS)) say(describeUnknownKey(key));
  }
  for (const [field, type] of Object.entries(FIELDS)) {
    const value = raw[field];
    if (value === undefined || value === null) {
      if ((REQUIRED as readonly string[]).includes(field)) {
        say(`${field} is required`);
        usable = false;
      }
    } else if (typeof value !== type) {
      say(`${field} must be ${type === 'number' ? 'a number' : 'a string'}`);
      usable = false;
    }
  }
  if (typeof raw.name === 'string' && !isTenantName(raw.name)) {
    say(`name must be ${TENANT_NAME_RULE} (got ${quoteValue(raw.name)})`);
    usable = false;
  }
  const secretEnv = raw.clientSecretEnv;
  if (typeof secretEnv === 'string' && !VARIABLE_NAME.test(secretEnv)) {
    // Never echoed: a value that is not a variable name may well be the secret itself.
    say(
      'clientSecretEnv must be the name of an environment variable that holds the secret, such as AUTH0_SECRET_PROD_EU (capital letters, digits and _); ' +
        'the value given is not one (not shown: it may be the secret itself)',
    );
  } else if (typeof secretEnv === 'string' && (TENANT_VARIABLES as readonly string[]).includes(secretEnv)) {
    say(`clientSecretEnv must name a variable of the tenant's own, such as AUTH0_SECRET_PROD_EU: ${secretEnv} is refused beside TENANTS_FILE`);
  } else if (typeof secretEnv === 'string' && !secretEnv.includes('SECRET')) {
    // Else the file could send any variable of the process (DATABASE_URL, say) as a client
    // secret to the domain it names: whoever may edit the file is not trusted with those.
    say(`clientSecretEnv must name a variable whose name says SECRET, such as AUTH0_SECRET_PROD_EU (got ${secretEnv}, which may hold something else)`);
  }
  return usable ? { tenant: raw as unknown as TenantEntry, problems } : { problems };
}

/** An unknown key: a typo, or a secret that does not belong in the file. */
function describeUnknownKey(key: string): string {
  const shown = quoteValue(key);
  if (SECRET_KEY.test(key)) {
    return (
      `${shown} looks like a secret, and TENANTS_FILE holds none: put the secret in an environment variable ` +
      "and give that variable's name as clientSecretEnv"
    );
  }
  return `${shown} is not a field (a tenant has ${Object.keys(FIELDS).join(', ')})`;
}

function describeReadError(error: unknown): string {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'ENOENT') return 'no such file';
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  if (code === 'EISDIR') return 'it is a directory';
  return code ?? 'unreadable';
}

const isObject = (value: unknown): value is Record<string, unknown> => typeof value === 'object' && value !== null && !Array.isArray(value);
