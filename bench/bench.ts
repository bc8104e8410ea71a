/**
 * `npm run bench`: a full sync against the local Auth0-compatible server (its own process) into
 * a fresh database on the PostgreSQL server, for each workload, and a table of figures.
 *
 *   npm run bench -- [--only throughput,latency,ramp,ratelimit,memory,quiet,import] [--users N] [--latency-users N]
 *     [--ramp-users N] [--rate-users N] [--memory-small N] [--memory-large N] [--memory-stop N]
 *     [--concurrency N] [--quiet-users N] [--quiet-passes N] [--quiet-change PERCENT] [--import-sizes 1000,1000000]
 *     [--sessions-users N]   (`--only sessions`: requests per user with SYNC_SESSIONS on vs off)
 *     [--tenant-users N]     (`--only tenants`: three tenants at 16 requests/s each, one and three worker replicas)
 *
 * Needs PostgreSQL (BENCH_DATABASE_URL, default postgres://postgres:postgres@127.0.0.1:5432/postgres);
 * creates and drops its own databases named rt_bench_*. The quiet workload's WAL and
 * buffers-written figures are the whole server's: run it on a server nothing else writes to.
 */
import { execFile, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { parseArgs, promisify } from 'node:util';
import pg from 'pg';

const ADMIN_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres:postgres@127.0.0.1:5432/postgres';
const { values: opts } = parseArgs({
  options: {
    only: { type: 'string', default: 'startup,throughput,latency,ramp,ratelimit,memory,quiet,import,sessions,tenants' },
    users: { type: 'string', default: '100000' },
    'latency-users': { type: 'string', default: '2000' },
    'ramp-users': { type: 'string', default: '1500' },
    'rate-users': { type: 'string', default: '1000' },
    'memory-small': { type: 'string', default: '10000' },
    'memory-large': { type: 'string', default: '1000000' },
    'memory-stop': { type: 'string', default: '5000' },
    concurrency: { type: 'string', default: '32' },
    'quiet-users': { type: 'string', default: '100000' },
    'quiet-passes': { type: 'string', default: '10' },
    'quiet-change': { type: 'string', default: '1' },
    'import-sizes': { type: 'string', default: '1000,1000000' },
    'sessions-users': { type: 'string', default: '5000' },
    'tenant-users': { type: 'string', default: '600' },
  },
});
const only = new Set(opts.only.split(','));
const concurrency = opts.concurrency;
const tmp = await mkdtemp(path.join(os.tmpdir(), 'rt-bench-'));

interface Row {
  workload: string;
  mode: string;
  seconds: number;
  users: number;
  tokens: number;
  requests?: number;
  refused?: number;
  rssMb: number;
  note?: string;
}
const rows: Row[] = [];
const notes: string[] = [];

/**
 * Run a node script in a child process; resolve with its stdout lines (rejects on exit ≠ 0
 * and ≠ 2). The job runs compiled (`dist/`, as `npm run sync` does); bench scripts through tsx.
 */
function runNode(args: string[], env: Record<string, string | undefined> = {}): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const nodeArgs = args.some((a) => a.startsWith('dist/')) ? args : ['--import', 'tsx', ...args];
    const child = spawn(process.execPath, nodeArgs, { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString()));
    child.stderr.on('data', (c: Buffer) => (err += c.toString()));
    child.on('close', (code) => (code === 0 || code === 2 ? resolve(out.trim().split('\n')) : reject(new Error(`${args.join(' ')} exited ${code}: ${err}`))));
  });
}

interface Server {
  url: string;
  usersFile: string;
  stats(): Promise<{ listRequests: number; rateLimited: number; requests: number }>;
  reset(): void;
  /** Change `percent` % of the tenant's users (serve.ts `change`); resolves with how many. */
  change(percent: number): Promise<number>;
  stop(): Promise<void>;
}

