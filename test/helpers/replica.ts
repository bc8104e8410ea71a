/**
 * One worker replica for test/worker/replicas.test.ts (issue #23), run as its own process:
 *
 *   node --import tsx test/helpers/replica.ts
 *
 * Builds one Config per tenant of `REPLICA_TENANTS` (JSON: `[{ name, domain, clientId,
 * clientSecret, maxRps }]`) with loadConfig and AUTH0_TENANT_NAME over the rest of the environment
 * (DATABASE_URL, SYNC_SCHEDULE, …), and runs the worker on the job engine with the shortened
 * timings of `REPLICA_TIMINGS` (JSON, JobEngineTimings). Logs JSON lines on stdout; SIGTERM stops
 * it gracefully. Stands in for `npm run worker` with TENANTS_FILE until that file is there.
 */
import { loadConfig } from '../../src/core/config.js';
import { createLogger } from '../../src/core/log.js';
import { createDb } from '../../src/warehouse/connection.js';
import { runWorker } from '../../src/worker/worker.js';

interface ReplicaTenant {
  name: string;
  domain: string;
  clientId: string;
  clientSecret: string;
  maxRps?: number;
}

const env = process.env;
const tenants = JSON.parse(env.REPLICA_TENANTS ?? '[]') as ReplicaTenant[];
const configs = tenants.map((t) =>
  loadConfig({
    ...env,
    AUTH0_TENANT_NAME: t.name,
    AUTH0_DOMAIN: t.domain,
    AUTH0_CLIENT_ID: t.clientId,
    AUTH0_CLIENT_SECRET: t.clientSecret,
    AUTH0_MAX_RPS: t.maxRps === undefined ? undefined : String(t.maxRps),
  }),
);
const databaseUrl = env.DATABASE_URL!;
const db = createDb(databaseUrl, { poolSize: 8 });
const logger = createLogger({ level: 'info', fields: { pid: process.pid } });
const stop = new AbortController();
process.on('SIGTERM', () => stop.abort());
try {
  await runWorker({
    configs,
    db,
    logger,
    stopSignal: stop.signal,
    engine: { databaseUrl, concurrency: Number(env.WORKER_CONCURRENCY ?? 2), timings: JSON.parse(env.REPLICA_TIMINGS ?? '{}') as object },
  });
} finally {
  await db.destroy();
}
