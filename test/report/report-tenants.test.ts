/**
 * The report across tenants (issue #23): a warehouse holding two tenants, written row by row, so
 * every number can be checked against a SQL count of one tenant's base rows. The same token and
 * user IDs appear in both tenants: a join that forgot `tenant` would count them twice.
 */
import { describe, expect, it } from '@jest/globals';
import { sql } from 'kysely';
import { buildReport } from '../../src/report/build-report.js';
import { readReportData } from '../../src/report/queries.js';
import type { TestDatabase } from '../helpers/db.js';
import { sharedDatabase } from '../helpers/fixtures.js';
import { seedTwoTenants } from './two-tenants.js';

const DAY = 86_400_000;

const { withDatabase } = sharedDatabase({ seed: seedTwoTenants });

/** One number, counted in SQL. */
const count = async (t: TestDatabase, text: string, tenant: string) =>
  Number((await sql<{ n: number }>`select (${sql.raw(text)})::int as n from (select ${tenant}::text as tenant) p`.execute(t.db)).rows[0]!.n);

describe('the report across tenants', () => {
  it('gives each tenant its own headline, equal to SQL counts of its rows, and totals that add up', () =>
    withDatabase(async (t) => {
      const data = await readReportData(t.db);
      expect(data.tenants).toBeUndefined();
      expect(data.perTenant.map((r) => r.tenant)).toEqual(['prod-eu', 'prod-us']);
      for (const row of data.perTenant) {
        const live = `from auth0.refresh_tokens r where r.tenant = p.tenant and r.deleted_at is null and (r.expires_at is null or r.expires_at > now())`;
        expect({ tenant: row.tenant, live: row.liveTokens, users: row.users, applications: row.applications, runs: row.runs }).toEqual({
          tenant: row.tenant,
          live: await count(t, `select count(*) ${live}`, row.tenant),
          users: await count(t, `select count(distinct user_id) ${live}`, row.tenant),
          applications: await count(t, `select count(distinct client_id) ${live}`, row.tenant),
          runs: await count(t, `select count(*) from auth0.sync_runs s where s.tenant = p.tenant`, row.tenant),
        });
      }
      const [eu, us] = data.perTenant;
      expect(eu).toMatchObject({ liveTokens: 3, users: 2, applications: 2, expiringSoon: 1, unused: 0, locationChanged: 1, unexplained24h: 0, runs: 1 });
      expect(us).toMatchObject({ liveTokens: 2, users: 1, applications: 1, expiringSoon: 0, unused: 1, locationChanged: 0, unexplained24h: 1, runs: 2 });
      expect(eu!.freshnessSeconds).toBeGreaterThan(DAY / 1000 - 60);
      expect(us!.freshnessSeconds).toBeGreaterThan((3 * DAY) / 1000 - 60);

      // The totals are the tenants' sums; the stalest tenant's freshness; the latest success.
      expect(data.headline).toMatchObject({
        liveTokens: 5,
        users: 3,
        applications: 3,
        expiringSoon: 1,
        unused: 1,
        locationChanged: 1,
        unexplained24h: 1,
        runs: 3,
      });
      expect(data.headline.freshnessSeconds).toBe(us!.freshnessSeconds);
      expect(data.headline.lastSuccessAt).toEqual(eu!.lastSuccessAt);
      // Same token IDs in both tenants: each audience and network counts its own tenant's tokens once.
      expect(data.perAudience.top).toEqual([
        { name: 'https://api.eu', tokens: 2 },
        { name: 'https://api.us', tokens: 1 },
      ]);
      expect(data.headline.asnChanged).toBe(1);
      expect(data.perClient.top.reduce((sum, c) => sum + c.tokens, 0)).toBe(5);
      expect(data.logFollow.map((f) => [f.tenant, f.lagSeconds])).toEqual([
        ['prod-eu', 5],
        ['prod-us', 90],
      ]);
      expect(data.runsPerDay.reduce((sum, d) => sum + d.succeeded + d.failed, 0)).toBe(3);
      expect(data.changesPerDay.reduce((sum, d) => sum + d.created, 0)).toBe(7);
    }));

  it('narrows every number to the tenants asked for', () =>
    withDatabase(async (t) => {
      const all = await readReportData(t.db);
      const us = await readReportData(t.db, { tenants: ['prod-us'] });
      expect(us.tenants).toEqual(['prod-us']);
      // The same row as in the report of all tenants (freshness moves with the clock: apart).
      const without = ({ freshnessSeconds: _, ...rest }: (typeof all.perTenant)[number]) => rest;
      expect(us.perTenant.map(without)).toEqual(all.perTenant.filter((r) => r.tenant === 'prod-us').map(without));
      expect(us.headline).toMatchObject({
        liveTokens: 2,
        users: 1,
        applications: 1,
        expiringSoon: 0,
        unused: 1,
        locationChanged: 0,
        unexplained24h: 1,
        runs: 2,
      });
      expect(us.headline.asnChanged).toBe(0);
      expect(us.perAudience.top).toEqual([{ name: 'https://api.us', tokens: 1 }]);
      expect(us.perClient.top).toEqual([{ name: 'app-us', tokens: 2 }]);
      expect(us.logFollow.map((f) => f.tenant)).toEqual(['prod-us']);
      expect(us.unused.map((r) => [r.tenant, r.id])).toEqual([['prod-us', 'rt_1']]);
      expect(us.expiringSoon).toEqual([]);
      expect(us.locationChanged).toEqual([]);
      expect(us.runsPerDay.reduce((sum, d) => sum + d.succeeded + d.failed, 0)).toBe(2);
      expect(us.changesPerDay.reduce((sum, d) => sum + d.created, 0)).toBe(3);
      expect(us.changesPerDay.reduce((sum, d) => sum + d.deleted, 0)).toBe(1);
      expect(us.deletionsPerDay.flatMap((d) => Object.entries(d.reasons))).toEqual([['unexplained', 1]]);
      // A tenant the warehouse does not hold: nothing, not everything.
      expect((await readReportData(t.db, { tenants: ['staging'] })).headline.liveTokens).toBe(0);
    }));

  it('builds a page with a row per tenant and the per-tenant chart, or one tenant only', () =>
    withDatabase(async (t) => {
      const report = await buildReport(t.db);
      expect(report.liveTokens).toBe(5);
      expect(report.html).toContain('<table id="tenants">');
      expect(report.html).toMatch(/<figure id="per-tenant"[^>]*>.*?<svg/s);
      expect(report.html).toContain('Every tenant (2): <code>prod-eu</code>, <code>prod-us</code>.');
      const one = await buildReport(t.db, { tenants: ['prod-eu'] });
      expect(one.liveTokens).toBe(3);
      expect(one.charts).toBe(report.charts - 1); // the per-tenant chart needs two tenants
      expect(one.html).toContain('Tenants <code>prod-eu</code> only.');
      expect(one.html).not.toContain('id="tenants"');
    }));
});
