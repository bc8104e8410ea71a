/**
 * `npm run bench:report`: the report on a large warehouse. Fills a fresh database on the
 * PostgreSQL server with TOKENS live tokens (default 250,000) and what goes with them (users,
 * devices, audiences, a 90-day change history with deletions, 30 days of runs, the log
 * checkpoint) by SQL generate_series, then times `report` as a user runs it: the compiled CLI in
 * a child process, start-up included, several times. Prints the times, the HTML size and the
 * peak memory, against the targets (issue #21: under 5 s and 2 MB).
 *
 *   npm run bench:report -- [--tokens 250000] [--runs 3] [--keep]
 *
 * Needs PostgreSQL (BENCH_DATABASE_URL, default postgres://postgres:postgres@127.0.0.1:5432/postgres);
 * creates and drops a database named rt_bench_report_* (kept with --keep).
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import pg from 'pg';

const ADMIN_URL = process.env.BENCH_DATABASE_URL ?? 'postgres://postgres:postgres@127.0.0.1:5432/postgres';
const { values: opts } = parseArgs({
  options: { tokens: { type: 'string', default: '250000' }, runs: { type: 'string', default: '3' }, keep: { type: 'boolean', default: false } },
});
const TOKENS = Number(opts.tokens);
const USERS = Math.max(1, Math.round(TOKENS / 5));
const TARGET_SECONDS = 5;
/** The one tenant the filled warehouse holds (issue #23: every row names its tenant). */
const TENANT = 'bench';
const TARGET_BYTES = 2 * 1024 * 1024;

/** Run the compiled CLI as a user would (start-up included); resolves with its wall time, exit code and output. */
function runCli(args: string[], env: Record<string, string>): Promise<{ ms: number; code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const started = process.hrtime.bigint();
    const child = spawn(process.execPath, ['dist/src/cli/main.js', ...args], { env: { PATH: process.env.PATH, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => resolve({ ms: Number(process.hrtime.bigint() - started) / 1e6, code, stdout, stderr }));
  });
}

async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** The warehouse a sync of a large tenant leaves, written by SQL in a few seconds. */
async function fill(url: string): Promise<void> {
  await withClient(url, async (c) => {
    await c.query(`set jit = off`);
    // 30 days of runs: a pass every 6 hours and a follow every 15 minutes; a few failed or partial.
    await c.query(`
      insert into auth0.sync_runs (tenant, trigger, status, started_at, finished_at, users_total, users_synced, users_failed, requests, full_pass)
      select '${TENANT}', case when i % 24 = 0 then 'schedule' else 'logs' end,
             case when i % 97 = 0 then 'failed' when i % 31 = 0 then 'partial' else 'succeeded' end,
             now() - (i * interval '15 minutes'),
             now() - (i * interval '15 minutes') + case when i % 24 = 0 then interval '40 minutes' else (i % 50) * interval '1 second' end,
             case when i % 24 = 0 then ${USERS} else 20 end, case when i % 24 = 0 then ${USERS} else 20 end,
             case when i % 31 = 0 then 3 else 0 end, case when i % 24 = 0 then ${USERS + 10} else 25 end, i % 24 = 0
      from generate_series(1, 2880) i`);
    await c.query(
      `insert into auth0.users (tenant, user_id, email) select '${TENANT}', 'auth0|bench' || lpad(i::text, 7, '0'), 'user' || i || '@example.com' from generate_series(1, ${USERS}) i`,
    );
    await c.query(`
      insert into auth0.user_sync_state (tenant, user_id, status, last_attempt_at, last_success_at, token_count)
      select '${TENANT}', 'auth0|bench' || lpad(i::text, 7, '0'), 'synced', now() - interval '1 hour', now() - interval '1 hour', 5 from generate_series(1, ${USERS}) i`);
    // Live tokens, and a tenth as many deleted ones (the change history's deletions).
    const deleted = Math.round(TOKENS / 10);
    await c.query(`
      insert into auth0.refresh_tokens (tenant, id, user_id, client_id, session_id, rotating, created_at, idle_expires_at, expires_at, last_exchanged_at,
                                        raw, first_seen_at, last_changed_at, deleted_at)
      select '${TENANT}', 'rt_' || md5(i::text), 'auth0|bench' || lpad((1 + i % ${USERS})::text, 7, '0'), 'client_' || (i % 23)::text,
             case when i % 5 = 0 then null else 'sess_' || i end, i % 3 <> 0,
             now() - (i % 400) * interval '1 day', now() + interval '1 hour' + (i % 60) * interval '1 day',
             case when i % 11 = 0 then null else now() + interval '1 hour' + (i % 365) * interval '1 day' end,
             now() - (i % 90) * interval '1 day', '{}'::jsonb,
             now() - (i % 90) * interval '1 day', now() - (i % 90) * interval '1 day',
             case when i > ${TOKENS} then now() - (i % 90) * interval '1 day' end
      from generate_series(1, ${TOKENS + deleted}) i`);
    // 90% of tokens have a device; 5% of those moved IP since issue, 1% moved network (ASN).
    await c.query(`
      insert into auth0.refresh_token_devices (tenant, token_id, initial_ip, initial_asn, initial_user_agent, last_ip, last_asn, last_user_agent)
      select '${TENANT}', 'rt_' || md5(i::text), '10.' || (i % 250) || '.0.1', (64512 + i % 3000)::text, 'Mozilla/5.0 bench ' || (i % 40),
             '10.' || (i % 250) || '.0.' || case when i % 20 = 3 then '2' else '1' end, case when i % 100 = 1 then (64512 + (i + 7) % 3000)::text else (64512 + i % 3000)::text end,
             'Mozilla/5.0 bench ' || (i % 40)
      from generate_series(1, ${TOKENS + deleted}) i where i % 10 <> 0`);
    await c.query(`
      insert into auth0.refresh_token_resource_servers (tenant, token_id, audience, scopes)
      select '${TENANT}', 'rt_' || md5(i::text), a, 'read:all' from generate_series(1, ${TOKENS + deleted}) i,
             unnest(case when i % 4 = 0 then array['https://api.example.com/', 'https://billing.example.com/'] else array['https://api.example.com/'] end) a`);
    await c.query(`
      insert into auth0.refresh_token_changes (tenant, token_id, user_id, change, observed_at)
      select tenant, id, user_id, 'created', first_seen_at from auth0.refresh_tokens
      union all
      select tenant, id, user_id, 'deleted', deleted_at from auth0.refresh_tokens where deleted_at is not null
      union all
      select tenant, id, user_id, 'exchanged', last_exchanged_at from auth0.refresh_tokens where last_exchanged_at is not null`);
    await c.query(
      `insert into auth0.log_checkpoint (tenant, log_id, lag_seconds, last_entry_date) values ('${TENANT}', '900200000000000000000000000000000000000000000000000042', 4.2, now() - interval '5 seconds')`,
    );
    await c.query('vacuum analyze');
  });
}

