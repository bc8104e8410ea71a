import { execFile } from 'node:child_process';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from '@jest/globals';
import pg from 'pg';
import { parse } from 'yaml';
import { main } from '../../src/cli/main.js';
import { ROOT } from '../helpers/cli.js';
import { ADMIN_URL, captureIo, cliDeps, createTestDatabase, describeServer, loadUsers, type TestDatabase } from '../helpers/db.js';
import { SCOPE_WITH_SESSIONS } from '../../sandbox/auth0-server.js';
import { envFor, generateTenant, startFakeAuth0, type Auth0TokenJson, type FakeAuth0 } from '../helpers/fake-auth0.js';
import { seedTwoTenants } from '../report/two-tenants.js';

/**
 * grafana/: the provisioned data source and dashboard that `docker compose --profile tools up`
 * starts. No Grafana runs here: every panel's SQL is run with Grafana's macros filled in, against
 * a warehouse written by real syncs of the sandbox tenant, as the owner and as the read-only role
 * the data source uses, so a renamed view column breaks the build instead of the dashboard.
 */

interface Target {
  refId: string;
  rawSql: string;
  format: 'table' | 'time_series';
  datasource?: { type: string; uid: string };
}
interface Override {
  matcher: { id: string; options: string };
}
interface Panel {
  id: number;
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  targets?: Target[];
  panels?: Panel[];
  fieldConfig?: { overrides: Override[] };
  options?: { xField?: string; reduceOptions?: { fields?: string } };
}
interface Variable {
  name: string;
  type: string;
  query?: string;
  datasource?: { type: string; uid: string };
  multi?: boolean;
  includeAll?: boolean;
  allValue?: string | null;
  current?: { value?: string | string[] };
}
interface Dashboard {
  uid: string;
  time: { from: string; to: string };
  templating: { list: Variable[] };
  panels: Panel[];
}

const read = (...parts: string[]) => readFileSync(path.join(ROOT, ...parts), 'utf8');
const dashboard = JSON.parse(read('grafana', 'dashboards', 'refresh-tokens.json')) as Dashboard;
const compose = parse(read('docker-compose.yml')) as {
  services: Record<
    string,
    { image?: string; profiles?: string[]; environment?: Record<string, string>; volumes?: string[]; depends_on?: Record<string, unknown> }
  >;
};
const datasources = parse(read('grafana', 'provisioning', 'datasources', 'warehouse.yml')) as {
  datasources: { uid: string; type: string; url: string; user: string; jsonData: { database: string }; secureJsonData: { password: string } }[];
};
const providers = parse(read('grafana', 'provisioning', 'dashboards', 'auth0.yml')) as { providers: { type: string; options: { path: string } }[] };
const roleScript = read('grafana', 'reader-role.sql');
/** The role name reader-role.sql creates unless told otherwise. */
const READER = /^\\set reader_role (\w+)$/m.exec(roleScript)?.[1];

/** Every panel, those inside collapsed rows included. */
const allPanels = dashboard.panels.flatMap((panel) => [panel, ...(panel.panels ?? [])]);
const queried = allPanels.filter((panel) => panel.type !== 'row');

const DAY = 86_400_000;
const SECONDS: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 };
const toSeconds = (interval: string) => {
  const match = /^(\d+)([smhdw])$/.exec(interval.trim());
  if (!match) throw new Error(`unknown interval ${interval}`);
  return Number(match[1]) * SECONDS[match[2]!]!;
};

/**
 * A panel's SQL as Grafana's PostgreSQL data source sends it: the macros expanded the way it
 * expands them (docs: "Macros" of the PostgreSQL data source), template variables replaced by
 * their current values. Throws on a macro or variable it does not know, so a new one gets a
 * rule here before the dashboard ships it.
 */
