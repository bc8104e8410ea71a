/**
 * Runs the fake Auth0 tenant as its own process (benchmark and demo sandbox):
 *
 *   node --import tsx sandbox/serve.ts [flags]     (`--help` lists them; README "Commands and exit codes")
 *
 * Prints one JSON line `{"url","clientId","users","earlyAccess"}` once listening; answers a `stats` line on
 * stdin with the stats as one JSON line (`reset` zeroes them); `change PERCENT` changes that share of the users (see changeUsers) and
 * answers `{"changedUsers"}`; closes and exits 0 on SIGTERM/SIGINT.
 * `--burst` defaults to `--rps`; without `--rps` the bucket is DEFAULT_RATE_LIMIT (10,000/s), so
 * every answer still carries `x-ratelimit-*` headers, as Auth0's do. `--no-early-access` switches off the Early Access
 * `GET /api/v2/refresh-tokens` (answered as an unknown route), leaving `GET /api/v2/users/{id}/refresh-tokens`.
 * `--export-users N` makes every users export hold N generated users (made lazily while the file
 * is served, so a million does not sit in memory) instead of the tenant's.
 * `--recent` dates every token around now (the default is 2023–2024, deterministic for the
 * benchmark), so the reporting views have rows. `--change-every S` changes `--change-percent`
 * (default 1) % of the users every S seconds, so a worker pointed at it has something to sync.
 * `--for-people` (`npm run sandbox`) prints, instead of the JSON line, the variables that point
 * the job at the tenant.
 * The `--logs-*` flags make `GET /api/v2/logs` misbehave (issue #18; see LogQuirks in logs.ts).
 * An `expire LOG_ID` line on stdin drops the entries before LOG_ID, as retention does, and
 * answers `{"oldest"}`.
 */
import { writeFile } from 'node:fs/promises';
import { createInterface } from 'node:readline';
import { Command, CommanderError, InvalidArgumentError, Option } from 'commander';
import { startFakeAuth0, type FakeAuth0 } from './auth0-server.js';
import { aroundNow, generateTenant, makeToken } from './tenant.js';
import type { TokenRemoval } from './logs.js';

// The benchmark reads the client id from the ready line; the secret is the server's default, 'test-secret'.
const CLIENT_ID = 'test-client';

/** Exit code of a usage error (sysexits' EX_USAGE), as the job's CLI uses. */
const EXIT_USAGE = 64;

/** A number flag's parser: refuses what is not a number in [min, max] with one sentence. */
const number =
  (min: number, max = Infinity) =>
  (raw: string) => {
    const value = Number(raw);
    if (raw.trim() === '' || !Number.isFinite(value) || value < min || value > max) {
      const from = min === Number.MIN_VALUE ? 'a number above 0' : `a number from ${min}`;
      throw new InvalidArgumentError(max === Infinity ? `It takes ${from} or more.` : `It takes ${from} to ${max}.`);
    }
    return value;
  };

/**
 * The flags, their help and their checks in one place (commander, as the job's CLI): `--help`
 * prints them, a typo gets a suggestion, and a usage error exits 64.
 */
