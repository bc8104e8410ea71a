/**
 * Freshness with the log follower (issue #10), time compressed:
 *
 *   npm run bench:freshness -- [--users 100000] [--changes 100] [--interval-ms 5000]
 *     [--intervals 12] [--noise 4] [--concurrency 32] [--burst-share 0.1] [--burst-interval 6]
 *
 * A sandbox tenant of `--users` users (in this process) and a fresh database on the PostgreSQL
 * server (BENCH_DATABASE_URL). The follower starts at the newest entry; then, spread evenly over
 * each interval, `--changes` users change (exchanges, logins, revocations, admin deletes through
 * the Management API), each with `--noise` unrelated entries (failed logins, machine-to-machine
 * exchanges, reads by admins). At each interval's end `followLogs` runs, as a scheduler would run
 * `npm run sync -- --from-logs`. A change counts as in the warehouse once its user's
 * `last_success_at` is after it; its delay is measured to the end of the follow that did it.
 * Prints one JSON line and a short report: delay percentiles in intervals, and requests per
 * changed user and per 100 entries next to what a rolling full pass would need for the same
 * freshness. Creates and drops its own rt_bench_* database.
 *
 * A revocation burst (issue #18): in interval `--burst-interval` (0: none), `--burst-share` of
 * the users revoke every token at once ("log out everywhere" after an incident). The follow
 * must apply it without stopping at the deletion guard; its delays are reported apart too.
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import pg from 'pg';
import { loadConfig } from '../src/core/config.js';
import { createDb } from '../src/warehouse/connection.js';
import { createLogger } from '../src/core/log.js';
import { migrateToLatest } from '../src/warehouse/migrate.js';
import { startFakeAuth0 } from '../sandbox/auth0-server.js';
import { generateTenant, makeToken } from '../sandbox/tenant.js';
import { followLogs } from '../src/jobs/follow-logs.js';

const ADMIN_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres:postgres@127.0.0.1:5432/postgres';
const { values } = parseArgs({
  options: {
    users: { type: 'string', default: '100000' },
    changes: { type: 'string', default: '100' },
    'interval-ms': { type: 'string', default: '5000' },
    intervals: { type: 'string', default: '12' },
    noise: { type: 'string', default: '4' },
    concurrency: { type: 'string', default: '32' },
    'burst-share': { type: 'string', default: '0.1' },
    'burst-interval': { type: 'string', default: '6' },
  },
});
const burstShare = Number(values['burst-share']);
const burstInterval = Number(values['burst-interval']);
const users = Number(values.users);
const changesPerInterval = Number(values.changes);
const intervalMs = Number(values['interval-ms']);
const intervals = Number(values.intervals);
const noise = Number(values.noise);

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, Math.max(0, ms)));
let seed = 7;
const random = () => {
  seed = (seed * 1103515245 + 12345) % 2 ** 31;
  return seed / 2 ** 31;
};
const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? NaN;

const name = `rt_bench_fresh_${randomBytes(4).toString('hex')}`;
const admin = new pg.Client({ connectionString: ADMIN_URL });
await admin.connect();
await admin.query(`create database ${name}`);
await admin.end();
const url = new URL(ADMIN_URL);
url.pathname = `/${name}`;
const db = createDb(url.toString(), { poolSize: 5 });
const fake = await startFakeAuth0();
try {
  const { error } = await migrateToLatest(db);
  if (error) throw error;
  const tenant = generateTenant({ users, seed: 21 });
  const ids = [...tenant.keys()];
  for (const [id, tokens] of tenant) fake.users.set(id, tokens); // loading logs nothing
  for (let i = 0; i < ids.length; i += 50_000) {
    await db
      .insertInto('auth0.users')
      .values(ids.slice(i, i + 50_000).map((user_id) => ({ tenant: 'bench', user_id })))
      .execute();
  }
  const config = loadConfig({
    DATABASE_URL: url.toString(),
    AUTH0_DOMAIN: fake.url,
    AUTH0_TENANT_NAME: 'bench',
    AUTH0_CLIENT_ID: 'test-client',
    AUTH0_CLIENT_SECRET: 'test-secret',
    SYNC_CONCURRENCY: values.concurrency,
  });
  const logger = createLogger({ level: 'warn', write: (line) => process.stderr.write(line + '\n') });
  const follow = async () => {
    const r = await followLogs({ config, db, logger });
    if (process.env.DEBUG_FRESH) console.error(JSON.stringify({ ...r, runs: r.runs.map((x) => [x.status, x.errorCode, x.counts.usersSynced]) }));
    return r;
  };
  // A real tenant always has history: the follower starts at its newest entry.
  fake.logs.append({ type: 'seccft', client_id: 'm2m', user_id: 'm2m@clients' });
  await follow();

  // Changes, spread evenly over each interval.
  const pending: { userId: string; at: number }[] = [];
  let made = 0;
  let serial = 0;
  const change = () => {
    const userId = ids[Math.floor(random() * ids.length)]!;
    const tokens = fake.users.get(userId) ?? [];
    const kind = random();
    const at = Date.now();
    // Mostly exchanges and logins, as in a real tenant's logs; some revocations and admin deletes.
    if (kind < 0.55 && tokens.length > 0) {
      const [first, ...rest] = tokens;
      fake.setUser(userId, [{ ...first, last_exchanged_at: new Date(at).toISOString() }, ...rest]); // an exchange (sertft)
    } else if (kind < 0.85 || tokens.length === 0) {
      fake.setUser(userId, [...tokens, makeToken(userId, 10_000 + serial++)]); // a login (s)
    } else if (kind < 0.95) {
      fake.setUser(userId, tokens.slice(1)); // a revocation (srrt)
    } else {
      fake.users.set(userId, []); // an admin removes them all (sapi)
      fake.logs.append({
        type: 'sapi',
        user_id: 'auth0|admin',
        details: { request: { method: 'delete', path: `/api/v2/users/${encodeURIComponent(userId)}/refresh-tokens` } },
      });
    }
    for (let i = 0; i < noise; i++) {
      const type = ['f', 'seccft', 'sapi', 'fp'][i % 4]!;
      fake.logs.append(
        type === 'seccft'
          ? { type, client_id: 'm2m', user_id: 'm2m@clients' }
          : type === 'sapi'
            ? { type, user_id: 'auth0|admin', details: { request: { method: 'get', path: `/api/v2/users/${encodeURIComponent(userId)}` } } }
            : { type, user_id: userId },
      );
    }
    pending.push({ userId, at });
    made += 1;
  };
  /** Users of the burst, and when it happened. */
  const burst: { userIds: Set<string>; tokenIds: string[]; at: number } = { userIds: new Set(), tokenIds: [], at: 0 };
  const revokeAll = () => {
    burst.at = Date.now();
    for (const userId of ids) {
      if (burst.userIds.size >= Math.round(burstShare * users)) break;
      const tokens = fake.users.get(userId) ?? [];
      if (random() >= burstShare * 1.5 || tokens.length === 0) continue;
      burst.tokenIds.push(...tokens.map((token) => String(token.id)));
      fake.setUser(userId, []); // one srrt per token
      burst.userIds.add(userId);
      pending.push({ userId, at: burst.at });
    }
  };
  fake.resetStats();
  const start = Date.now();
  const generator = setInterval(change, intervalMs / changesPerInterval);
  const burstTimer = burstInterval > 0 ? setTimeout(revokeAll, (burstInterval - 0.5) * intervalMs) : undefined;

  const delays: number[] = [];
  const burstDelays: number[] = [];
  let entries = 0;
  let usersChanged = 0;
  let followSeconds = 0;
  const stops: string[] = [];
  for (let k = 1; k <= intervals + 1; k++) {
    if (k === intervals + 1) clearInterval(generator); // one more follow takes the last interval's changes
    await sleep(start + k * intervalMs - Date.now());
    const began = Date.now();
    const result = await follow();
    const done = Date.now();
    followSeconds += (done - began) / 1000;
    entries += result.entriesRead;
    usersChanged += result.usersChanged;
    if (result.outcome === 'stopped') stops.push(result.messages.join(' '));
    const waiting = [...new Set(pending.map((p) => p.userId))];
    if (waiting.length === 0) continue;
    const rows = await db.selectFrom('auth0.user_sync_state').select(['user_id', 'last_success_at']).where('user_id', 'in', waiting).execute();
    const synced = new Map(rows.map((r) => [r.user_id, r.last_success_at?.getTime() ?? 0]));
    for (let i = pending.length - 1; i >= 0; i--) {
      const p = pending[i]!;
      if ((synced.get(p.userId) ?? 0) >= p.at) {
        delays.push(done - p.at);
        if (p.at === burst.at && burst.userIds.has(p.userId)) burstDelays.push(done - p.at);
        pending.splice(i, 1);
      }
    }
  }
  clearTimeout(burstTimer);
  const stats = fake.stats;
  delays.sort((a, b) => a - b);
  burstDelays.sort((a, b) => a - b);
  const burstLeft = await db
    .selectFrom('auth0.refresh_tokens')
    .select((eb) => eb.fn.countAll<number>().as('n'))
    .where((eb) => eb('id', '=', eb.fn.any(eb.val(burst.tokenIds))))
    .where('deleted_at', 'is', null)
    .executeTakeFirstOrThrow();
  const requests = stats.listRequests + stats.logRequests;
  const budget = 2.2 * usersChanged + entries / 100;
  const followsRun = intervals + 1;
  // A rolling full pass with the same p95 must list every user at least once every two intervals.
  const rollingPerInterval = (2 * users) / 2;
  const report = {
    users,
    changesPerInterval,
    intervalMs,
    changes: made,
    notSeen: pending.length,
    entries,
    usersChanged,
    delayP50Intervals: percentile(delays, 50) / intervalMs,
    delayP95Intervals: percentile(delays, 95) / intervalMs,
    delayMaxIntervals: (delays.at(-1) ?? NaN) / intervalMs,
    burstUsers: burst.userIds.size,
    burstDelayP95Intervals: percentile(burstDelays, 95) / intervalMs,
    burstTokensStillLive: Number(burstLeft.n),
    followsStopped: stops.length,
    listRequests: stats.listRequests,
    logRequests: stats.logRequests,
    tokenRequests: stats.tokenRequests,
    requestsPerChangedUser: stats.listRequests / usersChanged,
    logRequestsPer100Entries: (stats.logRequests / entries) * 100,
    requestBudget: Math.round(budget),
    followerRequestsPerInterval: requests / followsRun,
    rollingFullPassRequestsPerInterval: rollingPerInterval,
    meanFollowSeconds: followSeconds / followsRun,
  };
  console.log(JSON.stringify(report));
  const f = (n: number, d = 2) => n.toLocaleString('en-US', { maximumFractionDigits: d });
  console.log(
    [
      `freshness: ${f(users, 0)} users, ${changesPerInterval} changes per ${intervalMs / 1000} s interval, ${noise} unrelated entries per change`,
      `  delay change → warehouse: p50 ${f(report.delayP50Intervals)}, p95 ${f(report.delayP95Intervals)}, max ${f(report.delayMaxIntervals)} intervals (target p95 ≤ 2); ${report.notSeen} of ${made + burst.userIds.size} changes not seen`,
      `  revocation burst: ${f(burst.userIds.size, 0)} users (${f(100 * burstShare, 0)}%) revoked every token in interval ${burstInterval}: p95 ${f(report.burstDelayP95Intervals)} intervals, ${report.burstTokensStillLive} of the ${f(burst.tokenIds.length, 0)} revoked tokens still live in the warehouse, ${stops.length} follows stopped${stops.length > 0 ? ` (${stops[0]})` : ''}`,
      `  requests: ${f(stats.listRequests, 0)} listings for ${usersChanged} changed users (${f(report.requestsPerChangedUser)} each) + ${stats.logRequests} log pages for ${entries} entries (${f(report.logRequestsPer100Entries)} per 100) = ${f(requests, 0)}; budget 2.2 per user + 1 per 100 entries = ${f(budget, 0)}${requests <= budget ? ' (within)' : ' (OVER)'}; plus ${stats.tokenRequests} token requests (one per follow and run: each starts its own client)`,
      `  per interval: the follower ${f(report.followerRequestsPerInterval, 0)} requests; a rolling full pass with the same p95 (every user every 2 intervals, 2 requests each) ${f(rollingPerInterval, 0)} (${f(rollingPerInterval / report.followerRequestsPerInterval, 0)}×)`,
    ].join('\n'),
  );
} finally {
  await fake.close();
  await db.destroy();
  const c = new pg.Client({ connectionString: ADMIN_URL });
  await c.connect();
  await c.query(`drop database if exists ${name} with (force)`);
  await c.end();
}
