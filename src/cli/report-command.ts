/**
 * `report [--out path] [--tenant NAME]`: build the report from the warehouse and write it to one file. Loaded on
 * its own by main.ts (not through commands.ts), so the report loads neither the sync nor the
 * worker; ECharts is loaded once the data is being read (src/report/render-svg.ts).
 */
import { loadDatabaseConfig, type Env } from '../core/config.js';
import type { Io } from '../core/io.js';
import { plural } from '../core/wording.js';
import { assertMigrated } from '../warehouse/migrate.js';
import { buildReport } from '../report/build-report.js';
import { writeReportFile } from '../report/write-report.js';
import { EXIT } from './exit.js';
import { DEFAULT_REPORT_PATH } from './report-args.js';
import { checkConfigured, toTenantFlags } from './tenant-args.js';
import { withDatabase, withDefaults, type Deps } from './with-database.js';

/** The report command's exit code: 0 written; a failure throws (main reports it, exit 1 or 3). */
export async function reportCommand(flags: { out?: string; tenant?: string[] }, env: Env, io: Io, deps: Partial<Deps>): Promise<number> {
  const config = loadDatabaseConfig(env);
  const tenants = toTenantFlags(flags.tenant);
  if (tenants) checkConfigured(tenants, config.tenantNames);
  const out = flags.out ?? DEFAULT_REPORT_PATH;
  return withDatabase(config, 'report', io, withDefaults(deps), { existing: true, env }, async ({ db }) => {
    await assertMigrated(db); // before migrate the views are missing: say what to run, not a raw SQL error
    const built = await buildReport(db, { tenants });
    const written = await writeReportFile(out, built.html);
    io.stdout(
      `Report written to ${written.path} (${Math.ceil(written.bytes / 1024)} KB, ${plural(built.charts, 'chart')}, ${plural(built.liveTokens, 'live token')}) ` +
        `in ${(built.buildMs / 1000).toFixed(1)} s. Open ${written.url} in a browser.`,
    );
    return EXIT.ok;
  });
}
