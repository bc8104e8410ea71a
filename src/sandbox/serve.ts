/**
 * Runs the fake Auth0 tenant as its own process (benchmark and demo sandbox):
 *
 *   node --import tsx src/sandbox/serve.ts [--port N] [--users N] [--max-tokens N] [--many-every N]
 *     [--rps N [--burst N]] [--latency MS] [--fault-rate F] [--seed N] [--users-out PATH] [--no-early-access]
 *     [--export-users N] [--recent] [--change-every SECONDS [--change-percent P]] [--for-people]
 *     [--logs-inclusive-from] [--logs-stuck-next] [--logs-expired refuse|empty|oldest]
 *     [--logs-duplicates] [--logs-out-of-order] [--logs-hostile-ids] [--logs-hostile-next]
 *
 * Prints one JSON line `{"url","clientId","users","earlyAccess"}` once listening; answers a `stats` line on
 * stdin with the stats as one JSON line (`reset` zeroes them); `change PERCENT` changes that share of the users (see changeUsers) and
 * answers `{"changedUsers"}`; closes and exits 0 on SIGTERM/SIGINT.
 * `--burst` defaults to `--rps`. `--no-early-access` switches off the Early Access
 * `GET /api/v2/refresh-tokens` (answered as an unknown route), leaving `GET /api/v2/users/{id}/refresh-tokens`.
 * `--export-users N` makes every users export hold N generated users (made lazily while the file
 * is served, so a million does not sit in memory) instead of the tenant's.
 * `--recent` dates every token around now (the default is 2023–2024, deterministic for the
 * benchmark), so the reporting views have rows. `--change-every S` changes `--change-percent`
 * (default 1) % of the users every S seconds, so a worker pointed at it has something to sync.
 * `--for-people` (`npm run sandbox`) prints, instead of the JSON line, the variables that point
 * the job at the tenant.
 * The `--logs-*` flags make `GET /api/v2/logs` misbehave (issue #18; see LogQuirks in logs.ts):
 * `--logs-inclusive-from` starts each page with the `from` entry itself; `--logs-stuck-next` points
 * the `Link` always at the `from` just called; `--logs-expired` answers a `from` older than
 * retention with a 400 (`refuse`, the default), `[]` (`empty`) or the oldest entry held
 * (`oldest`); `--logs-duplicates` sends every entry twice; `--logs-out-of-order` sends a page
 * newest first; `--logs-hostile-ids` adds an entry whose `log_id` holds an ANSI escape, a NUL or
 * 600 characters to each page; `--logs-hostile-next` puts such an id in the `Link`.
 * An `expire LOG_ID` line on stdin drops the entries before LOG_ID, as retention does, and
 * answers `{"oldest"}`.
 */
import { writeFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { parseArgs } from 'node:util';
import { startFakeAuth0, type FakeAuth0 } from './auth0-server.js';
import { aroundNow, generateTenant, makeToken } from './tenant.js';

function numberOption(values: Record<string, unknown>, name: string, fallback: number, min: number, max = Infinity): number {
  const raw = values[name];
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min || value > max) {
    throw new RangeError(`--${name} must be a number between ${min} and ${max}, got '${String(raw)}'`);
  }
  return value;
}