function fillMacros(rawSql: string, range: { from: Date; to: Date }, values: Readonly<Record<string, readonly string[]>> = {}): string {
  const from = `'${range.from.toISOString()}'`;
  const to = `'${range.to.toISOString()}'`;
  let text = rawSql
    .replace(/\$__timeFilter\(([^)]+)\)/g, (_m, column: string) => `${column.trim()} BETWEEN ${from} AND ${to}`)
    .replace(/\$__timeGroupAlias\(([^,]+),\s*'?(\w+)'?[^)]*\)/g, (_m, column: string, interval: string) => {
      const s = toSeconds(interval);
      return `floor(extract(epoch from ${column.trim()})/${s})*${s} AS "time"`;
    })
    .replace(/\$__timeGroup\(([^,]+),\s*'?(\w+)'?[^)]*\)/g, (_m, column: string, interval: string) => {
      const s = toSeconds(interval);
      return `floor(extract(epoch from ${column.trim()})/${s})*${s}`;
    })
    .replace(/\$__timeFrom\(\)/g, from)
    .replace(/\$__timeTo\(\)/g, to)
    .replace(/\$__interval_ms\b/g, String(DAY))
    .replace(/\$__interval\b/g, '1d');
  for (const variable of dashboard.templating.list) {
    const current = variable.current?.value;
    const chosen = values[variable.name] ?? (Array.isArray(current) ? current : [current ?? '']);
    const reference = new RegExp(`\\$\\{${variable.name}(:[a-z]+)?\\}|\\$${variable.name}\\b`, 'g');
    if (!reference.test(text)) continue;
    // "All" is Grafana's `$__all`: it sends every value of the variable's query (no allValue set).
    if (chosen.includes('$__all')) throw new Error(`give the values of $${variable.name} (its current value is All)`);
    const quoted = chosen.map((v) => `'${v.replace(/'/g, "''")}'`).join(',');
    text = text.replace(reference, quoted);
  }
  const left = /\$\{?\w+/.exec(text);
  if (left) throw new Error(`no rule for ${left[0]} in: ${rawSql}`);
  return text;
}

/** psql runs grafana/reader-role.sql as compose does (15 or later: the script uses `\getenv`); CI installs it with PostgreSQL. */
const PSQL = ['/usr/bin/psql', '/usr/local/bin/psql'].find((p) => existsSync(p));
const itPsql = PSQL ? it : it.skip;

const NUMERIC = new Set([
  pg.types.builtins.INT2,
  pg.types.builtins.INT4,
  pg.types.builtins.INT8,
  pg.types.builtins.FLOAT4,
  pg.types.builtins.FLOAT8,
  pg.types.builtins.NUMERIC,
]);
const TEXT = new Set([pg.types.builtins.TEXT, pg.types.builtins.VARCHAR, pg.types.builtins.BPCHAR]);
const TIME = new Set([pg.types.builtins.TIMESTAMPTZ, pg.types.builtins.TIMESTAMP]);
const isNumeric = (f: pg.FieldDef) => NUMERIC.has(f.dataTypeID);