function createProgram(): Command {
  return new Command('sandbox')
    .description("Serve a fake Auth0 tenant (the Management API's token, refresh-token, logs and users-export routes) on 127.0.0.1 until SIGTERM or Ctrl-C.")
    .option('--port <n>', 'port to listen on (0 picks a free one)', number(0, 65535), 0)
    .option('--users <n>', 'users in the tenant', number(0), 1000)
    .option('--max-tokens <n>', 'most tokens of one user', number(0), 5)
    .option('--many-every <n>', 'every n-th user holds hundreds of tokens (0: none)', number(0), 0)
    .option(
      '--rps <n>',
      'rate limit: requests per second (429 with x-ratelimit-reset above it; default 10000, x-ratelimit-* on every answer)',
      number(Number.MIN_VALUE),
    )
    .option('--burst <n>', 'rate limit: the burst allowed (default --rps)', number(1))
    .option('--latency <ms>', 'delay before every answer', number(0), 0)
    .option('--fault-rate <f>', 'share of requests answered 500 or cut (0 to 1)', number(0, 1), 0)
    .option('--seed <n>', 'seed of the generated tenant and the faults', number(0), 1)
    .option('--users-out <path>', 'write the user IDs there, one a line')
    .option('--no-early-access', 'answer the Early Access GET /api/v2/refresh-tokens as an unknown route')
    .option('--sessions', "grant read:sessions: the job then lists each user's sessions too (SYNC_SESSIONS=auto)")
    .option('--export-users <n>', 'every users export holds n generated users (made while served)', number(0))
    .option('--recent', 'date every token around now (default 2023-2024, fixed for the benchmark)')
    .option('--change-every <seconds>', 'change --change-percent of the users every so often (0: never)', number(0), 0)
    .option('--change-percent <p>', 'share of the users each change touches', number(Number.MIN_VALUE, 100), 1)
    .option('--for-people', 'print the variables that point the job at the tenant instead of the JSON line')
    .option('--logs-inclusive-from', 'logs: start each page with the `from` entry itself')
    .option('--logs-stuck-next', 'logs: point the Link header always at the `from` just called')
    .addOption(
      new Option('--logs-expired <answer>', 'logs: answer a `from` older than retention with a 400, [] or the oldest entry held').choices([
        'refuse',
        'empty',
        'oldest',
      ]),
    )
    .option('--logs-duplicates', 'logs: send every entry twice')
    .option('--logs-out-of-order', 'logs: send each page newest first')
    .option('--logs-hostile-ids', 'logs: add an entry whose log_id holds an ANSI escape, a NUL or 600 characters to each page')
    .option('--logs-hostile-next', 'logs: put such an id in the Link header')
    .addHelpText(
      'after',
      `
Without --for-people it prints one JSON line {"url","clientId","users","earlyAccess"} once listening, and
answers lines on stdin: stats (the request counts as JSON), reset, change PERCENT ({"changedUsers"}),
expire LOG_ID (drops the entries before it, as retention does; {"oldest"}).
Through npm, put the flags after --: npm run sandbox -- --port 0.
Exit codes: 0 stopped by SIGTERM or SIGINT, 1 cannot serve (the port is in use), ${EXIT_USAGE} usage error.`,
    )
    .showSuggestionAfterError(true)
    .allowExcessArguments(false)
    .exitOverride();
}

interface SandboxFlags {
  port: number;
  users: number;
  maxTokens: number;
  manyEvery: number;
  rps?: number;
  burst?: number;
  latency: number;
  faultRate: number;
  seed: number;
  usersOut?: string;
  earlyAccess: boolean;
  sessions?: boolean;
  exportUsers?: number;
  recent?: boolean;
  changeEvery: number;
  changePercent: number;
  forPeople?: boolean;
  logsInclusiveFrom?: boolean;
  logsStuckNext?: boolean;
  logsExpired?: 'refuse' | 'empty' | 'oldest';
  logsDuplicates?: boolean;
  logsOutOfOrder?: boolean;
  logsHostileIds?: boolean;
  logsHostileNext?: boolean;
}

