import { expect, it } from '@jest/globals';
import { sql } from 'kysely';
import { startCli, type CliProcess } from '../helpers/cli.js';
import { describeServer, type TestDatabase } from '../helpers/db.js';
import { withTestDatabase } from '../helpers/fixtures.js';
import { generateTenant } from '../helpers/fake-auth0.js';
import { startFakeAuth0, type FakeAuth0 } from '../../sandbox/auth0-server.js';
import { queueName } from '../../src/worker/tenant-jobs.js';
import { startTcpProxy } from '../helpers/tcp-proxy.js';

/**
 * Three worker replicas, three sandbox tenants (issue #23), each with its own credentials and rate
 * limit. The engine's timings are shortened (a dead replica's job expires after 8 s instead of
 * 45) so the kill -9 takeover fits in the file's time; the mechanism is the production one.
 */
const TIMINGS = { expireInSeconds: 8, maintenanceIntervalSeconds: 2, retryDelaySeconds: 1, pollMs: 300, heartbeatMs: 1_500, deadAfterMs: 6_000 };
/** Every 20 s: the first tick comes once the replicas are up, the kill lands in the second. */
const SCHEDULE = '*/20 * * * * *';

interface SandboxTenant {
  name: string;
  fake: FakeAuth0;
  users: Map<string, unknown[]>;
}

const SPECS = [
  // The big one: its pass lasts long enough (~12 s at 10 requests/s) to kill its replica in the middle.
  { name: 'big', users: 120, seed: 1, perSecond: 10 },
  { name: 'eu', users: 30, seed: 2, perSecond: 8 },
  { name: 'us', users: 30, seed: 3, perSecond: 12 },
];

async function withSandboxTenants(use: (tenants: SandboxTenant[]) => Promise<void>, specs = SPECS): Promise<void> {
  const tenants: SandboxTenant[] = [];
  try {
    for (const spec of specs) {
      const fake = await startFakeAuth0({
        clientId: `client-${spec.name}`,
        clientSecret: `secret-${spec.name}`,
        rateLimit: { perSecond: spec.perSecond, burst: spec.perSecond },
        latencyMs: 20,
      });
      const users = generateTenant({ users: spec.users, seed: spec.seed, userIdPrefix: `auth0|${spec.name}-` });
      for (const [userId, tokens] of users) fake.setUser(userId, tokens);
      tenants.push({ name: spec.name, fake, users });
    }
    await use(tenants);
  } finally {
    for (const { fake } of tenants) await fake.close();
  }
}

function startReplica(t: TestDatabase, tenants: SandboxTenant[], env: Record<string, string> = {}): CliProcess {
  return startCli(
    [],
    {
      DATABASE_URL: t.url,
      SYNC_SCHEDULE: SCHEDULE,
      SYNC_LOGS_SCHEDULE: 'off',
      SYNC_CONCURRENCY: '2',
      WORKER_CONCURRENCY: '2',
      LOG_LEVEL: 'info',
      REPLICA_TENANTS: JSON.stringify(
        tenants.map(({ name, fake }) => ({
          name,
          domain: fake.url,
          clientId: `client-${name}`,
          clientSecret: `secret-${name}`,
          maxRps: SPECS.find((s) => s.name === name)!.perSecond,
        })),
      ),
      REPLICA_TIMINGS: JSON.stringify(TIMINGS),
      ...env,
    },
    { script: 'test/helpers/replica.ts', timeoutMs: 120_000 },
  );
}

/** Inserts each tenant's users into auth0.users, under its tenant. */
async function loadTenantUsers(t: TestDatabase, tenants: SandboxTenant[]): Promise<void> {
  for (const { name, users } of tenants)
    await sql`insert into auth0.users (tenant, user_id) select ${name}, unnest(${[...users.keys()]}::text[])`.execute(t.db);
}

/** The replica that started a job of `tenant` last (its log says so). */
function runnerOf(replicas: CliProcess[], tenant: string): CliProcess | undefined {
  let found: { at: string; replica: CliProcess } | undefined;
  for (const replica of replicas)
    for (const line of replica.stdout.split('\n').filter((l) => l.includes('"job started"'))) {
      const entry = JSON.parse(line) as { time: string; tenant: string };
      if (entry.tenant === tenant && (!found || entry.time > found.at)) found = { at: entry.time, replica };
    }
  return found?.replica;
}

async function until<T>(what: string, read: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await read();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}

interface RunRow {
  id: number;
  tenant: string;
  trigger: string;
  status: string;
  started_at: Date;
}

const runsOf = async (t: TestDatabase): Promise<RunRow[]> =>
  (await sql<RunRow>`select id, tenant, trigger, status, started_at from auth0.sync_runs order by id`.execute(t.db)).rows;