describe('the dashboard JSON', () => {
  it('has panels of every kind the report shows, each with SQL of a known format', () => {
    expect(dashboard.uid).toBe('auth0-refresh-tokens');
    expect(queried.length).toBeGreaterThanOrEqual(25);
    for (const panel of queried) {
      expect({ panel: panel.title, queries: (panel.targets ?? []).length > 0 }).toEqual({ panel: panel.title, queries: true });
      for (const target of panel.targets!) {
        expect({ panel: panel.title, format: target.format, sql: typeof target.rawSql }).toEqual({
          panel: panel.title,
          format: expect.stringMatching(/^(table|time_series)$/),
          sql: 'string',
        });
      }
    }
    // The time-ranged panels use Grafana's macros, so the time picker moves them.
    const timed = queried.flatMap((p) => p.targets!).filter((t) => t.format === 'time_series');
    expect(timed.length).toBeGreaterThanOrEqual(4);
    for (const target of timed) expect(target.rawSql).toContain('$__timeFilter(');
    // Reporting views, not raw tables, where one answers the question.
    const text = queried.flatMap((p) => p.targets!.map((t) => t.rawSql)).join('\n');
    for (const view of [
      'active_refresh_tokens',
      'refresh_tokens_per_client',
      'refresh_tokens_expiring_soon',
      'refresh_tokens_unused',
      'refresh_tokens_location_changed',
      'recent_token_changes',
      'refresh_token_deletions',
      'refresh_token_deletions_by_reason',
      'active_sessions',
      'refresh_tokens_outliving_session',
      'refresh_tokens_without_second_factor',
      'sessions_per_client',
    ]) {
      expect(text).toContain(`auth0.${view}`);
    }
  });

  it('has a tenant picker (several, or All) that every panel filters on', () => {
    const tenant = dashboard.templating.list.find((v) => v.name === 'tenant');
    expect(tenant).toMatchObject({ type: 'query', multi: true, includeAll: true, current: { value: ['$__all'] } });
    // No allValue: All sends the list of tenants, which `tenant in (...)` takes as it is.
    expect(tenant!.allValue ?? null).toBeNull();
    expect(tenant!.query).toMatch(/select distinct tenant from auth0\.\w+/);
    for (const panel of queried) {
      for (const target of panel.targets!)
        expect({ panel: panel.title, filtered: target.rawSql.includes('tenant in ($tenant)') }).toEqual({ panel: panel.title, filtered: true });
    }
  });

  it('fills in the macros the way Grafana does, and refuses one it has no rule for', () => {
    const range = { from: new Date('2026-01-01T00:00:00Z'), to: new Date('2026-01-02T00:00:00Z') };
    expect(fillMacros('select $__timeGroupAlias(observed_at, 1d), 1 from x where $__timeFilter(observed_at)', range)).toBe(
      `select floor(extract(epoch from observed_at)/86400)*86400 AS "time", 1 from x where observed_at BETWEEN '2026-01-01T00:00:00.000Z' AND '2026-01-02T00:00:00.000Z'`,
    );
    expect(() => fillMacros('select $__unixEpochFilter(t)', range)).toThrow('no rule for $__unixEpochFilter');
    // A multi-value variable as Grafana's SQL data sources send it: each value quoted, comma-separated.
    expect(fillMacros('select 1 from x where tenant in ($tenant)', range, { tenant: ['prod-eu', "o'brien"] })).toBe(
      "select 1 from x where tenant in ('prod-eu','o''brien')",
    );
    expect(() => fillMacros('select 1 from x where tenant in ($tenant)', range)).toThrow('give the values of $tenant');
  });
});

