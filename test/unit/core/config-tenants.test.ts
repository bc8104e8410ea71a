import { describe, expect, it } from '@jest/globals';
import { loadConfig, loadDatabaseConfig, loadTenants, type Env } from '../../../src/core/config.js';
import { ConfigError } from '../../../src/core/errors.js';

const SECRET_EU = 'eu-secret-value-1234';
const SECRET_US = 'us-secret-value-5678';

const shared: Env = {
  DATABASE_URL: 'postgres://u@db:5432/warehouse',
  TENANTS_FILE: '/etc/sync/tenants.json',
  AUTH0_SECRET_PROD_EU: SECRET_EU,
  AUTH0_SECRET_PROD_US: SECRET_US,
};

const eu = { name: 'prod-eu', domain: 'prod-eu.eu.auth0.com', clientId: 'eu-client', clientSecretEnv: 'AUTH0_SECRET_PROD_EU' };
const us = { name: 'prod-us', domain: 'prod-us.us.auth0.com', clientId: 'us-client', clientSecretEnv: 'AUTH0_SECRET_PROD_US' };

/** A readFile that serves `content` (JSON-encoded unless a string) at TENANTS_FILE's path only. */
const fileOf = (content: unknown) => (path: string) => {
  if (path !== shared.TENANTS_FILE) throw Object.assign(new Error(`ENOENT: ${path}`), { code: 'ENOENT' });
  return typeof content === 'string' ? content : JSON.stringify(content);
};

function problemsOf(load: () => unknown): string[] {
  try {
    load();
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    const { message, problems } = error as ConfigError;
    expect(message).not.toContain(SECRET_EU);
    expect(message).not.toContain(SECRET_US);
    return [...problems];
  }
  throw new Error('expected a ConfigError');
}

