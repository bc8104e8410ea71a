import { existsSync } from 'node:fs';
import { readdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { loadConfig, type Env } from '../src/core/config.js';
import { acquireDirLock } from '../src/warehouse/embedded/dir-lock.js';
import { DEFAULT_DEMO_DATA_DIR, demoDataDirOf } from '../src/warehouse/embedded/find-database.js';
import { FatalError } from '../src/core/errors.js';
import { toSafeText } from '../src/core/upstream-text.js';
import { processIo, type Io } from '../src/core/io.js';
import { EXIT, reportFailure } from '../src/cli/exit.js';
import { openDatabase } from '../src/warehouse/connection.js';
import { formatDuration } from '../src/core/duration.js';
import { createCommandLogger } from '../src/core/log.js';
import { migrateToLatest } from '../src/warehouse/migrate.js';
import { SCOPE_WITH_SESSIONS, startFakeAuth0 } from './auth0-server.js';
import { generateTenant, makeToken } from './tenant.js';
import { followLogs } from '../src/jobs/follow-logs.js';
import { runSyncJob } from '../src/jobs/sync.js';
import { buildReport } from '../src/report/build-report.js';
import { writeReportFile } from '../src/report/write-report.js';

const DEMO_USERS = 500;
/** A file the demo leaves in its directory: a database holding it is the demo's to replace. */
const DEMO_MARK = 'DEMO';

/**
 * Remove the previous demo's database from `dir`, under the directory lock (a `npm run db`
 * serving it, or a demo still running, keeps it: RunLockedError, exit 3). Only the demo's own
 * directory is removed (the default one, or one holding the demo's mark); any other that is not
 * empty (DEMO_DATA_DIR pointed at a warehouse by mistake) is refused, never touched. Returns
 * whether a previous demo's database was removed.
 */
async function clearDemoDatabase(dir: string): Promise<boolean> {
  if (!existsSync(dir)) return false;
  const isDemos = existsSync(path.join(dir, DEMO_MARK)) || path.resolve(dir) === path.resolve(DEFAULT_DEMO_DATA_DIR);
  if (!isDemos) {
    if ((await readdir(dir)).length === 0) return false;
    throw new FatalError(
      'demo_dir_taken',
      `DEMO_DATA_DIR ${toSafeText(path.resolve(dir), 300)} holds files the demo did not make, and the demo replaces its directory each time: point DEMO_DATA_DIR at a new directory.`,
    );
  }
  const release = acquireDirLock(dir, 'demo');
  try {
    await rm(dir, { recursive: true, force: true });
  } finally {
    release();
  }
  return true;
}

export async function runDemo(env: Env, io: Io): Promise<number> {
  const dataDir = demoDataDirOf(env.DEMO_DATA_DIR);
  // Each demo starts from a clean database: a previous demo's log checkpoint lies ahead of this
  // sandbox's log IDs (the follow would read nothing), and its change history would pile up.
  const previous = await clearDemoDatabase(dataDir);
  // Dates around today, so the reporting views have something to show.
  const tenant = generateTenant({ users: DEMO_USERS, manyTokensEvery: 100, seed: 42, datesAround: Date.now() });
  // Granted read:sessions, as a tenant set up for the job would be: sessions are synced beside tokens.
  const fake = await startFakeAuth0({ scope: SCOPE_WITH_SESSIONS });
  for (const [userId, tokens] of tenant) fake.setUser(userId, tokens);
  const config = loadConfig({
    LOG_LEVEL: env.LOG_LEVEL ?? 'warn',
    PGLITE_DATA_DIR: dataDir,
    AUTH0_DOMAIN: fake.url,
    AUTH0_TENANT_NAME: 'demo',
    AUTH0_CLIENT_ID: 'test-client',
    AUTH0_CLIENT_SECRET: 'test-secret', // the sandbox's own, not a secret
    // The second sync revokes and deletes on purpose, more than the default guard lets through.
    SYNC_MAX_DELETE_RATIO: '1',
  });
  io.stdout(`Sandbox Auth0 tenant at ${fake.url}: ${DEMO_USERS} users, ${[...tenant.values()].flat().length} refresh tokens.`);
  const database = await openDatabase(config, { command: 'demo', notice: () => {} }).catch(async (error: unknown) => {
    await fake.close();
    throw error;
  });
  try {
    await writeFile(path.join(dataDir, DEMO_MARK), 'made by npm run demo, which replaces this database each time it runs\n');
    io.stdout(`Warehouse: embedded PostgreSQL in ${config.dataDir}, new${previous ? " (the previous demo's database was replaced)" : ''}.`);
    const { db } = database;
    const { error } = await migrateToLatest(db);
    if (error) throw error;
    await db
      .insertInto('auth0.users')
      .values([...tenant.keys()].map((user_id) => ({ tenant: config.tenant, user_id })))
      .onConflict((oc) => oc.doNothing())
      .execute();

    const logger = createCommandLogger(config, io);
    const run = async (label: string) => {
      const started = Date.now();
      const result = await runSyncJob({ config, db, logger, trigger: 'manual', ownsDatabase: true });
      const c = result.counts;
      io.stdout(
        `${label}: run ${result.runId} ${result.status} in ${formatDuration(Date.now() - started)}: ${c.usersSynced} users synced, ` +
          `${c.usersNotFound} gone, ${c.usersFailed} failed; tokens ${c.tokensSeen} seen, ${c.tokensAdded} new, ${c.tokensChanged} changed, ${c.tokensDeleted} deleted.`,
      );
      return result.status;
    };
    const first = await run('First sync');

    // Real life between two runs: revocations, a user deleted, a token used from elsewhere.
    const users = [...tenant.keys()];
    // Spread over the tenant, as real changes are: the deletion guard measures the first users written.
    const revoking = users.filter((userId, i) => i % 20 === 0 && (fake.users.get(userId) ?? []).length > 0).slice(0, 25);
    for (const userId of revoking) fake.setUser(userId, fake.users.get(userId)!.slice(1));
    for (const userId of users.filter((_, i) => i % 20 === 10).slice(0, 3)) fake.deleteUser(userId);
    const moved = [...fake.users.values()].flat().find((t) => t.device);
    if (moved) moved.device = { ...(moved.device as object), last_ip: '203.0.113.7', last_asn: '64500' };
    const second = await run(`Second sync, after ${revoking.length} revocations, 3 deleted users and 1 token used from a new network`);

    // Fresh data (issue #10): the log follower syncs only the users new log entries name.
    const start = await followLogs({ config, db, logger, ownsDatabase: true });
    io.stdout(`Log follower: ${start.messages.join(' ')}`);
    const [revoker, newcomer] = [users[41]!, users[42]!];
    fake.setUser(revoker, (fake.users.get(revoker) ?? []).slice(1)); // logs a revocation (srrt)
    fake.setUser(newcomer, [...(fake.users.get(newcomer) ?? []), makeToken(newcomer, 999)]); // logs a login (s)
    const changedAt = Date.now();
    const followed = await followLogs({ config, db, logger, ownsDatabase: true });
    const fresh = followed.outcome === 'followed' && followed.runs.every((r) => r.status === 'succeeded');
    io.stdout(
      `A revocation and a new login in the tenant, then npm run sync -- --from-logs: picked up from the logs within ${formatDuration(Date.now() - changedAt)}, ` +
        `${followed.entriesRead} entries read, touching only ${followed.usersChanged} of ${DEMO_USERS} users (run ${followed.runs.map((r) => r.runId).join(', ')}).`,
    );

    io.stdout('');
    io.stdout('Live tokens per application (auth0.refresh_tokens_per_client):');
    const perClient = await db
      .selectFrom('auth0.refresh_tokens_per_client')
      .select(['client_id', 'active_tokens', 'users', 'rotating_share'])
      .orderBy('active_tokens', 'desc')
      .limit(5)
      .execute();
    for (const r of perClient)
      io.stdout(`  ${r.client_id}  ${r.active_tokens} tokens, ${r.users} users, ${Math.round(Number(r.rotating_share) * 100)}% rotating`);
    const countRows = async (
      view:
        | 'auth0.refresh_tokens_location_changed'
        | 'auth0.refresh_tokens_expiring_soon'
        | 'auth0.refresh_tokens_unused'
        | 'auth0.active_sessions'
        | 'auth0.refresh_tokens_outliving_session'
        | 'auth0.refresh_tokens_without_second_factor',
    ) =>
      (
        await db
          .selectFrom(view)
          .select((eb) => eb.fn.countAll<number>().as('n'))
          .executeTakeFirstOrThrow()
      ).n;
    io.stdout(`Tokens used from a new IP or network (refresh_tokens_location_changed): ${await countRows('auth0.refresh_tokens_location_changed')}`);
    io.stdout(`Tokens expiring within 7 days (refresh_tokens_expiring_soon): ${await countRows('auth0.refresh_tokens_expiring_soon')}`);
    io.stdout(`Tokens not used for 30 days (refresh_tokens_unused): ${await countRows('auth0.refresh_tokens_unused')}`);
    const history = await db
      .selectFrom('auth0.refresh_token_changes')
      .select((eb) => ['change', eb.fn.countAll<number>().as('n')])
      .groupBy('change')
      .orderBy('change')
      .execute();
    io.stdout(`Change history (auth0.refresh_token_changes): ${history.map((r) => `${r.n} ${r.change}`).join(', ')}`);
    const reasons = await db
      .selectFrom('auth0.refresh_token_changes')
      .select((eb) => ['reason', eb.fn.countAll<number>().as('n')])
      .where('change', '=', 'deleted')
      .groupBy('reason')
      .orderBy('reason')
      .execute();
    io.stdout(
      `Why tokens went (refresh_token_deletions): ${reasons.map((r) => `${r.n} ${r.reason ?? 'unrecorded'}`).join(', ')} ` +
        '(a full pass reads no logs, so what it finds gone is expired or unexplained; the log follower records why)',
    );
    io.stdout(
      `Sessions (active_sessions): ${await countRows('auth0.active_sessions')} live; live tokens outliving their session ` +
        `(refresh_tokens_outliving_session): ${await countRows('auth0.refresh_tokens_outliving_session')}; ` +
        `live tokens whose session saw no second factor (refresh_tokens_without_second_factor): ${await countRows('auth0.refresh_tokens_without_second_factor')}`,
    );
    // The pictures (issue #21): beside the demo's database, replaced with it by the next demo.
    const report = await writeReportFile(path.join(dataDir, 'report.html'), (await buildReport(db)).html);
    io.stdout(`Report (npm run report): ${report.url}`);
    io.stdout('');
    // Every command reads PGLITE_DATA_DIR (default .data/pglite): name the demo's directory in
    // each hint, or `npm run status` looks where no database is.
    io.stdout(
      `Query it yourself: PGLITE_DATA_DIR=${config.dataDir} npm run db, then the psql command it prints; ` +
        `PGLITE_DATA_DIR=${config.dataDir} npm run status; or point DATABASE_URL at a server and run npm run sync.`,
    );
    return first === 'succeeded' && second === 'succeeded' && fresh ? 0 : 2;
  } finally {
    await database.close();
    await fake.close();
  }
}

const HELP = `Usage: npm run demo

Serves a built-in sandbox Auth0 tenant (${DEMO_USERS} users) on 127.0.0.1, makes a new embedded
database in DEMO_DATA_DIR (default .data/demo; the previous demo's is replaced; never
DATABASE_URL), migrates it, syncs, changes the tenant, syncs again, follows the tenant logs,
prints a short summary and writes the report (npm run report) to report.html in that directory.
It is not part of the product: the image ships without it.

Environment: DEMO_DATA_DIR, LOG_LEVEL (default warn)
Exit codes: 0 every step succeeded, 2 a step did not, 1 fatal, 3 its database is in use, 64 usage error`;

/** `npm run demo [--help]`: the demo's exit code. */
export async function demoMain(argv: readonly string[], env: NodeJS.ProcessEnv, io: Io): Promise<number> {
  if (argv.length === 1 && (argv[0] === '--help' || argv[0] === '-h')) {
    io.stdout(HELP);
    return EXIT.ok;
  }
  if (argv.length > 0) {
    io.stderr(`error: npm run demo takes no arguments (got ${toSafeText(argv.join(' '), 200)}); see npm run demo -- --help`);
    return EXIT.usage;
  }
  try {
    return await runDemo(env, io);
  } catch (error) {
    return reportFailure(error, io);
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href) {
  demoMain(process.argv.slice(2), process.env, processIo).then((code) => {
    process.exitCode = code;
  });
}