// The benchmark reads the client id from the ready line; the secret is the server's default, 'test-secret'.
const CLIENT_ID = 'test-client';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      port: { type: 'string' },
      users: { type: 'string' },
      'max-tokens': { type: 'string' },
      'many-every': { type: 'string' },
      rps: { type: 'string' },
      burst: { type: 'string' },
      latency: { type: 'string' },
      'fault-rate': { type: 'string' },
      seed: { type: 'string' },
      'users-out': { type: 'string' },
      'no-early-access': { type: 'boolean' },
      'export-users': { type: 'string' },
      recent: { type: 'boolean' },
      'change-every': { type: 'string' },
      'change-percent': { type: 'string' },
      'for-people': { type: 'boolean' },
      'logs-inclusive-from': { type: 'boolean' },
      'logs-stuck-next': { type: 'boolean' },
      'logs-expired': { type: 'string' },
      'logs-duplicates': { type: 'boolean' },
      'logs-out-of-order': { type: 'boolean' },
      'logs-hostile-ids': { type: 'boolean' },
      'logs-hostile-next': { type: 'boolean' },
    },
    strict: true,
  });

  const users = Math.floor(numberOption(values, 'users', 1000, 0));
  const seed = Math.floor(numberOption(values, 'seed', 1, 0));
  const rps = values.rps === undefined ? undefined : numberOption(values, 'rps', 0, Number.MIN_VALUE);
  const burst = numberOption(values, 'burst', rps ?? 1, 1);

  const expired = values['logs-expired'];
  if (expired !== undefined && expired !== 'refuse' && expired !== 'empty' && expired !== 'oldest') {
    throw new RangeError(`--logs-expired must be refuse, empty or oldest, got '${expired}'`);
  }
  const tenant = generateTenant({
    users,
    seed,
    maxTokensPerUser: Math.floor(numberOption(values, 'max-tokens', 5, 0)),
    manyTokensEvery: Math.floor(numberOption(values, 'many-every', 0, 0)),
    datesAround: values.recent ? Date.now() : undefined,
  });
  const fake = await startFakeAuth0({
    clientId: CLIENT_ID,
    port: Math.floor(numberOption(values, 'port', 0, 0, 65535)),
    rateLimit: rps === undefined ? undefined : { perSecond: rps, burst },
    latencyMs: numberOption(values, 'latency', 0, 0),
    faultRate: numberOption(values, 'fault-rate', 0, 0, 1),
    seed,
    earlyAccess: !values['no-early-access'],
    usersExport: values['export-users'] === undefined ? undefined : { generatedUsers: Math.floor(numberOption(values, 'export-users', 0, 0)) },
    logQuirks: {
      inclusiveFrom: values['logs-inclusive-from'],
      stuckNext: values['logs-stuck-next'],
      expired,
      duplicates: values['logs-duplicates'],
      outOfOrder: values['logs-out-of-order'],
      hostileIds: values['logs-hostile-ids'],
      hostileNext: values['logs-hostile-next'],
    },
  });
  for (const [userId, tokens] of tenant) fake.users.set(userId, tokens);

  const usersOut = values['users-out'];
  if (usersOut) await writeFile(usersOut, [...tenant.keys()].map((id) => `${id}\n`).join(''));

  let round = 0;
  const changeEvery = numberOption(values, 'change-every', 0, 0);
  const changePercent = numberOption(values, 'change-percent', 1, Number.MIN_VALUE, 100);
  const changer = changeEvery > 0 ? setInterval(() => changeUsers(fake, changePercent, (round += 1), values.recent ? Date.now() : undefined), changeEvery * 1000) : undefined;

  let closing = false;
  const shutdown = (): void => {
    if (closing) return;
    closing = true;
    clearInterval(changer);
    fake.close().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error(err);
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);

  const stdin = createInterface({ input: process.stdin });
  stdin.on('line', (line) => {
    if (line.trim() === 'stats') process.stdout.write(`${JSON.stringify(fake.stats)}\n`);
    if (line.trim() === 'reset') fake.resetStats();
    const expire = /^expire (\S+)$/.exec(line.trim());
    if (expire) {
      fake.logs.expireBefore(expire[1]!);
      process.stdout.write(`${JSON.stringify({ oldest: fake.logs.entries[0]?.log_id ?? null })}\n`);
    }
    const change = /^change ([\d.]+)$/.exec(line.trim());
    if (change) process.stdout.write(`${JSON.stringify({ changedUsers: changeUsers(fake, Number(change[1]), (round += 1), values.recent ? Date.now() : undefined) })}\n`);
  });

  if (!values['for-people']) {
    process.stdout.write(`${JSON.stringify({ url: fake.url, clientId: CLIENT_ID, users, earlyAccess: !values['no-early-access'] })}\n`);
    return;
  }
  const tokens = [...tenant.values()].reduce((sum, list) => sum + list.length, 0);
  process.stdout.write(
    [
      `Sandbox Auth0 tenant on ${fake.url}: ${users} users, ${tokens} refresh tokens${values.recent ? ', dated around today' : ''}` +
        (changer ? `; ${changePercent}% of the users change every ${changeEvery} s.` : '.'),
      '',
      'Point the job at it (in another terminal, or in .env); its own embedded database keeps these made-up tokens out of yours:',
      '',
      `  export AUTH0_DOMAIN=${fake.url}`,
      `  export AUTH0_CLIENT_ID=${CLIENT_ID}`,
      `  export AUTH0_CLIENT_SECRET=test-secret   # the sandbox's own, not a secret`,
      '  export PGLITE_DATA_DIR=.data/sandbox',
      '',
      '  npm run migrate && npm run import-users && npm run sync',
      '  METRICS_PORT=9464 SYNC_SCHEDULE="* * * * *" npm run worker   # then curl -s 127.0.0.1:9464/metrics',
      '',
      'Ctrl-C stops the tenant.',
      '',
    ].join('\n'),
  );
}

/**
 * Change `percent` % of the users (every n-th, so the same ones each round) as a day of use
 * would: the first token is exchanged again from a new IP, the last of several is revoked, and
 * a new token is issued. Returns how many users changed.
 */
function changeUsers(fake: FakeAuth0, percent: number, round: number, now?: number): number {
  const every = Math.max(1, Math.round(100 / percent));
  let changed = 0;
  let i = 0;
  for (const [userId, tokens] of [...fake.users]) {
    if (i++ % every !== 0) continue;
    const next = tokens.map((token, n) => {
      if (n !== 0) return token;
      const device = token.device as Record<string, unknown> | undefined;
      return {
        ...token,
        last_exchanged_at: new Date(now ?? Date.UTC(2026, 10, 1) + round * 3_600_000).toISOString(),
        ...(device ? { device: { ...device, last_ip: `198.51.100.${round % 250}` } } : {}),
      };
    });
    if (next.length >= 2) next.pop();
    const token = makeToken(userId, 100_000 + round);
    next.push(now === undefined ? token : { ...aroundNow(token, round, now), created_at: new Date(now).toISOString() });
    fake.setUser(userId, next);
    changed += 1;
  }
  return changed;
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