const name = `rt_bench_report_${randomBytes(4).toString('hex')}`;
const url = new URL(ADMIN_URL);
url.pathname = `/${name}`;
const tmp = await mkdtemp(path.join(os.tmpdir(), 'rt-bench-report-'));
await withClient(ADMIN_URL, (c) => c.query(`create database ${name}`));
try {
  const env = { DATABASE_URL: url.toString() };
  const migrated = await runCli(['migrate'], env);
  if (migrated.code !== 0) throw new Error(`migrate exited ${migrated.code}: ${migrated.stderr}`);
  let started = Date.now();
  await fill(url.toString());
  const counts = await withClient(
    url.toString(),
    async (c) => (await c.query('select count(*)::int as n from auth0.active_refresh_tokens')).rows[0] as { n: number },
  );
  process.stdout.write(
    `Filled ${name}: ${counts.n.toLocaleString('en-US')} live tokens, ${USERS.toLocaleString('en-US')} users, in ${((Date.now() - started) / 1000).toFixed(1)} s.\n`,
  );

  const version = await runCli(['--version'], env);
  process.stdout.write(`--version (start-up, no report code): ${(version.ms / 1000).toFixed(2)} s\n`);
  const file = path.join(tmp, 'report.html');
  const times: number[] = [];
  for (let i = 0; i < Number(opts.runs); i++) {
    started = Date.now();
    const run = await runCli(['report', '--out', file], env);
    if (run.code !== 0) throw new Error(`report exited ${run.code}: ${run.stderr}`);
    times.push(run.ms);
    process.stdout.write(`report run ${i + 1}: ${(run.ms / 1000).toFixed(2)} s  (${run.stdout.trim()})\n`);
  }
  const bytes = (await stat(file)).size;
  times.sort((a, b) => a - b);
  const median = times[Math.floor(times.length / 2)]!;
  process.stdout.write(
    `\n| live tokens | report (median of ${times.length}, wall, start-up included) | fastest | HTML |\n|---|---|---|---|\n` +
      `| ${counts.n.toLocaleString('en-US')} | ${(median / 1000).toFixed(2)} s | ${(times[0]! / 1000).toFixed(2)} s | ${(bytes / 1024).toFixed(0)} KB |\n\n`,
  );
  const ok = median < TARGET_SECONDS * 1000 && bytes < TARGET_BYTES;
  process.stdout.write(`${ok ? 'Within' : 'OUTSIDE'} the targets: under ${TARGET_SECONDS} s and under ${TARGET_BYTES / 1024 / 1024} MB.\n`);
  process.exitCode = ok ? 0 : 1;
} finally {
  await rm(tmp, { recursive: true, force: true });
  if (opts.keep) process.stdout.write(`--keep: kept database ${name} (${url.toString()})\n`);
  else await withClient(ADMIN_URL, (c) => c.query(`drop database if exists ${name} with (force)`));
}