describeServer('worker replicas on the job engine (issue #23)', () => {
  it(
    'three replicas share three tenants: one pass per tenant per tick, none beside another of its tenant, no 429, and a replica killed mid-pass is taken over',
    () =>
      withTestDatabase((t) =>
        withSandboxTenants(async (tenants) => {
          await loadTenantUsers(t, tenants);
          const replicas = [0, 1, 2].map(() => startReplica(t, tenants));
          try {
            // A tick after all three are up is seen by all three; each tenant's pass runs once, on some replica.
            await Promise.all(replicas.map((r) => r.waitFor('"worker started"')));
            const allStarted = new Date();
            const big = await until(
              "the big tenant's pass well under way",
              async () => {
                const running = (await runsOf(t)).find((r) => r.tenant === 'big' && r.status === 'running' && r.started_at > allStarted);
                if (!running) return undefined;
                const { count } = (await sql<{ count: number }>`select count(*)::int as count from auth0.user_sync_state where tenant = 'big'`.execute(t.db))
                  .rows[0]!;
                return count >= 30 ? running : undefined;
              },
              60_000,
            );
            const victim = runnerOf(replicas, 'big')!;
            expect(victim).toBeDefined();
            victim.child.kill('SIGKILL');
            const killedAt = Date.now();

            // Another replica retries the job: the dead pass is marked interrupted, a new one completes the tenant.
            const taken = await until(
              'the big tenant finished by another replica',
              async () => {
                const runs = await runsOf(t);
                const after = runs.find((r) => r.tenant === 'big' && r.id > big.id && r.status === 'succeeded');
                return after && runs.find((r) => r.id === big.id)?.status === 'interrupted' ? after : undefined;
              },
              110_000,
            );
            expect(Date.now() - killedAt).toBeLessThan(120_000);
            expect(taken.trigger).toBe('schedule');
            const others = await until(
              'the other tenants synced',
              async () => {
                const runs = await runsOf(t);
                return ['eu', 'us'].every((name) => runs.some((r) => r.tenant === name && r.status === 'succeeded')) ? runs : undefined;
              },
              30_000,
            );
            expect(others.length).toBeGreaterThan(0);

            // One job per tenant per tick, however many replicas saw it; a pass per job (the retried one twice).
            const { rows: jobs } = await sql<{ name: string; ticks: number; jobs: number }>`
              select name, count(distinct data->>'tick')::int as ticks, count(*)::int as jobs
              from pgboss.job where data->>'kind' = 'pass' group by name`.execute(t.db);
            for (const { name } of tenants) {
              const row = jobs.find((j) => j.name === queueName(name))!;
              expect(row.jobs).toBe(row.ticks);
            }
            const survivors = replicas.filter((r) => r !== victim);
            // Each tick of each tenant: sent by every replica alive then, made into a job by exactly one.
            const sends = new Map<string, { made: number; seen: number }>();
            for (const r of replicas)
              for (const line of r.stdout.split('\n').filter((l) => l.includes('"tick sent"') || l.includes('"tick already sent"'))) {
                const { tenant, tick, msg } = JSON.parse(line) as { tenant: string; tick: string; msg: string };
                const entry = sends.get(`${tenant} ${tick}`) ?? { made: 0, seen: 0 };
                entry.seen++;
                if (msg === 'tick sent') entry.made++;
                sends.set(`${tenant} ${tick}`, entry);
              }
            expect(sends.size).toBeGreaterThanOrEqual(tenants.length);
            for (const [key, { made }] of sends) expect({ key, made }).toEqual({ key, made: 1 });
            expect([...sends.values()].some(({ seen }) => seen === replicas.length)).toBe(true);
            // The dead replica's run wrote nothing once the new run had taken the tenant's lease.
            const { rows: late } = await sql<{ count: number }>`
              select count(*)::int as count from auth0.user_sync_state
              where tenant = 'big' and last_run_id = ${big.id} and last_attempt_at > ${new Date(killedAt)}`.execute(t.db);
            expect(late[0]!.count).toBe(0);

            // Every token of every tenant is its sandbox's, under its tenant.
            for (const { name, users } of tenants) {
              const { rows } = await sql<{ id: string }>`
                select id from auth0.refresh_tokens where tenant = ${name} and deleted_at is null order by id`.execute(t.db);
              const expected = [...users.values()]
                .flat()
                .map((tok) => String((tok as { id: string }).id))
                .sort();
              expect(rows.map((r) => r.id).sort()).toEqual(expected);
            }
            // No tenant refused a request, none saw one user listed twice at once.
            for (const { name, fake } of tenants) {
              expect({ name, rateLimited: fake.stats.rateLimited, overlapping: fake.stats.overlappingUserListings }).toEqual({
                name,
                rateLimited: 0,
                overlapping: 0,
              });
            }

            // SIGTERM: the survivors stop gracefully (a job running finishes first).
            for (const r of survivors) r.child.kill('SIGTERM');
            for (const r of survivors) {
              const { code, stderr } = await r.done;
              const exiting = r.stdout.split('\n').filter((l) => l.includes('replica exiting'));
              expect({ code, exiting, stderr: stderr.slice(-500) }).toEqual({ code: 0, exiting: [], stderr: expect.any(String) });
            }

            // One pass per job, whichever replica ran it: as many runs as job starts in all the
            // replicas' logs (the big tenant's job started twice: killed, then retried), one job
            // per tick (above), and no job skipped for the run lock. Only the killed tenant's next
            // ticks may be skipped, while its job waits for its retry: one waiting pass is enough.
            const logs = replicas.flatMap((r) => r.stdout.split('\n'));
            const skipped = logs.filter((l) => l.includes('tick skipped')).map((l) => JSON.parse(l) as { msg: string; tenant: string; kind: string });
            expect(skipped.filter((l) => !(l.msg === 'tick skipped: one is already waiting in the queue' && l.tenant === 'big'))).toEqual([]);
            const starts = logs.filter((l) => l.includes('"job started"')).map((l) => JSON.parse(l) as { tenant: string; kind: string });
            const runs = await runsOf(t);
            for (const { name } of tenants) {
              const passes = runs.filter((r) => r.tenant === name && r.trigger === 'schedule').length;
              const jobs = starts.filter((s) => s.tenant === name && s.kind === 'pass').length;
              expect({ name, passes }).toEqual({ name, passes: jobs });
            }
          } finally {
            for (const r of replicas) r.child.kill('SIGKILL');
            await Promise.all(replicas.map((r) => r.done.catch(() => undefined)));
          }
        }),
      ),
    120_000,
  );
  it(
    "a replica frozen past its job's expiry loses the job: the retry never runs beside its run (it still holds the tenant's run lock), and resumed it exits without touching the job",
    () =>
      withTestDatabase((t) =>
        withSandboxTenants(
          async (tenants) => {
            await loadTenantUsers(t, tenants);
            // Ticks every 10 s: the first pass starts sooner.
            const replicas = [0, 1].map(() => startReplica(t, tenants, { SYNC_SCHEDULE: '*/10 * * * * *' }));
            try {
              const first = await until(
                'the pass under way',
                async () => {
                  const running = (await runsOf(t)).find((r) => r.status === 'running');
                  if (!running) return undefined;
                  const { count } = (await sql<{ count: number }>`select count(*)::int as count from auth0.user_sync_state`.execute(t.db)).rows[0]!;
                  return count >= 20 ? running : undefined;
                },
                60_000,
              );
              const zombie = runnerOf(replicas, 'big')!;
              const other = replicas.find((r) => r !== zombie)!;
              zombie.child.kill('SIGSTOP');
              // The job expires and the other replica takes it; the frozen process's session still
              // holds the tenant's run lock, so the retry is skipped, never run beside it.
              await until('the retry taken by the other replica', async () => (other.stdout.includes('"retryCount":1') ? true : undefined), 40_000);
              await until('the retry skipped', async () => (other.stdout.includes('tick skipped: another run is active') ? true : undefined), 20_000);
              expect((await runsOf(t)).filter((r) => r.status === 'running').map((r) => r.id)).toEqual([first.id]);
              zombie.child.kill('SIGCONT');
              const { code } = await zombie.done;
              expect(code).toBe(1);
              // Its first heartbeat after the pause finds it silent past the deadline, or its job retried.
              expect(zombie.stdout).toMatch(/replica exiting: (its job was taken over by another replica|no heartbeat for)/);
              // The job was settled once, by the replica holding it then.
              const { rows: jobs } = await sql<{ state: string; retry_count: number }>`
                select state, retry_count from pgboss.job where data->>'kind' = 'pass' and retry_count > 0`.execute(t.db);
              expect(jobs).toEqual([{ state: 'completed', retry_count: 1 }]);
            } finally {
              for (const r of replicas) {
                r.child.kill('SIGCONT');
                r.child.kill('SIGKILL');
              }
              await Promise.all(replicas.map((r) => r.done.catch(() => undefined)));
            }
          },
          [SPECS[0]!],
        ),
      ),
    100_000,
  );
  it('a replica that loses its database exits within the heartbeat deadline, on its own', () =>
    withTestDatabase((t) =>
      withSandboxTenants(
        async (tenants) => {
          const proxy = await startTcpProxy({ host: '127.0.0.1', port: Number(new URL(t.url!).port || 5432) });
          const url = new URL(t.url!);
          url.port = String(proxy.port);
          const replica = startReplica(t, tenants, { DATABASE_URL: url.toString(), SYNC_SCHEDULE: '0 0 1 1 *' });
          try {
            await replica.waitFor('"worker started"');
            await proxy.kill();
            const cutAt = Date.now();
            const { code } = await replica.done;
            expect(code).toBe(1);
            expect(replica.stdout).toContain('replica exiting: no heartbeat for');
            expect(Date.now() - cutAt).toBeLessThan(TIMINGS.deadAfterMs + 3 * TIMINGS.heartbeatMs + 5_000);
          } finally {
            replica.child.kill('SIGKILL');
            await replica.done.catch(() => undefined);
          }
        },
        [SPECS[1]!],
      ),
    ));
});