describe('loadTenants', () => {
  it('without TENANTS_FILE is exactly loadConfig: one tenant from the AUTH0_* variables', () => {
    const env = { DATABASE_URL: shared.DATABASE_URL, AUTH0_DOMAIN: 'tenant.eu.auth0.com', AUTH0_CLIENT_ID: 'abc', AUTH0_CLIENT_SECRET: 's3cr3t' };
    const configs = loadTenants(env, () => {
      throw new Error('no file is read without TENANTS_FILE');
    });
    expect(configs).toEqual([loadConfig(env)]);
    expect(configs[0]!.tenant).toBe('tenant');
  });

  it('gives one full Config per tenant: its own domain, client and secret, the shared settings in each', () => {
    const configs = loadTenants({ ...shared, SYNC_CONCURRENCY: '4', SYNC_MAX_DELETE_RATIO: '0.1' }, fileOf({ tenants: [eu, us] }));
    expect(configs.map((c) => c.tenant)).toEqual(['prod-eu', 'prod-us']);
    expect(configs.map((c) => c.auth0.baseUrl)).toEqual(['https://prod-eu.eu.auth0.com', 'https://prod-us.us.auth0.com']);
    expect(configs.map((c) => c.auth0.audience)).toEqual(['https://prod-eu.eu.auth0.com/api/v2/', 'https://prod-us.us.auth0.com/api/v2/']);
    expect(configs.map((c) => c.auth0.clientSecret.reveal())).toEqual([SECRET_EU, SECRET_US]);
    for (const config of configs) {
      expect(config.databaseUrl).toBe(shared.DATABASE_URL);
      expect(config.sync.concurrency).toBe(4);
      expect(config.sync.maxDeleteRatio).toBe(0.1);
      expect(Object.isFrozen(config.auth0)).toBe(true);
    }
  });

  it('lets a tenant override the shared schedule, logs schedule, users table and column, rate and endpoint; the others keep the shared ones', () => {
    const env = { ...shared, SYNC_SCHEDULE: '0 */2 * * *', SYNC_LOGS_SCHEDULE: 'off', SOURCE_USERS_TABLE: 'crm.users' };
    const overrides = {
      ...us,
      audience: 'https://api.example.com/',
      maxRps: 16,
      schedule: '30 * * * *',
      logsSchedule: '*/5 * * * *',
      usersTable: '"US Users"."all"',
      userIdColumn: 'auth0_id',
      tokensEndpoint: 'users',
    };
    const [first, second] = loadTenants(env, fileOf({ tenants: [eu, overrides] }));
    expect(first!.worker).toMatchObject({ schedule: '0 */2 * * *', logsSchedule: 'off' });
    expect(first!.source).toEqual({ table: ['crm', 'users'], column: 'user_id' });
    expect(first!.auth0).toMatchObject({ maxRps: undefined, tokensEndpoint: 'auto' });
    expect(second!.worker).toMatchObject({ schedule: '30 * * * *', logsSchedule: '*/5 * * * *' });
    expect(second!.source).toEqual({ table: ['US Users', 'all'], column: 'auth0_id' });
    expect(second!.auth0).toMatchObject({ audience: 'https://api.example.com/', maxRps: 16, tokensEndpoint: 'users' });
  });

  it('names every mistake at once, each with its tenant, in the words of the file', () => {
    const bad = {
      tenants: [
        { ...eu, schedule: 'hourly', maxRps: 0, domain: 'http://prod-eu.example.com', tokensEndpoint: 'both' },
        { ...us, name: 'Prod US', clientId: undefined, shedule: '0 * * * *' },
        { ...us, name: 'prod-au', clientSecretEnv: 'AUTH0_SECRET_PROD_AU', usersTable: 'a.b.c', maxRps: '16' },
        'prod-jp',
      ],
      extra: true,
    };
    const problems = problemsOf(() => loadTenants({ ...shared, SYNC_PAGE_SIZE: '500' }, fileOf(bad)));
    expect(problems).toEqual(
      expect.arrayContaining([
        'TENANTS_FILE: "extra" is not a field (a tenant has name, domain, clientId, clientSecretEnv, audience, maxRps, schedule, logsSchedule, usersTable, userIdColumn, tokensEndpoint)',
        'SYNC_PAGE_SIZE must be a whole number from 1 to 100 (got "500")',
        'TENANTS_FILE: tenant "prod-eu": domain must use https:// (plain http:// is allowed only for 127.0.0.1, localhost and [::1])',
        'TENANTS_FILE: tenant "prod-eu": maxRps must be a number of requests per second above 0 (got "0")',
        'TENANTS_FILE: tenant "prod-eu": schedule must be a cron expression such as "0 * * * *" (hourly) (got "hourly")',
        'TENANTS_FILE: tenant "prod-eu": tokensEndpoint must be one of auto, refresh-tokens, users (got "both")',
        expect.stringMatching(/^TENANTS_FILE: tenant #2: "shedule" is not a field/),
        'TENANTS_FILE: tenant #2: clientId is required',
        'TENANTS_FILE: tenant #2: name must be a short name of lower-case letters, digits and hyphens (at most 32), such as prod-eu (got "Prod US")',
        'TENANTS_FILE: tenant "prod-au": maxRps must be a number',
        'TENANTS_FILE: tenant #4 must be an object such as { "name": "prod-eu", "domain": ..., ... }',
      ]),
    );
    expect(problems.filter((p) => p.startsWith('SYNC_PAGE_SIZE'))).toHaveLength(1);
  });

  it('checks the values of an entry whose shape is right with the parsers of their variables', () => {
    const problems = problemsOf(() =>
      loadTenants(shared, fileOf({ tenants: [{ ...eu, clientSecretEnv: 'AUTH0_SECRET_PROD_AU', usersTable: 'a.b.c', logsSchedule: 'never' }] })),
    );
    expect(problems).toEqual([
      'TENANTS_FILE: tenant "prod-eu": clientSecretEnv names AUTH0_SECRET_PROD_AU, which is not set',
      'TENANTS_FILE: tenant "prod-eu": usersTable must be table or schema.table; put a name holding a dot in double quotes (got "a.b.c")',
      'TENANTS_FILE: tenant "prod-eu": logsSchedule must be a cron expression such as "* * * * *" (every minute) or off (got "never")',
    ]);
  });

  it('refuses a file holding a secret, and never echoes it', () => {
    const problems = problemsOf(() =>
      loadTenants(
        shared,
        fileOf({
          tenants: [
            { ...eu, clientSecret: SECRET_EU },
            { ...us, clientSecretEnv: SECRET_US, schedule: 'hourly' },
            { ...us, name: 'staging', domain: 'staging.auth0.com', password: SECRET_US, clientSecretEnv: 'AUTH0_CLIENT_SECRET' },
            // Any variable of the process would go to the domain as a client secret otherwise.
            { ...us, name: 'dev', domain: 'attacker.example.com', clientSecretEnv: 'DATABASE_URL' },
          ],
        }),
      ),
    );
    expect(problems).toEqual([
      'TENANTS_FILE: tenant "prod-eu": "clientSecret" looks like a secret, and TENANTS_FILE holds none: put the secret in an environment variable and give that variable\'s name as clientSecretEnv',
      expect.stringMatching(
        /^TENANTS_FILE: tenant "prod-us": clientSecretEnv must be the name of an environment variable .* \(not shown: it may be the secret itself\)$/,
      ),
      expect.stringMatching(/^TENANTS_FILE: tenant "staging": "password" looks like a secret/),
      'TENANTS_FILE: tenant "staging": clientSecretEnv must name a variable of the tenant\'s own, such as AUTH0_SECRET_PROD_EU: AUTH0_CLIENT_SECRET is refused beside TENANTS_FILE',
      'TENANTS_FILE: tenant "dev": clientSecretEnv must name a variable whose name says SECRET, such as AUTH0_SECRET_PROD_EU (got DATABASE_URL, which may hold something else)',
      // The other mistakes of an entry with a bad clientSecretEnv are named too.
      'TENANTS_FILE: tenant "prod-us": schedule must be a cron expression such as "0 * * * *" (hourly) (got "hourly")',
    ]);
  });

  it('refuses the per-tenant AUTH0_* variables beside TENANTS_FILE with a sentence: no silent precedence', () => {
    const problems = problemsOf(() =>
      loadTenants({ ...shared, AUTH0_DOMAIN: 'x.auth0.com', AUTH0_CLIENT_SECRET: 'env-secret-9', AUTH0_MAX_RPS: '5' }, fileOf({ tenants: [eu] })),
    );
    expect(problems).toEqual([
      expect.stringMatching(/^TENANTS_FILE is set, so every tenant comes from that file: unset AUTH0_DOMAIN, AUTH0_CLIENT_SECRET, AUTH0_MAX_RPS \(/),
    ]);
    expect(problems.join()).not.toContain('env-secret-9');
  });

  it('wants unique names and domains, and at least one tenant', () => {
    expect(
      problemsOf(() => loadTenants(shared, fileOf({ tenants: [eu, { ...us, name: 'prod-eu' }, { ...us, domain: 'https://PROD-EU.eu.auth0.com/' }] }))),
    ).toEqual([
      'TENANTS_FILE: tenant "prod-eu" is listed twice: each tenant needs a name of its own',
      'TENANTS_FILE: tenant "prod-us": domain is also tenant "prod-eu"\'s: each tenant needs a domain of its own',
    ]);
    expect(problemsOf(() => loadTenants(shared, fileOf({ tenants: [] })))).toEqual(['TENANTS_FILE must list at least one tenant']);
  });

  it('says in one sentence naming the path when the file is missing, not JSON, or not a list of tenants, without quoting its text', () => {
    expect(problemsOf(() => loadTenants({ ...shared, TENANTS_FILE: '/nowhere.json' }, fileOf({})))).toEqual([
      'TENANTS_FILE names "/nowhere.json", which cannot be read (no such file)',
    ]);
    expect(problemsOf(() => loadTenants(shared, fileOf(`{"tenants": [{"clientSecret": ${SECRET_EU}}]}`)))).toEqual([
      'TENANTS_FILE names "/etc/sync/tenants.json", which is not valid JSON',
    ]);
    expect(problemsOf(() => loadTenants(shared, fileOf([eu])))).toEqual([
      expect.stringMatching(/^TENANTS_FILE "\/etc\/sync\/tenants.json" must be a JSON object with a "tenants" list/),
    ]);
  });
});

describe('tenants.example.json', () => {
  it('is a valid TENANTS_FILE with no secret in it', () => {
    const env = {
      DATABASE_URL: shared.DATABASE_URL,
      TENANTS_FILE: 'tenants.example.json',
      AUTH0_SECRET_PROD_EU: 'a',
      AUTH0_SECRET_PROD_US: 'b',
      AUTH0_SECRET_STAGING: 'c',
    };
    expect(loadTenants(env).map((config) => config.tenant)).toEqual(['prod-eu', 'prod-us', 'staging']);
  });
});

describe('loadDatabaseConfig tenant names', () => {
  it('reads them from TENANTS_FILE without any secret being set', () => {
    const env = { DATABASE_URL: shared.DATABASE_URL, TENANTS_FILE: shared.TENANTS_FILE };
    expect(loadDatabaseConfig(env, fileOf({ tenants: [eu, us] }))).toMatchObject({ tenantNames: ['prod-eu', 'prod-us'], tenantSources: {} });
    const sources = loadDatabaseConfig({ ...env, SOURCE_USER_ID_COLUMN: 'uid' }, fileOf({ tenants: [eu, { ...us, usersTable: 'crm.us_users' }] }));
    expect(sources.source).toEqual({ table: ['auth0', 'users'], column: 'uid' });
    expect(sources.tenantSources).toEqual({ 'prod-us': { table: ['crm', 'us_users'], column: 'uid' } });
    expect(problemsOf(() => loadDatabaseConfig(env, fileOf({ tenants: [{ ...us, userIdColumn: 'a.b' }] })))).toEqual([
      'TENANTS_FILE: tenant "prod-us": userIdColumn must be one column name; put a name holding a dot in double quotes (got "a.b")',
    ]);
    expect(problemsOf(() => loadDatabaseConfig(env, fileOf({ tenants: [{ ...eu, clientSecret: SECRET_EU }] })))[0]).toMatch(
      /"clientSecret" looks like a secret/,
    );
  });

  it('names the one tenant of the AUTH0_* variables, or none', () => {
    expect(loadDatabaseConfig({ AUTH0_DOMAIN: 'tenant.eu.auth0.com' }).tenantNames).toEqual(['tenant']);
    expect(loadDatabaseConfig({ AUTH0_DOMAIN: 'tenant.eu.auth0.com', AUTH0_TENANT_NAME: 'prod-eu' }).tenantNames).toEqual(['prod-eu']);
    expect(loadDatabaseConfig({}).tenantNames).toEqual([]);
    expect(loadDatabaseConfig({ AUTH0_DOMAIN: 'http://127.0.0.1:4000' }).tenantNames).toEqual(['127']);
    expect(problemsOf(() => loadDatabaseConfig({ AUTH0_TENANT_NAME: 'Prod EU' }))).toEqual([
      'AUTH0_TENANT_NAME must be a short name of lower-case letters, digits and hyphens (at most 32), such as prod-eu (got "Prod EU")',
    ]);
  });
});