describe('provisioning and compose', () => {
  const [source] = datasources.datasources;
  const grafana = compose.services.grafana!;
  const reader = compose.services['grafana-reader']!;
  /** Where a host path of the repository is mounted in a service's container. */
  const mountOf = (service: { volumes?: string[] }, host: string) =>
    service.volumes?.map((v) => v.split(':')).find(([from]) => path.normalize(from!) === path.normalize(host))?.[1];

  it('every panel and query reads the provisioned data source', () => {
    expect(datasources.datasources).toHaveLength(1);
    for (const panel of queried) {
      expect({ panel: panel.title, ds: panel.datasource }).toEqual({ panel: panel.title, ds: { type: source!.type, uid: source!.uid } });
      for (const target of panel.targets!) expect(target.datasource).toEqual({ type: source!.type, uid: source!.uid });
    }
  });

  it('the data source connects to the compose warehouse as the read-only role, its password from the environment', () => {
    expect(READER).toBe('grafana_reader');
    expect(source!.user).toBe(READER);
    expect(source!.url).toBe('postgres:5432');
    expect(source!.jsonData.database).toBe(compose.services.postgres!.environment!.POSTGRES_DB);
    expect(source!.secureJsonData.password).toBe('$GRAFANA_DB_PASSWORD');
    // Grafana and the service that sets the role's password read the same variable.
    expect(grafana.environment!.GRAFANA_DB_PASSWORD).toMatch(/^\$\{GRAFANA_DB_PASSWORD(:-[^}]*)?\}$/);
    expect(reader.environment!.GRAFANA_DB_PASSWORD).toBe(grafana.environment!.GRAFANA_DB_PASSWORD);
    expect(grafana.environment!.GF_SECURITY_ADMIN_PASSWORD).toMatch(/^\$\{GRAFANA_ADMIN_PASSWORD(:-[^}]*)?\}$/);
  });

  it('compose mounts the provisioning, the dashboard where the provider looks, and the role script', () => {
    expect(grafana.image).toMatch(/^grafana\/grafana(-oss)?:\d+\.\d+\.\d+$/);
    expect(grafana.profiles).toEqual(['tools']);
    expect(reader.profiles).toEqual(['tools']);
    expect(Object.keys(grafana.depends_on!)).toContain('grafana-reader');
    expect(Object.keys(reader.depends_on!)).toContain('migrate');
    expect(mountOf(grafana, './grafana/provisioning')).toBe('/etc/grafana/provisioning');
    const [provider] = providers.providers;
    expect(provider!.type).toBe('file');
    expect(mountOf(grafana, './grafana/dashboards')).toBe(provider!.options.path);
    expect(readdirSync(path.join(ROOT, 'grafana', 'dashboards'))).toContain('refresh-tokens.json');
    expect(grafana.environment!.GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH).toBe(`${provider!.options.path}/refresh-tokens.json`);
    const script = mountOf(reader, './grafana/reader-role.sql');
    expect(script).toBeDefined();
    expect(JSON.stringify(reader)).toContain(script);
  });
});