async function startServer(args: string[]): Promise<Server> {
  const usersFile = path.join(tmp, `users-${randomBytes(3).toString('hex')}.txt`);
  const child = spawn(process.execPath, ['--import', 'tsx', 'sandbox/serve.ts', ...args, '--users-out', usersFile], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = createInterface({ input: child.stdout });
  const waiting: ((line: string) => void)[] = [];
  lines.on('line', (line) => waiting.shift()?.(line));
  const next = () => new Promise<string>((resolve) => waiting.push(resolve));
  const ready = JSON.parse(await next()) as { url: string };
  return {
    url: ready.url,
    usersFile,
    async stats() {
      const answer = next();
      child.stdin.write('stats\n');
      return JSON.parse(await answer);
    },
    reset: () => child.stdin.write('reset\n'),
    async change(percent) {
      const answer = next();
      child.stdin.write(`change ${percent}\n`);
      return (JSON.parse(await answer) as { changedUsers: number }).changedUsers;
    },
    stop: () =>
      new Promise((resolve) => {
        child.on('close', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}

/** The tenant every single-tenant workload syncs as (AUTH0_TENANT_NAME), its users' tenant in auth0.users. */
const BENCH_TENANT = 'bench';

/** A fresh, migrated database with `userIds` in auth0.users, as BENCH_TENANT's. */
async function freshDatabase(userIds: string[]): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `rt_bench_${randomBytes(4).toString('hex')}`;
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query(`create database ${name}`);
  // Start each run from a clean checkpoint, so one workload's WAL does not slow the next.
  await admin.query('checkpoint');
  await admin.end();
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  await runNode(['dist/src/cli/main.js', 'migrate'], { DATABASE_URL: url.toString() });
  const client = new pg.Client({ connectionString: url.toString() });
  await client.connect();
  for (let i = 0; i < userIds.length; i += 50_000) {
    await client.query('insert into auth0.users (tenant, user_id) select $1, unnest($2::text[])', [BENCH_TENANT, userIds.slice(i, i + 50_000)]);
  }
  await client.query('analyze');
  await client.end();
  return {
    url: url.toString(),
    async drop() {
      const c = new pg.Client({ connectionString: ADMIN_URL });
      await c.connect();
      await c.query(`drop database if exists ${name} with (force)`);
      await c.end();
    },
  };
}

const readIds = async (file: string) => (await readFile(file, 'utf8')).split('\n').filter(Boolean);

/** The node flags `npm run sync` runs the job with (a 4 MB young generation), read from package.json so the bench runs what users run. */
const SYNC_NODE_FLAGS = (
  /exec node (.*?)dist\/src\/cli\/main\.js sync/.exec(
    (JSON.parse(await readFile(path.join(import.meta.dirname, '..', 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts.sync!,
  )?.[1] ?? ''
)
  .split(' ')
  .filter(Boolean);

/** `npm run sync` as a user runs it (minus npm), parsed from its `sync finished` line. */
async function sync(server: Server, databaseUrl: string, env: Record<string, string> = {}, args: string[] = []) {
  const lines = await runNode([...SYNC_NODE_FLAGS, 'dist/src/cli/main.js', 'sync', ...args], {
    DATABASE_URL: databaseUrl,
    AUTH0_DOMAIN: server.url,
    AUTH0_CLIENT_ID: 'test-client',
    AUTH0_CLIENT_SECRET: 'test-secret',
    AUTH0_TENANT_NAME: BENCH_TENANT,
    SYNC_CONCURRENCY: concurrency,
    ...env,
  });
  const finished = lines.map((l) => (l.startsWith('{') ? (JSON.parse(l) as Record<string, number | string>) : {})).find((l) => l.msg === 'sync finished');
  if (!finished) throw new Error(`no summary line:\n${lines.slice(-5).join('\n')}`);
  return {
    seconds: Number(finished.seconds),
    users: Number(finished.usersSynced) + Number(finished.usersNotFound),
    tokens: Number(finished.tokensSeen),
    requests: Number(finished.requests),
    rssMb: Number(finished.peakRssMb),
  };
}

const fmt = (n: number | undefined, digits = 0) =>
  n === undefined || Number.isNaN(n) ? '' : n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

async function throughput() {
  const users = opts.users;
  const server = await startServer(['--users', users, '--many-every', '1000', '--seed', '11']);
  const ids = await readIds(server.usersFile);
  try {
    const fetchDb = await freshDatabase(ids);
    server.reset();
    const fetchOnly = await sync(server, fetchDb.url, { LOG_LEVEL: 'info' }, ['--dry-run']);
    rows.push({ workload: '1 throughput', mode: 'fetch only (--dry-run)', ...fetchOnly, refused: (await server.stats()).rateLimited });
    await fetchDb.drop();

    const writeDb = await freshDatabase(ids);
    const [line] = await runNode(['bench/write-only.ts', '--database-url', writeDb.url, '--users', users, '--seed', '11', '--many-every', '1000']);
    const writeOnly = JSON.parse(line!) as { seconds: number; users: number; tokens: number; peakRssMb: number };
    rows.push({ workload: '1 throughput', mode: 'write only (no HTTP)', ...writeOnly, rssMb: writeOnly.peakRssMb });
    await writeDb.drop();

    const fullDb = await freshDatabase(ids);
    server.reset();
    const full = await sync(server, fullDb.url);
    const overlap = (fetchOnly.seconds + writeOnly.seconds) / full.seconds;
    rows.push({
      workload: '1 throughput',
      mode: `full sync, concurrency ${concurrency}`,
      ...full,
      refused: (await server.stats()).rateLimited,
      note: `overlap ${fmt(overlap, 2)}`,
    });
    notes.push(
      `1 throughput: ${fmt(full.users / full.seconds)} users/s end to end (target ≥ 1,500), peak RSS ${full.rssMb} MB (target < 200), overlap ${fmt(overlap, 2)} (target ≥ 1.0)`,
    );
    await fullDb.drop();
  } finally {
    await server.stop();
  }
}

async function latency() {
  const server = await startServer(['--users', opts['latency-users'], '--latency', '10', '--seed', '12']);
  const ids = await readIds(server.usersFile);
  try {
    const naiveDb = await freshDatabase(ids);
    const [line] = await runNode(['bench/naive-sync.ts', '--database-url', naiveDb.url, '--auth0', server.url]);
    const naive = JSON.parse(line!) as { seconds: number; users: number; tokens: number; requests: number; peakRssMb: number };
    rows.push({ workload: '2 latency 10 ms', mode: 'naive script', ...naive, rssMb: naive.peakRssMb });
    await naiveDb.drop();

    const db = await freshDatabase(ids);
    const full = await sync(server, db.url);
    const ratio = naive.seconds / full.seconds;
    rows.push({ workload: '2 latency 10 ms', mode: `full sync, concurrency ${concurrency}`, ...full, note: `${fmt(ratio, 1)}× naive` });
    notes.push(`2 latency: ${fmt(ratio, 1)}× the naive script at SYNC_CONCURRENCY=${concurrency} (target ≥ 10×)`);
    await db.drop();
  } finally {
    await server.stop();
  }
}

/**
 * Issue #8: a tenant whose first answer reports a nearly full bucket of 1,000 (refilled at
 * 1,000/s), 10 ms latency. The limiter must reach the tenant's pace within about a second
 * instead of ramping up from 10 req/s.
 */
async function ramp() {
  const server = await startServer(['--users', opts['ramp-users'], '--latency', '10', '--rps', '1000', '--burst', '1000', '--seed', '15']);
  const ids = await readIds(server.usersFile);
  try {
    const naiveDb = await freshDatabase(ids);
    const [line] = await runNode(['bench/naive-sync.ts', '--database-url', naiveDb.url, '--auth0', server.url]);
    const naive = JSON.parse(line!) as { seconds: number; users: number; tokens: number; requests: number; peakRssMb: number };
    rows.push({ workload: '2b latency 10 ms, bucket 1,000', mode: 'naive script', ...naive, rssMb: naive.peakRssMb });
    await naiveDb.drop();

    const db = await freshDatabase(ids);
    server.reset();
    const full = await sync(server, db.url);
    const refused = (await server.stats()).rateLimited;
    const ratio = naive.seconds / full.seconds;
    rows.push({ workload: '2b latency 10 ms, bucket 1,000', mode: `full sync, concurrency ${concurrency}`, ...full, refused, note: `${fmt(ratio, 1)}× naive` });
    notes.push(
      `2b ramp: ${fmt(ratio, 1)}× the naive script on a 1,000-request bucket at SYNC_CONCURRENCY=${concurrency} (target ≥ 10×), ${fmt(refused)} requests refused`,
    );
    await db.drop();
  } finally {
    await server.stop();
  }
}

async function rateLimit() {
  const server = await startServer(['--users', opts['rate-users'], '--rps', '40', '--burst', '10', '--seed', '13']);
  const ids = await readIds(server.usersFile);
  try {
    const db = await freshDatabase(ids);
    server.reset();
    const full = await sync(server, db.url, { SYNC_CONCURRENCY: '8' });
    const stats = await server.stats();
    const accepted = stats.listRequests - stats.rateLimited;
    const achieved = accepted / full.seconds / 40;
    const refused = stats.rateLimited / stats.listRequests;
    rows.push({
      workload: '3 rate 40/s burst 10',
      mode: 'full sync, concurrency 8',
      ...full,
      refused: stats.rateLimited,
      note: `${fmt(achieved * 100, 1)}% of allowed`,
    });
    notes.push(`3 rate limit: ${fmt(achieved * 100, 1)}% of the allowed rate (target ≥ 95%), ${fmt(refused * 100, 2)}% of requests refused (target < 2%)`);
    await db.drop();
  } finally {
    await server.stop();
  }
}

async function memory() {
  const stop = opts['memory-stop'];
  const server = await startServer(['--users', stop, '--seed', '14']);
  try {
    const rss: number[] = [];
    for (const size of [Number(opts['memory-small']), Number(opts['memory-large'])]) {
      // The tenant's users sort first; the rest of the table are IDs the run never reaches.
      const ids = [...(await readIds(server.usersFile))];
      for (let i = ids.length; i < size; i++) ids.push(`auth0|zz${String(i).padStart(9, '0')}`);
      const db = await freshDatabase(ids);
      const run = await sync(server, db.url, {}, ['--max-users', stop]);
      rss.push(run.rssMb);
      rows.push({ workload: `4 memory, ${fmt(size)} IDs`, mode: `stopped after ${fmt(Number(stop))} users`, ...run });
      await db.drop();
    }
    notes.push(
      `4 memory: peak RSS ${rss[0]} MB at ${fmt(Number(opts['memory-small']))} IDs, ${rss[1]} MB at ${fmt(Number(opts['memory-large']))} (${fmt(((rss[1]! - rss[0]!) / rss[0]!) * 100, 1)}%; target within 20%)`,
    );
  } finally {
    await server.stop();
  }
}

const QUIET_TABLES = ['refresh_tokens', 'refresh_token_devices', 'refresh_token_resource_servers', 'user_sync_state', 'refresh_token_changes'] as const;
type QuietTable = (typeof QUIET_TABLES)[number];
interface TableFigures {
  ins: number;
  upd: number;
  hot: number;
  del: number;
  dead: number;
  bytes: number;
}
interface DbFigures {
  tables: Record<QuietTable, TableFigures>;
  databaseBytes: number;
  walLsn: string;
  /** Buffers written by checkpoints, the background writer and backends (8 kB each): server-wide. */
  buffersWritten: number;
}
interface QuietPass {
  pass: string;
  seconds: number;
  users: number;
  tokens: number;
  added: number;
  changed: number;
  deleted: number;
  delta: Record<QuietTable, Omit<TableFigures, 'dead' | 'bytes'>>;
  after: DbFigures;
  walBytes: number;
  writtenBytes: number;
}
const quietPasses: QuietPass[] = [];

/** Row counters and sizes of the warehouse tables, the WAL position and buffers written so far. */
async function dbFigures(databaseUrl: string): Promise<DbFigures> {
  // A new connection each time: a session caches the statistics it read once per transaction.
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ relname: QuietTable } & Record<keyof TableFigures, string>>(`
      select relname, n_tup_ins as ins, n_tup_upd as upd, n_tup_hot_upd as hot, n_tup_del as del,
             n_dead_tup as dead, pg_total_relation_size(relid) as bytes
      from pg_stat_user_tables where schemaname = 'auth0'`);
    const tables = Object.fromEntries(
      rows.map((r) => [r.relname, { ins: +r.ins, upd: +r.upd, hot: +r.hot, del: +r.del, dead: +r.dead, bytes: +r.bytes }]),
    ) as Record<QuietTable, TableFigures>;
    const {
      rows: [server],
    } = await client.query<{ lsn: string; db: string; written: string }>(`
      select pg_current_wal_lsn()::text as lsn, pg_database_size(current_database()) as db,
             buffers_checkpoint + buffers_clean + buffers_backend as written from pg_stat_bgwriter`);
    return { tables, databaseBytes: +server!.db, walLsn: server!.lsn, buffersWritten: +server!.written };
  } finally {
    await client.end();
  }
}

async function walBetween(databaseUrl: string, from: string, to: string): Promise<number> {
  const client = new pg.Client({ connectionString: databaseUrl });
  await client.connect();
  try {
    const { rows } = await client.query<{ bytes: string }>('select pg_wal_lsn_diff($2::pg_lsn, $1::pg_lsn) as bytes', [from, to]);
    return Number(rows[0]!.bytes);
  } finally {
    await client.end();
  }
}

async function checkpoint(): Promise<void> {
  const admin = new pg.Client({ connectionString: ADMIN_URL });
  await admin.connect();
  await admin.query('checkpoint');
  await admin.end();
}

/**
 * Issue #14: a full pass, a pass with nothing changed, more such passes, then one with a share
 * of the users changed. Each pass starts after a checkpoint and ends with one, so the buffers it
 * dirtied are counted as written, and its first change to each page pays a full-page image in
 * the WAL, as passes hours apart would.
 */
async function quietWrites() {
  const users = opts['quiet-users'];
  const extraPasses = Number(opts['quiet-passes']) - 1;
  const percent = Number(opts['quiet-change']);
  const server = await startServer(['--users', users, '--many-every', '1000', '--seed', '11']);
  const ids = await readIds(server.usersFile);
  const db = await freshDatabase(ids);
  try {
    const pass = async (name: string) => {
      await checkpoint();
      const before = await dbFigures(db.url);
      const run = await sync(server, db.url);
      // Let autovacuum and the statistics collector see the backends' last counters.
      await new Promise((resolve) => setTimeout(resolve, 1500));
      const walEnd = (await dbFigures(db.url)).walLsn;
      await checkpoint();
      const after = await dbFigures(db.url);
      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      const {
        rows: [counts],
      } = await client.query<{ added: number; changed: number; deleted: number }>(
        'select tokens_added as added, tokens_changed as changed, tokens_deleted as deleted from auth0.sync_runs order by id desc limit 1',
      );
      await client.end();
      const delta = Object.fromEntries(
        QUIET_TABLES.map((t) => {
          const [a, b] = [after.tables[t], before.tables[t]];
          return [t, { ins: a.ins - b.ins, upd: a.upd - b.upd, hot: a.hot - b.hot, del: a.del - b.del }];
        }),
      ) as QuietPass['delta'];
      const result: QuietPass = {
        pass: name,
        seconds: run.seconds,
        users: run.users,
        tokens: run.tokens,
        ...counts!,
        delta,
        after,
        walBytes: await walBetween(db.url, before.walLsn, walEnd),
        writtenBytes: (after.buffersWritten - before.buffersWritten) * 8192,
      };
      quietPasses.push(result);
      // One line per pass as it ends, so a long run's figures survive an interruption.
      process.stderr.write(
        `${JSON.stringify({ pass: name, seconds: run.seconds, walBytes: result.walBytes, writtenBytes: result.writtenBytes, ...counts, delta })}\n`,
      );
      return result;
    };
    const first = await pass('1 first pass');
    const second = await pass('2 nothing changed');
    for (let i = 0; i < extraPasses; i++) await pass(`${i + 3} nothing changed`);
    const tenth = quietPasses.at(-1)!;
    const changedUsers = await server.change(percent);
    await pass(`${extraPasses + 3} ${changedUsers.toLocaleString('en-US')} users (${percent}%) changed`);

    const updated = (['refresh_tokens', 'refresh_token_devices', 'refresh_token_resource_servers'] as const).map((t) => second.delta[t].upd);
    const size = (p: QuietPass) => p.after.tables.refresh_tokens.bytes;
    notes.push(
      `5 quiet writes: the no-change pass updated ${updated.join(' / ')} rows of refresh_tokens / devices / resource servers (target 0); ` +
        `its WAL ${fmt((second.walBytes / first.walBytes) * 100, 1)}% of the first pass's (target ≤ 15%); ` +
        `refresh_tokens ${mb(size(tenth))} MB after ${extraPasses + 1} no-change passes vs ${mb(size(second))} MB after one ` +
        `(${fmt(((size(tenth) - size(second)) / size(second)) * 100, 1)}%, target within 5%); ` +
        `no-change pass ${fmt(second.users / second.seconds)} users/s vs first ${fmt(first.users / first.seconds)} (target ≥)`,
    );
  } finally {
    await db.drop();
    await server.stop();
  }
}

const mb = (bytes: number) => fmt(bytes / 2 ** 20, 1);

/** `npm run import-users` into an empty warehouse, the export holding `size` generated users. */
async function importUsers() {
  const rss: number[] = [];
  const sizes = opts['import-sizes'].split(',').map(Number);
  for (const size of sizes) {
    const server = await startServer(['--users', '0', '--export-users', String(size)]);
    try {
      const db = await freshDatabase([]);
      // As `npm run import-users` runs it: a 4 MB young generation (see package.json and README).
      const lines = await runNode(['--max-semi-space-size=4', 'dist/src/cli/main.js', 'import-users'], {
        DATABASE_URL: db.url,
        AUTH0_DOMAIN: server.url,
        AUTH0_CLIENT_ID: 'test-client',
        AUTH0_CLIENT_SECRET: 'test-secret',
        AUTH0_TENANT_NAME: BENCH_TENANT,
        LOG_LEVEL: 'info',
      });
      const finished = lines
        .map((l) => (l.startsWith('{') ? (JSON.parse(l) as Record<string, number | string>) : {}))
        .find((l) => l.msg === 'users import finished');
      if (!finished) throw new Error(`no summary line:\n${lines.slice(-5).join('\n')}`);
      const run = { seconds: Number(finished.seconds), users: Number(finished.exported), tokens: 0, rssMb: Number(finished.peakRssMb) };
      rss.push(run.rssMb);
      rows.push({ workload: `6 import, ${fmt(size)} users`, mode: 'import-users (export job → gzip NDJSON → upsert)', ...run });
      await db.drop();
    } finally {
      await server.stop();
    }
  }
  const [small, large] = [rss[0]!, rss.at(-1)!];
  const last = rows.at(-1)!;
  notes.push(
    `6 import: ${fmt(last.users / last.seconds)} users/s at ${fmt(sizes.at(-1)!)} users; peak RSS ${small} MB at ${fmt(sizes[0]!)} users, ` +
      `${large} MB at ${fmt(sizes.at(-1)!)} (target < 150 MB, flat)`,
  );
}

/**
 * 0 start-up (issue #20): the whole command a user runs, `node dist/src/cli/main.js --version`
 * and `sync --help`, median of 11 (target < 0.15 s), and `npm run -s sync -- --help`, which
 * checks the build first.
 */
async function startup() {
  const time = async (command: string, args: string[]) => {
    const seconds: number[] = [];
    for (let i = 0; i < 11; i += 1) {
      const started = performance.now();
      await promisify(execFile)(command, args, { cwd: path.resolve(import.meta.dirname, '..') });
      seconds.push((performance.now() - started) / 1000);
    }
    return seconds.sort((a, b) => a - b)[5]!;
  };
  const version = await time(process.execPath, ['dist/src/cli/main.js', '--version']);
  const help = await time(process.execPath, ['dist/src/cli/main.js', 'sync', '--help']);
  const viaNpm = await time('npm', ['run', '-s', 'sync', '--', '--help']);
  notes.push(
    `0 start-up (median of 11): --version ${fmt(version, 3)} s, sync --help ${fmt(help, 3)} s (target < 0.15 s); npm run -s sync -- --help ${fmt(viaNpm, 3)} s (npm and the staleness check included)`,
  );
}

/**
 * Issue #22: what listing sessions beside tokens costs. The same tenant (granting read:sessions)
 * synced into fresh databases with SYNC_SESSIONS=off and with the default auto (on, as the scope
 * is granted): requests per user and wall time of each.
 */
async function sessionsCost() {
  const server = await startServer(['--users', opts['sessions-users'], '--sessions', '--recent', '--seed', '16']);
  const ids = await readIds(server.usersFile);
  try {
    const figures: Record<string, { requests: number; seconds: number }> = {};
    for (const mode of ['off', 'auto'] as const) {
      const db = await freshDatabase(ids);
      server.reset();
      const run = await sync(server, db.url, { SYNC_SESSIONS: mode });
      const perUser = run.requests / run.users;
      figures[mode] = { requests: perUser, seconds: run.seconds };
      rows.push({ workload: '7 sessions', mode: `SYNC_SESSIONS=${mode}${mode === 'auto' ? ' (on)' : ''}`, ...run, note: `${fmt(perUser, 2)} requests/user` });
      await db.drop();
    }
    notes.push(
      `7 sessions: ${fmt(figures.off!.requests, 2)} requests per user with sessions off, ${fmt(figures.auto!.requests, 2)} with them on (+${fmt(figures.auto!.requests - figures.off!.requests, 2)}); wall ${fmt(figures.off!.seconds, 1)} s vs ${fmt(figures.auto!.seconds, 1)} s`,
    );
  } finally {
    await server.stop();
  }
}

/** Each sandbox tenant's rate limit in the tenants workload (issue #23: 16 requests per second each). */
const TENANT_RPS = 16;

/**
 * Three sandbox tenants at TENANT_RPS each, one warehouse, `npm run worker` started once and then
 * three times (TENANTS_FILE, a pass on start, no other schedule): the requests the tenants
 * answered per second from the workers' spawn to the last run's end (start-up, queue set-up and
 * job pickup included), against the sum of their limits. The rate, not the machine, should bound
 * it: one replica runs the three tenants at once as three do.
 */
async function tenants() {
  const names = ['bench-a', 'bench-b', 'bench-c'];
  const servers = await Promise.all(names.map((_, i) => startServer(['--users', opts['tenant-users'], '--rps', String(TENANT_RPS), '--seed', String(30 + i)])));
  try {
    const tenantsFile = path.join(tmp, 'tenants.json');
    await writeFile(
      tenantsFile,
      JSON.stringify({ tenants: names.map((name, i) => ({ name, domain: servers[i]!.url, clientId: 'test-client', clientSecretEnv: 'BENCH_CLIENT_SECRET' })) }),
    );
    for (const replicas of [1, 3]) {
      const db = await freshDatabase([]);
      const client = new pg.Client({ connectionString: db.url });
      await client.connect();
      try {
        for (const [i, name] of names.entries()) {
          await client.query('insert into auth0.users (tenant, user_id) select $1, unnest($2::text[])', [name, await readIds(servers[i]!.usersFile)]);
          servers[i]!.reset();
        }
        const env = {
          PATH: process.env.PATH,
          DATABASE_URL: db.url,
          TENANTS_FILE: tenantsFile,
          BENCH_CLIENT_SECRET: 'test-secret',
          SYNC_RUN_ON_START: 'true',
          SYNC_SCHEDULE: '0 0 1 1 *',
          SYNC_LOGS_SCHEDULE: 'off',
          SYNC_SESSIONS: 'off',
          SYNC_CONCURRENCY: '8',
          LOG_LEVEL: 'warn',
        };
        const spawnedAt = Date.now();
        const workers = Array.from({ length: replicas }, () =>
          spawn(process.execPath, [...SYNC_NODE_FLAGS, 'dist/src/cli/main.js', 'worker'], { env, stdio: ['ignore', 'ignore', 'inherit'] }),
        );
        let runs: { tenant: string; started_at: Date; finished_at: Date; requests: number }[] = [];
        try {
          for (;;) {
            ({ rows: runs } = await client.query(
              "select tenant, started_at, finished_at, requests from auth0.sync_runs where status in ('succeeded', 'partial', 'failed') order by id",
            ));
            if (new Set(runs.map((r) => r.tenant)).size === names.length) break;
            if (workers.some((w) => w.exitCode !== null)) throw new Error('a worker exited before every tenant was synced');
            await new Promise((resolve) => setTimeout(resolve, 250));
          }
        } finally {
          await Promise.all(
            workers.map((w) => new Promise((resolve) => (w.exitCode !== null ? resolve(undefined) : (w.on('close', resolve), w.kill('SIGTERM'))))),
          );
        }
        const stats = await Promise.all(servers.map((server) => server.stats()));
        const answered = stats.reduce((n, s) => n + s.requests - s.rateLimited, 0);
        const refused = stats.reduce((n, s) => n + s.rateLimited, 0);
        const seconds = (Math.max(...runs.map((r) => r.finished_at.getTime())) - spawnedAt) / 1000;
        const share = answered / seconds / (TENANT_RPS * names.length);
        const { rows: counted } = await client.query<{ users: string; tokens: string }>(
          'select (select count(*) from auth0.user_sync_state) as users, (select count(*) from auth0.refresh_tokens) as tokens',
        );
        rows.push({
          workload: `8 tenants 3 × ${TENANT_RPS}/s`,
          mode: `${replicas} worker ${replicas === 1 ? 'replica' : 'replicas'}`,
          seconds,
          users: Number(counted[0]!.users),
          tokens: Number(counted[0]!.tokens),
          requests: answered,
          refused,
          rssMb: NaN,
          note: `${fmt(share * 100, 1)}% of ${TENANT_RPS * names.length}/s`,
        });
        notes.push(
          `8 tenants: ${replicas} ${replicas === 1 ? 'replica' : 'replicas'} reached ${fmt(share * 100, 1)}% of the three tenants' ${TENANT_RPS * names.length} requests/s (target ≥ 90%), ${fmt(refused)} refused, ${runs.length} runs for ${names.length} tenants`,
        );
      } finally {
        await client.end();
        await db.drop();
      }
    }
  } finally {
    await Promise.all(servers.map((server) => server.stop()));
  }
}

try {
  if (only.has('startup')) await startup();
  if (only.has('throughput')) await throughput();
  if (only.has('latency')) await latency();
  if (only.has('ramp')) await ramp();
  if (only.has('ratelimit')) await rateLimit();
  if (only.has('memory')) await memory();
  if (only.has('quiet')) await quietWrites();
  if (only.has('import')) await importUsers();
  if (only.has('sessions')) await sessionsCost();
  if (only.has('tenants')) await tenants();
} finally {
  await rm(tmp, { recursive: true, force: true });
}

const header = ['workload', 'mode', 'wall s', 'users/s', 'tokens/s', 'requests/s', '429s', 'peak RSS MB', 'ratio'];
const table = rows.map((r) => [
  r.workload,
  r.mode,
  fmt(r.seconds, 1),
  fmt(r.users / r.seconds),
  fmt(r.tokens / r.seconds),
  r.requests === undefined ? '' : fmt(r.requests / r.seconds),
  r.refused === undefined ? '' : fmt(r.refused),
  fmt(r.rssMb),
  r.note ?? '',
]);
const widths = header.map((h, i) => Math.max(h.length, ...table.map((row) => row[i]!.length)));
const line = (cells: string[]) => '| ' + cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ') + ' |';
console.log(`\nMachine: ${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 2 ** 30)} GiB, Node ${process.version}`);
if (rows.length > 0) {
  console.log(line(header));
  console.log('|' + widths.map((w) => '-'.repeat(w + 2)).join('|') + '|');
  for (const row of table) console.log(line(row));
  console.log('');
}
if (quietPasses.length > 0) {
  const short: Record<QuietTable, string> = {
    refresh_tokens: 'tokens',
    refresh_token_devices: 'devices',
    refresh_token_resource_servers: 'servers',
    user_sync_state: 'user state',
    refresh_token_changes: 'changes',
  };
  const head = [
    '5 quiet writes, pass',
    'users/s',
    'added/changed/deleted',
    ...QUIET_TABLES.map((t) => `${short[t]} ins/upd (HOT)`),
    'dead tuples',
    'WAL MB',
    'written MB',
    'tokens MB',
    'database MB',
  ];
  const body = quietPasses.map((p) => [
    p.pass,
    fmt(p.users / p.seconds),
    `${fmt(p.added)}/${fmt(p.changed)}/${fmt(p.deleted)}`,
    ...QUIET_TABLES.map((t) => `${fmt(p.delta[t].ins)}/${fmt(p.delta[t].upd)} (${fmt(p.delta[t].hot)})`),
    fmt(QUIET_TABLES.reduce((n, t) => n + p.after.tables[t].dead, 0)),
    mb(p.walBytes),
    mb(p.writtenBytes),
    mb(p.after.tables.refresh_tokens.bytes),
    mb(p.after.databaseBytes),
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((row) => row[i]!.length)));
  const l = (cells: string[]) => '| ' + cells.map((c, i) => c.padEnd(w[i]!)).join(' | ') + ' |';
  console.log(l(head));
  console.log('|' + w.map((x) => '-'.repeat(x + 2)).join('|') + '|');
  for (const row of body) console.log(l(row));
  console.log('');
}
for (const note of notes) console.log(note);