async function main(argv: string[]): Promise<number | undefined> {
  const program = createProgram();
  try {
    program.parse(argv, { from: 'user' });
  } catch (error) {
    if (error instanceof CommanderError) return error.exitCode === 0 ? 0 : EXIT_USAGE;
    throw error;
  }
  const values = program.opts<SandboxFlags>();
  const users = Math.floor(values.users);
  const seed = Math.floor(values.seed);
  const rps = values.rps;
  const burst = values.burst ?? rps ?? 1;

  const tenant = generateTenant({
    users,
    seed,
    maxTokensPerUser: Math.floor(values.maxTokens),
    manyTokensEvery: Math.floor(values.manyEvery),
    datesAround: values.recent ? Date.now() : undefined,
  });
  const fake = await startFakeAuth0({
    clientId: CLIENT_ID,
    port: Math.floor(values.port),
    rateLimit: rps === undefined ? undefined : { perSecond: rps, burst },
    latencyMs: values.latency,
    faultRate: values.faultRate,
    seed,
    earlyAccess: values.earlyAccess,
    scope: values.sessions ? 'read:refresh_tokens read:users read:logs read:sessions' : undefined,
    usersExport: values.exportUsers === undefined ? undefined : { generatedUsers: Math.floor(values.exportUsers) },
    logQuirks: {
      inclusiveFrom: values.logsInclusiveFrom,
      stuckNext: values.logsStuckNext,
      expired: values.logsExpired,
      duplicates: values.logsDuplicates,
      outOfOrder: values.logsOutOfOrder,
      hostileIds: values.logsHostileIds,
      hostileNext: values.logsHostileNext,
    },
  });
  for (const [userId, tokens] of tenant) fake.users.set(userId, tokens);

  const usersOut = values.usersOut;
  if (usersOut) await writeFile(usersOut, [...tenant.keys()].map((id) => `${id}\n`).join(''));

  let round = 0;
  const changeEvery = values.changeEvery;
  const changePercent = values.changePercent;
  const changer =
    changeEvery > 0 ? setInterval(() => changeUsers(fake, changePercent, (round += 1), values.recent ? Date.now() : undefined), changeEvery * 1000) : undefined;

  let closing = false;
  const shutdown = (): void => {
    if (closing) return;
    closing = true;
    clearInterval(changer);
    fake.close().then(
      () => process.exit(0),
      (err: unknown) => {
        console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
        process.exit(1);
      },
    );
  };
  process.once('SIGTERM', shutdown);
  process.once('SIGINT', shutdown);

  const stdin = createInterface({ input: process.stdin });
  stdin.on('line', (line) => {
    if (line.trim() === 'stats') write(JSON.stringify(fake.stats));
    if (line.trim() === 'reset') fake.resetStats();
    const expire = /^expire (\S+)$/.exec(line.trim());
    if (expire) {
      fake.logs.expireBefore(expire[1]!);
      write(JSON.stringify({ oldest: fake.logs.entries[0]?.log_id ?? null }));
    }
    const change = /^change ([\d.]+)$/.exec(line.trim());
    if (change) write(JSON.stringify({ changedUsers: changeUsers(fake, Number(change[1]), (round += 1), values.recent ? Date.now() : undefined) }));
  });

  if (!values.forPeople) {
    write(JSON.stringify({ url: fake.url, clientId: CLIENT_ID, users, earlyAccess: values.earlyAccess }));
    return undefined;
  }
  const tokens = [...tenant.values()].reduce((sum, list) => sum + list.length, 0);
  write(
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
      '  npm run sync -- --from-logs   # the first follow only sets its checkpoint at the newest log entry; later ones sync what changed since',
      '  METRICS_PORT=9464 SYNC_SCHEDULE="* * * * *" npm run worker   # then curl -s 127.0.0.1:9464/metrics',
      '',
      'Ctrl-C stops the tenant.',
    ].join('\n'),
  );
  return undefined;
}

/**
 * One line on stdout, unless stdout is closed (`| head -1` exited): the write's EPIPE would
 * otherwise crash the tenant with a stack trace. It keeps serving; SIGTERM or Ctrl-C stops it.
 */
let stdoutClosed = false;
process.stdout.on('error', () => (stdoutClosed = true));
process.stderr.on('error', () => {});
function write(line: string): void {
  if (!stdoutClosed) process.stdout.write(`${line}\n`);
}

/**
 * Why the sandbox removes a token, in turn (issue #22): each logs what Auth0 logs for it, so a
 * follow records every reason but `expired` (whose absence of an entry a full pass shows).
 */
const REMOVAL_CAUSES: readonly TokenRemoval[] = [
  { by: 'user' },
  { by: 'api', clientId: 'sandbox-admin-m2m', clientName: 'Sandbox admin' },
  { by: 'reuse' },
  { by: 'logout' },
  { by: 'session_api', clientId: 'sandbox-admin-m2m', clientName: 'Sandbox admin' },
  { by: 'cleanup' },
  { by: 'expiry' },
];

/**
 * Change `percent` % of the users (every n-th, so the same ones each round) as a day of use
 * would: the first token is exchanged again from a new IP, the last of several is removed (for
 * one of REMOVAL_CAUSES in turn, logged as Auth0 logs it), and a new token is issued. Returns
 * how many users changed.
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
    const removed = next.length >= 2 ? next.pop() : undefined;
    if (removed) fake.removeTokens(userId, [String(removed.id)], REMOVAL_CAUSES[(i + round) % REMOVAL_CAUSES.length]!);
    const token = makeToken(userId, 100_000 + round);
    next.push(now === undefined ? token : { ...aroundNow(token, round, now), created_at: new Date(now).toISOString() });
    fake.setUser(userId, next);
    changed += 1;
  }
  return changed;
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== undefined) process.exitCode = code;
  },
  (err: unknown) => {
    console.error(`error: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  },
);
