import { loadConfig, type Env } from './config.js';
import type { Io } from './io.js';
import { openDatabase } from './db.js';
import { formatDuration } from './duration.js';
import { createCommandLogger } from './log.js';
import { migrateToLatest } from './migrate.js';
import { startFakeAuth0 } from './sandbox/auth0-server.js';
import { generateTenant, makeToken } from './sandbox/tenant.js';
import { followLogs } from './sync/follow-logs.js';
import { runSyncJob } from './sync/job.js';

const DEMO_USERS = 500;

/**
 * `npm run demo`: the whole product on a fresh machine with nothing else installed. It serves
 * a built-in Auth0-compatible sandbox tenant (generated users and tokens) on 127.0.0.1, opens
 * the embedded database in `.data/demo` (never DATABASE_URL: the sandbox's made-up tokens must
 * not land in a real warehouse), migrates, syncs, changes the tenant the way real life does
 * (revocations, a deleted user, a token used from a new network), syncs again, follows the
 * tenant logs after a revocation and a login (only those users are synced), and prints a short
 * report from the reporting views and the change history.
 */
export async function runDemo(env: Env, io: Io): Promise<number> {
  // Dates around today, so the reporting views have something to show.
  const tenant = generateTenant({ users: DEMO_USERS, manyTokensEvery: 100, seed: 42, datesAround: Date.now() });
  const fake = await startFakeAuth0();
  for (const [userId, tokens] of tenant) fake.setUser(userId, tokens);
  const config = loadConfig({
    LOG_LEVEL: env.LOG_LEVEL ?? 'warn',
    PGLITE_DATA_DIR: env.DEMO_DATA_DIR || '.data/demo',
    AUTH0_DOMAIN: fake.url,
    AUTH0_CLIENT_ID: 'test-client',
    AUTH0_CLIENT_SECRET: 'test-secret', // the sandbox's own, not a secret
    // The second sync revokes and deletes on purpose, more than the default guard lets through.
    SYNC_MAX_DELETE_RATIO: '1',
  });
  io.stdout(`Sandbox Auth0 tenant at ${fake.url}: ${DEMO_USERS} users, ${[...tenant.values()].flat().length} refresh tokens.`);
  const database = await openDatabase(config, { command: 'demo', notice: () => {} });
  io.stdout(`Warehouse: embedded PostgreSQL in ${config.dataDir}.`);
  try {
    const { db } = database;
    const { error } = await migrateToLatest(db);
    if (error) throw error;
    await db.insertInto('auth0.users').values([...tenant.keys()].map((user_id) => ({ user_id }))).onConflict((oc) => oc.doNothing()).execute();

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
    for (const r of perClient) io.stdout(`  ${r.client_id}  ${r.active_tokens} tokens, ${r.users} users, ${Math.round(Number(r.rotating_share) * 100)}% rotating`);
    const countRows = async (view: 'auth0.refresh_tokens_location_changed' | 'auth0.refresh_tokens_expiring_soon' | 'auth0.refresh_tokens_unused') =>
      (await db.selectFrom(view).select((eb) => eb.fn.countAll<number>().as('n')).executeTakeFirstOrThrow()).n;
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