describeServer('every panel query against a synced warehouse', () => {
  const role = `rt_grafana_reader_${process.pid}`;
  const range = { from: new Date(Date.now() - 90 * DAY), to: new Date(Date.now() + 60_000) };

  async function sync(t: TestDatabase, fake: FakeAuth0) {
    const out = captureIo();
    const code = await main(['sync'], envFor(fake, t.url), out.io, cliDeps(t));
    expect({ code, stderr: out.stderr }).toEqual({ code: 0, stderr: [] });
  }

  /**
   * The synced warehouse, made once for the block (two syncs take seconds) and only read by its
   * tests, through `withWarehouse`: its database, tenant and owner's connection, closed after the
   * last test; `live` is what the tenant holds after the second sync.
   */
  const held: {
    t?: TestDatabase;
    fake?: FakeAuth0;
    owner?: pg.Client;
    live?: Map<string, Auth0TokenJson[]>;
    revoked: number;
    created: number;
    /** The tenant picker's values, as its query finds them: All is every one. */
    tenants: string[];
  } = { revoked: 0, created: 0, tenants: [] };
  beforeAll(async () => {
    const t = (held.t = await createTestDatabase());
    // Sessions listed too, so the sessions panels have rows to draw.
    const fake = (held.fake = await startFakeAuth0({ scope: SCOPE_WITH_SESSIONS }));
    // Two syncs of the sandbox tenant dated around today: everything first seen, then a few revoked.
    const tenant = generateTenant({ users: 40, seed: 21, datesAround: Date.now() });
    for (const [userId, tokens] of tenant) fake.setUser(userId, tokens);
    held.created = [...tenant.values()].flat().length;
    await loadUsers(t.db, tenant.keys());
    await sync(t, fake);
    const live = (held.live = new Map(tenant));
    for (const [userId, tokens] of [...tenant].filter(([, tokens]) => tokens.length > 1).slice(0, 4)) {
      live.set(userId, tokens.slice(1));
      fake.setUser(userId, tokens.slice(1));
      held.revoked += 1;
    }
    // One token now used from another network (the location-changed view and its history).
    const [movedUser, movedTokens] = [...live].find(([, tokens]) => tokens.some((token) => token.device))!;
    const moved = movedTokens.map((token) =>
      token.device ? { ...token, device: { ...(token.device as object), last_ip: '203.0.113.7', last_asn: '64500' } } : token,
    );
    live.set(movedUser, moved);
    fake.setUser(movedUser, moved);
    await sync(t, fake);
    held.owner = new pg.Client({ connectionString: t.url });
    await held.owner.connect();
    const picker = dashboard.templating.list.find((v) => v.name === 'tenant')!;
    held.tenants = (await held.owner.query<{ tenant: string }>(picker.query!)).rows.map((row) => row.tenant);
  }, 90_000);

  afterAll(async () => {
    await held.owner?.end();
    await held.fake?.close();
    await held.t?.drop();
    // A role is the server's, not the database's: dropped once its database is gone.
    const admin = new pg.Client({ connectionString: ADMIN_URL });
    await admin.connect();
    await admin.query(`drop role if exists ${role}`).finally(() => admin.end());
  });

  const run = (client: pg.Client, rawSql: string) => client.query(fillMacros(rawSql, range, { tenant: held.tenants }));
  const panel = (title: string) => queried.find((p) => p.title === title)!;

  function withWarehouse(use: (w: ReturnType<typeof world>) => Promise<void>): Promise<void> {
    return use(world());
  }
  function world() {
    const { t, fake, owner, live, revoked, created } = held;
    if (!t || !fake || !owner || !live) throw new Error('the synced warehouse: take it inside a test');
    /** The single value of a stat panel. */
    const stat = async (title: string) => {
      const { rows, fields } = await run(owner, panel(title).targets![0]!.rawSql);
      return rows[0]?.[fields[0]!.name] as unknown;
    };
    const count = async (text: string) => Number((await owner.query(text)).rows[0].n);
    return { t, fake, owner, live, revoked, created, stat, count };
  }

  it('the sample data has something for every chart', () =>
    withWarehouse(async ({ revoked, created, count }) => {
      expect(created).toBeGreaterThan(50);
      expect(revoked).toBe(4);
      expect(await count('select count(*) as n from auth0.refresh_tokens_location_changed')).toBeGreaterThan(0);
      expect(await count('select count(*) as n from auth0.refresh_tokens_unused')).toBeGreaterThan(0);
      expect(await count("select count(*) as n from auth0.sync_runs where status = 'succeeded'")).toBe(2);
      expect(held.tenants).toHaveLength(1); // the sandbox tenant: All is it
    }));

  it('each query runs and returns the columns its panel draws', () =>
    withWarehouse(async ({ owner }) => {
      for (const p of queried) {
        for (const target of p.targets!) {
          const result = await run(owner, target.rawSql).catch((error: Error) => {
            throw new Error(`panel "${p.title}": ${error.message}`);
          });
          const names = result.fields.map((f) => f.name);
          const where = { panel: p.title, columns: names };
          if (target.format === 'time_series') {
            // Grafana's time series: a "time" column, an optional "metric" text column naming the series, numbers.
            const time = result.fields.find((f) => f.name === 'time');
            expect({ ...where, time: time && (TIME.has(time.dataTypeID) || isNumeric(time)) }).toEqual({ ...where, time: true });
            const values = result.fields.filter((f) => f.name !== 'time' && f.name !== 'metric');
            expect({ ...where, values: values.length > 0 && values.every(isNumeric) }).toEqual({ ...where, values: true });
            const metric = result.fields.find((f) => f.name === 'metric');
            if (metric) expect(TEXT.has(metric.dataTypeID)).toBe(true);
          } else if (p.type === 'stat') {
            // One number (or none yet, shown as "–").
            expect({ ...where, numeric: result.fields.length === 1 && isNumeric(result.fields[0]!) }).toEqual({ ...where, numeric: true });
            expect(result.rows.length).toBeLessThanOrEqual(1);
          } else if (p.type === 'barchart') {
            // Categories in options.xField, then numbers.
            const [x, ...values] = result.fields;
            expect({ ...where, x: x?.name, text: x && TEXT.has(x.dataTypeID), values: values.length > 0 && values.every(isNumeric) }).toEqual({
              ...where,
              x: p.options!.xField,
              text: true,
              values: true,
            });
            expect(result.rows.length).toBeGreaterThan(0);
          } else if (p.type === 'piechart') {
            // One slice per row: a name and the value reduceOptions.fields picks.
            const [name, value] = result.fields;
            expect({ ...where, name: name && TEXT.has(name.dataTypeID), value: value && isNumeric(value) }).toEqual({ ...where, name: true, value: true });
            expect(new RegExp(p.options!.reduceOptions!.fields!.slice(1, -1)).test(value!.name)).toBe(true);
            expect(result.rows.length).toBeGreaterThan(0);
          }
          // Units and formats set per column name must name a column the query returns.
          for (const override of p.fieldConfig?.overrides ?? []) {
            if (override.matcher.id === 'byName')
              expect({ ...where, override: names.includes(override.matcher.options) }).toEqual({ ...where, override: true });
          }
        }
      }
    }));

  it('the headline numbers match SQL counts on the base tables and the tenant', () =>
    withWarehouse(async ({ owner, live, revoked, created, stat, count }) => {
      const liveTokens = [...live.values()].flat();
      const active = `from auth0.refresh_tokens where deleted_at is null and (expires_at is null or expires_at > now()) and (idle_expires_at is null or idle_expires_at > now())`;
      expect(await count(`select count(*) as n ${active}`)).toBe(liveTokens.length);
      expect(Number(await stat('Live tokens'))).toBe(liveTokens.length);
      expect(Number(await stat('Users holding them'))).toBe([...live.values()].filter((tokens) => tokens.length > 0).length);
      expect(Number(await stat('Applications'))).toBe(new Set(liveTokens.map((token) => token.client_id)).size);
      expect(Number(await stat('Location changed'))).toBe(await count('select count(*) as n from auth0.refresh_tokens_location_changed'));
      const lastSuccess = await owner.query("select max(finished_at) as at from auth0.sync_runs where status = 'succeeded'");
      expect(Number(await stat('Last successful sync'))).toBe((lastSuccess.rows[0].at as Date).getTime());
      expect(Number(await stat('Freshness lag'))).toBeGreaterThanOrEqual(0);
      expect(Number(await stat('Freshness lag'))).toBeLessThan(120);
      expect(await stat('Log-follow lag')).toBeUndefined(); // no follow ran: an empty stat, not an error

      // Per application adds up to the live tokens; the history shows every first sighting and each revocation.
      const perClient = await run(owner, panel('Live tokens per application').targets![0]!.rawSql);
      expect(perClient.rows.reduce((sum, row) => sum + Number(row['live tokens']), 0)).toBe(liveTokens.length);
      const perDay = await run(owner, panel('Tokens created and deleted per day').targets![0]!.rawSql);
      expect(perDay.rows.reduce((sum, row) => sum + Number(row.created), 0)).toBe(created);
      expect(perDay.rows.reduce((sum, row) => sum + Number(row.deleted), 0)).toBe(revoked);
      const runs = await run(owner, panel('Runs per day by outcome').targets![0]!.rawSql);
      expect(runs.rows.reduce((sum, row) => sum + Number(row.succeeded), 0)).toBe(2);
      // The histograms count every live token once.
      for (const title of ['Age of live tokens', 'Time left before expiry', 'Rotating vs non-rotating', 'Tokens with no session']) {
        const { rows } = await run(owner, panel(title).targets![0]!.rawSql);
        expect({ title, total: rows.reduce((sum, row) => sum + Number(row.tokens), 0) }).toEqual({ title, total: liveTokens.length });
      }
    }));

  itPsql('grafana/reader-role.sql makes a role that can run every panel and write nothing', () =>
    withWarehouse(async ({ t, owner }) => {
      const password = 'reader-secret';
      const script = (env: NodeJS.ProcessEnv) =>
        promisify(execFile)(PSQL!, [t.url!, '-q', '-v', `reader_role=${role}`, '-f', path.join(ROOT, 'grafana', 'reader-role.sql')], { env });
      // Twice: the script is idempotent (compose runs it on every `up`).
      await script({ ...process.env, GRAFANA_DB_PASSWORD: password });
      await script({ ...process.env, GRAFANA_DB_PASSWORD: password });
      // Without a password it refuses, saying what to set.
      const refused = await script({ ...process.env, GRAFANA_DB_PASSWORD: undefined }).catch((error: { code: number; stderr: string }) => error);
      expect(refused).toMatchObject({ code: 3, stderr: expect.stringContaining('GRAFANA_DB_PASSWORD is not set') });

      const url = new URL(t.url!);
      url.username = role;
      url.password = password;
      const reader = new pg.Client({ connectionString: url.toString() });
      await reader.connect();
      try {
        for (const p of queried) {
          for (const target of p.targets!) {
            const [asReader, asOwner] = await Promise.all([run(reader, target.rawSql), run(owner, target.rawSql)]);
            expect({ panel: p.title, rows: asReader.rowCount }).toEqual({ panel: p.title, rows: asOwner.rowCount });
          }
        }
        // Read-only by its grants, not only by its default_transaction_read_only (which a session may turn off).
        await expect(reader.query('insert into auth0.users (user_id) values ($1)', ['auth0|intruder'])).rejects.toMatchObject({ code: '25006' });
        await reader.query('set default_transaction_read_only = off');
        await expect(reader.query('insert into auth0.users (user_id) values ($1)', ['auth0|intruder'])).rejects.toMatchObject({ code: '42501' });
        await expect(reader.query('delete from auth0.refresh_tokens')).rejects.toMatchObject({ code: '42501' });
        await expect(reader.query('create table auth0.x (a int)')).rejects.toMatchObject({ code: '42501' });
      } finally {
        await reader.end();
      }
      // Default privileges: a view a later migration creates (as the owner) is readable at once.
      await owner.query('create view auth0.grafana_later as select count(*) as n from auth0.refresh_tokens');
      const again = new pg.Client({ connectionString: url.toString() });
      await again.connect();
      try {
        expect((await again.query('select n from auth0.grafana_later')).rowCount).toBe(1);
      } finally {
        await again.end();
      }
    }),
  );
});

