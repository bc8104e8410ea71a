import { inspect } from 'node:util';
import { describe, expect, it } from '@jest/globals';
import { loadConfig, loadDatabaseConfig } from '../../../src/core/config.js';
import { ConfigError } from '../../../src/core/errors.js';

const valid = {
  DATABASE_URL: 'postgres://u@db:5432/warehouse',
  AUTH0_DOMAIN: 'tenant.eu.auth0.com',
  AUTH0_CLIENT_ID: 'abc',
  AUTH0_CLIENT_SECRET: 'not-a-real-secret',
};

function problemsOf(env: Record<string, string>): string[] {
  try {
    loadConfig(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return [...(error as ConfigError).problems];
  }
  throw new Error('expected a ConfigError');
}

describe('loadConfig', () => {
  it('applies the documented defaults', () => {
    const config = loadConfig(valid);
    expect(config.auth0.baseUrl).toBe('https://tenant.eu.auth0.com');
    expect(config.auth0.audience).toBe('https://tenant.eu.auth0.com/api/v2/');
    expect(config.sync).toEqual({
      concurrency: 8,
      pageSize: 100,
      maxPagesPerUser: 200,
      maxUsers: undefined,
      maxDurationMs: undefined,
      maxDeleteRatio: 0.2,
      deleteGuardMinUsers: 50,
      sessions: 'auto',
    });
    expect(config.source).toEqual({ table: ['auth0', 'users'], column: 'user_id' });
    expect(Object.isFrozen(config.auth0)).toBe(true);
  });

  it('reads the import caps (issue #24): defaults far above a real tenant, each range-checked', () => {
    expect(loadConfig(valid).import).toEqual({ maxInflateRatio: 100, maxLines: 50_000_000, maxBadLines: 1000 });
    expect(loadConfig({ ...valid, IMPORT_MAX_INFLATE_RATIO: '40', IMPORT_MAX_LINES: '200000000', IMPORT_MAX_BAD_LINES: '0' }).import).toEqual({
      maxInflateRatio: 40,
      maxLines: 200_000_000,
      maxBadLines: 0,
    });
    const problems = problemsOf({ ...valid, IMPORT_MAX_INFLATE_RATIO: '1', IMPORT_MAX_LINES: 'many', IMPORT_MAX_BAD_LINES: '-1' });
    expect(problems).toHaveLength(3);
    expect(problems.join('\n')).toMatch(/IMPORT_MAX_INFLATE_RATIO[\s\S]*IMPORT_MAX_LINES[\s\S]*IMPORT_MAX_BAD_LINES/);
  });

  it("names the tenant (issue #23): AUTH0_TENANT_NAME, else the domain's first label, always a short safe name", () => {
    expect(loadConfig(valid).tenant).toBe('tenant');
    expect(loadConfig({ ...valid, AUTH0_DOMAIN: 'https://Prod-EU.eu.auth0.com' }).tenant).toBe('prod-eu');
    expect(loadConfig({ ...valid, AUTH0_TENANT_NAME: 'prod-eu' }).tenant).toBe('prod-eu');
    expect(problemsOf({ ...valid, AUTH0_TENANT_NAME: 'Prod EU' })).toEqual([
      'AUTH0_TENANT_NAME must be a short name of lower-case letters, digits and hyphens (at most 32), such as prod-eu (got "Prod EU")',
    ]);
    expect(problemsOf({ ...valid, AUTH0_DOMAIN: 'my_tenant.auth0.com' })[0]).toMatch(
      /^AUTH0_TENANT_NAME must be set: the first label of AUTH0_DOMAIN \("my_tenant"\)/,
    );
  });

  it('reads AUTH0_TOKENS_ENDPOINT: auto by default, refresh-tokens or users, anything else named', () => {
    expect(loadConfig(valid).auth0.tokensEndpoint).toBe('auto');
    expect(loadConfig({ ...valid, AUTH0_TOKENS_ENDPOINT: 'users' }).auth0.tokensEndpoint).toBe('users');
    expect(loadConfig({ ...valid, AUTH0_TOKENS_ENDPOINT: ' Refresh-Tokens ' }).auth0.tokensEndpoint).toBe('refresh-tokens');
    expect(problemsOf({ ...valid, AUTH0_TOKENS_ENDPOINT: 'user' })).toEqual(['AUTH0_TOKENS_ENDPOINT must be one of auto, refresh-tokens, users (got "user")']);
  });

  it('accepts a full https URL and plain http only on loopback', () => {
    expect(loadConfig({ ...valid, AUTH0_DOMAIN: 'https://tenant.auth0.com/' }).auth0.baseUrl).toBe('https://tenant.auth0.com');
    expect(loadConfig({ ...valid, AUTH0_DOMAIN: 'http://127.0.0.1:4000' }).auth0.baseUrl).toBe('http://127.0.0.1:4000');
    expect(problemsOf({ ...valid, AUTH0_DOMAIN: 'http://tenant.auth0.com' })).toEqual([expect.stringContaining('AUTH0_DOMAIN must use https://')]);
  });

  it('names every variable to fix in one error', () => {
    const problems = problemsOf({
      AUTH0_DOMAIN: 'tenant.auth0.com',
      SYNC_CONCURRENCY: '0',
      SYNC_PAGE_SIZE: '101',
      SOURCE_USERS_TABLE: 'a.b.c',
      SOURCE_USER_ID_COLUMN: 'id"',
    });
    for (const name of ['AUTH0_CLIENT_ID', 'AUTH0_CLIENT_SECRET', 'SYNC_CONCURRENCY', 'SYNC_PAGE_SIZE', 'SOURCE_USERS_TABLE', 'SOURCE_USER_ID_COLUMN']) {
      expect(problems.some((p) => p.startsWith(name))).toBe(true);
    }
    expect(problems).toHaveLength(6);
  });

  it('parses a schema-qualified source table', () => {
    expect(loadConfig({ ...valid, SOURCE_USERS_TABLE: 'crm.people', SOURCE_USER_ID_COLUMN: 'auth0_id' }).source).toEqual({
      table: ['crm', 'people'],
      column: 'auth0_id',
    });
    expect(loadConfig({ ...valid, SOURCE_USERS_TABLE: 'people' }).source.table).toEqual(['public', 'people']);
  });

  it('never shows the client secret', () => {
    const config = loadConfig(valid);
    expect(config.auth0.clientSecret.reveal()).toBe('not-a-real-secret');
    expect(JSON.stringify(config)).not.toContain('not-a-real');
    expect(inspect(config, { depth: 10 })).not.toContain('not-a-real');
    expect(problemsOf({ ...valid, DATABASE_URL: 'mysql://x', AUTH0_CLIENT_SECRET: 'not-a-real-secret' }).join()).not.toContain('not-a-real');
  });

  it('migrate needs only the database, and no DATABASE_URL means the embedded one', () => {
    expect(loadDatabaseConfig({ DATABASE_URL: valid.DATABASE_URL }).databaseUrl).toBe(valid.DATABASE_URL);
    expect(loadDatabaseConfig({})).toMatchObject({ databaseUrl: undefined, dataDir: '.data/pglite' });
    expect(() => loadDatabaseConfig({ DATABASE_URL: 'mysql://x' })).toThrow('DATABASE_URL must be a postgres:// or postgresql:// URL');
  });

  it('validates the worker schedule, time zone, budget and booleans', () => {
    expect(loadConfig(valid).worker).toEqual({ schedule: '0 * * * *', timezone: 'UTC', runOnStart: false, logsSchedule: '* * * * *', concurrency: 4 });
    expect(loadConfig({ ...valid, SYNC_LOGS_SCHEDULE: 'off' }).worker.logsSchedule).toBe('off');
    const problems = problemsOf({
      ...valid,
      SYNC_SCHEDULE: 'every hour',
      SYNC_LOGS_SCHEDULE: 'every minute',
      SYNC_TIMEZONE: 'Mars/Olympus',
      SYNC_RUN_ON_START: 'maybe',
      SYNC_MAX_DURATION: '10 minutes',
      SYNC_MAX_USERS: '-5',
      AUTH0_MAX_RPS: '0',
    });
    for (const name of ['SYNC_SCHEDULE', 'SYNC_LOGS_SCHEDULE', 'SYNC_TIMEZONE', 'SYNC_RUN_ON_START', 'SYNC_MAX_DURATION', 'SYNC_MAX_USERS', 'AUTH0_MAX_RPS']) {
      expect(problems.some((p) => p.startsWith(name))).toBe(true);
    }
    expect(loadConfig({ ...valid, SYNC_MAX_DURATION: '1h30m', SYNC_MAX_USERS: '5000' }).sync).toMatchObject({ maxDurationMs: 5_400_000, maxUsers: 5000 });
  });

  it('SYNC_HISTORY_DAYS: unset keeps everything, else whole days from 1', () => {
    expect(loadConfig(valid).worker.historyDays).toBeUndefined();
    expect(loadConfig({ ...valid, SYNC_HISTORY_DAYS: '90' }).worker.historyDays).toBe(90);
    for (const bad of ['0', '-3', '1.5', '30d']) {
      expect(problemsOf({ ...valid, SYNC_HISTORY_DAYS: bad })).toEqual([`SYNC_HISTORY_DAYS must be a whole number from 1 to 36500 (got "${bad}")`]);
    }
  });

  it('takes any PostgreSQL name for the source table and column, quoted where used', () => {
    const source = (table: string, column = 'user_id') => loadDatabaseConfig({ SOURCE_USERS_TABLE: table, SOURCE_USER_ID_COLUMN: column }).source;
    expect(source('My Schema.Users ünïcode', 'Auth0 Id')).toEqual({ table: ['My Schema', 'Users ünïcode'], column: 'Auth0 Id' });
    expect(source('users; drop table x')).toEqual({ table: ['public', 'users; drop table x'], column: 'user_id' });
    // Double quotes, as in SQL, for a part holding a dot or a quote; "" is one quote.
    expect(source('"My Schema"."users.v2"', '"user.id"')).toEqual({ table: ['My Schema', 'users.v2'], column: 'user.id' });
    expect(source('crm."say ""hi"""')).toEqual({ table: ['crm', 'say "hi"'], column: 'user_id' });
    expect(source('"public".people')).toEqual({ table: ['public', 'people'], column: 'user_id' });
    expect(source('x'.repeat(63), 'é'.repeat(31))).toEqual({ table: ['public', 'x'.repeat(63)], column: 'é'.repeat(31) });
  });

  it.each([
    ['SOURCE_USERS_TABLE', 'auth0.', 'has an empty name'],
    ['SOURCE_USERS_TABLE', '.users', 'has an empty name'],
    ['SOURCE_USERS_TABLE', '""', 'has an empty name'],
    ['SOURCE_USERS_TABLE', 'a\u0000b', 'contains a NUL character'],
    ['SOURCE_USERS_TABLE', 'x'.repeat(64), 'has a name longer than 63 bytes'],
    ['SOURCE_USERS_TABLE', 'crm.' + 'é'.repeat(32), 'has a name longer than 63 bytes'],
    ['SOURCE_USERS_TABLE', 'db.crm.people', 'must be table or schema.table'],
    ['SOURCE_USERS_TABLE', '"crm.people', 'has a double quote that is not closed'],
    ['SOURCE_USERS_TABLE', '"crm"people', 'must have a dot after a name in double quotes'],
    ['SOURCE_USERS_TABLE', 'crm.pe"ople', 'has a double quote inside a name'],
    ['SOURCE_USER_ID_COLUMN', 'a.b', 'must be one column name'],
    ['SOURCE_USER_ID_COLUMN', 'x'.repeat(64), 'has a name longer than 63 bytes'],
    ['SOURCE_USER_ID_COLUMN', 'id\u0000', 'contains a NUL character'],
  ])('refuses %s=%j', (name, value, problem) => {
    let problems: string[] = [];
    try {
      loadDatabaseConfig({ [name]: value });
    } catch (error) {
      problems = [...(error as ConfigError).problems];
    }
    expect(problems).toEqual([expect.stringContaining(`${name} ${problem}`)]);
    expect(problems[0]).not.toContain('\u0000');
  });

  it('never echoes an AUTH0_DOMAIN that may carry credentials', () => {
    for (const domain of ['https://user:pa55word@tenant.auth0.com:99999', 'ftp://user:pa55word@tenant.auth0.com', 'https://user:pa55word@tenant.auth0.com']) {
      const problems = problemsOf({ ...valid, AUTH0_DOMAIN: domain });
      expect(problems).toEqual([expect.stringMatching(/^AUTH0_DOMAIN /)]);
      expect(problems.join(' ')).not.toMatch(/pa55word|user:/);
    }
  });

  it('caps Auth0 answers at AUTH0_MAX_RESPONSE_BYTES, 10 MB unless set', () => {
    expect(loadConfig(valid).auth0.maxResponseBytes).toBe(10 * 1024 * 1024);
    expect(loadConfig({ ...valid, AUTH0_MAX_RESPONSE_BYTES: '65536' }).auth0.maxResponseBytes).toBe(65536);
    expect(problemsOf({ ...valid, AUTH0_MAX_RESPONSE_BYTES: '10MB' })).toEqual([
      'AUTH0_MAX_RESPONSE_BYTES must be a whole number from 1024 to 1073741824 (got "10MB")',
    ]);
  });
});