describeServer('the tenant picker against a warehouse of two tenants', () => {
  const range = { from: new Date(Date.now() - 90 * DAY), to: new Date(Date.now() + 60_000) };
  const held: { t?: TestDatabase; owner?: pg.Client } = {};
  beforeAll(async () => {
    const t = (held.t = await createTestDatabase());
    await seedTwoTenants(t);
    held.owner = new pg.Client({ connectionString: t.url });
    await held.owner.connect();
  });
  afterAll(async () => {
    await held.owner?.end();
    await held.t?.drop();
  });

  const panel = (title: string, type?: string) => queried.find((p) => p.title === title && (type === undefined || p.type === type))!;
  /** A panel's first query with the picker on `tenants`; its rows. */
  async function rowsOf(title: string, tenants: string[], type?: string) {
    return (await held.owner!.query(fillMacros(panel(title, type).targets![0]!.rawSql, range, { tenant: tenants }))).rows as Record<string, unknown>[];
  }
  const stat = async (title: string, tenants: string[]) => {
    const [row] = await rowsOf(title, tenants, 'stat');
    return row === undefined ? undefined : Number(Object.values(row)[0]);
  };
  const total = async (title: string, column: string, tenants: string[]) => (await rowsOf(title, tenants)).reduce((sum, row) => sum + Number(row[column]), 0);

  it('offers the tenants of the warehouse, and every panel runs with one of them or both', async () => {
    const variable = dashboard.templating.list.find((v) => v.name === 'tenant')!;
    const { rows } = await held.owner!.query(variable.query!);
    expect(rows.map((row: Record<string, unknown>) => Object.values(row)[0])).toEqual(['prod-eu', 'prod-us']);
    for (const tenants of [['prod-eu'], ['prod-us'], ['prod-eu', 'prod-us']]) {
      for (const p of queried) {
        for (const target of p.targets!) {
          await held.owner!.query(fillMacros(target.rawSql, range, { tenant: tenants })).catch((error: Error) => {
            throw new Error(`panel "${p.title}" with ${tenants.join(',')}: ${error.message}`);
          });
        }
      }
    }
  });

  it('counts only the tenants picked, and both add up to All', async () => {
    const both = ['prod-eu', 'prod-us'];
    const expected: [string, number, number, number][] = [
      // [stat, prod-eu, prod-us, both]
      ['Live tokens', 3, 2, 5],
      ['Users holding them', 2, 1, 3],
      ['Applications', 2, 1, 3],
      ['Expiring within 7 days', 1, 0, 1],
      ['Unused for 30 days', 0, 1, 1],
      ['Location changed', 1, 0, 1],
      ['Unexplained deletions (24 h)', 0, 1, 1],
      ['Last network differs from first', 1, 0, 1],
    ];
    for (const [title, eu, us, all] of expected) {
      expect({ title, counts: [await stat(title, ['prod-eu']), await stat(title, ['prod-us']), await stat(title, both)] }).toEqual({
        title,
        counts: [eu, us, all],
      });
    }
    // The log follower's lag: the worst of the tenants picked.
    expect([await stat('Log-follow lag', ['prod-eu']), await stat('Log-follow lag', both)]).toEqual([5, 90]);
    expect(await rowsOf('Live tokens per tenant', both)).toEqual([
      { tenant: 'prod-eu', 'live tokens': 3, users: 2 },
      { tenant: 'prod-us', 'live tokens': 2, users: 1 },
    ]);
    expect(await rowsOf('Live tokens per tenant', ['prod-us'])).toEqual([{ tenant: 'prod-us', 'live tokens': 2, users: 1 }]);
    expect(await total('Live tokens per application', 'live tokens', ['prod-us'])).toBe(2);
    expect(await total('Live tokens per application', 'live tokens', both)).toBe(5);
    // Same token IDs in both tenants: each token's audience counted once, in its own tenant.
    expect(await rowsOf('Live tokens per resource server (audience)', both)).toEqual([
      { audience: '(none)', 'live tokens': 2 },
      { audience: 'https://api.eu', 'live tokens': 2 },
      { audience: 'https://api.us', 'live tokens': 1 },
    ]);
    expect(await total('Tokens created and deleted per day', 'created', ['prod-us'])).toBe(3);
    expect(await total('Tokens created and deleted per day', 'created', both)).toBe(7);
    expect(await total('Runs per day by outcome', 'failed', ['prod-eu'])).toBe(0);
    expect(await total('Runs per day by outcome', 'failed', both)).toBe(1);
    for (const title of ['Age of live tokens', 'Rotating vs non-rotating', 'Tokens with no session']) {
      expect({ title, tokens: await total(title, 'tokens', ['prod-eu']) }).toEqual({ title, tokens: 3 });
    }
    expect((await rowsOf('Unused for 30 days', ['prod-us'], 'table')).map((row) => [row.tenant, row.token])).toEqual([['prod-us', 'rt_1']]);
    expect(await rowsOf('Unused for 30 days', ['prod-eu'], 'table')).toEqual([]);
  });
});
