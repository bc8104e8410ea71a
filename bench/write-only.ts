/**
 * The write half alone: the same rows a full sync of the generated tenant writes, pushed
 * straight into the group-commit writer with no HTTP. Prints one JSON line.
 *   node --import tsx bench/write-only.ts --database-url URL --users N --seed N [--many-every N]
 */
import { parseArgs } from 'node:util';
import { createDb } from '../src/warehouse/connection.js';
import { silentLogger } from '../src/core/log.js';
import { emptyCounts, finishRun, startRun } from '../src/warehouse/run-records.js';
import { generateTenant } from '../sandbox/tenant.js';
import { createBatchWriter } from '../src/pipeline/batch-writer.js';
import { toWarehouseRows } from '../src/pipeline/normalize.js';

const { values } = parseArgs({
  options: { 'database-url': { type: 'string' }, users: { type: 'string' }, seed: { type: 'string' }, 'many-every': { type: 'string' } },
});
const tenant = generateTenant({ users: Number(values.users), seed: Number(values.seed ?? 1), manyTokensEvery: Number(values['many-every'] ?? 0) });
const db = createDb(values['database-url']!, { poolSize: 2 });
const runId = await startRun(db, { tenant: 'bench', trigger: 'manual', args: { bench: 'write-only' } });
const counts = emptyCounts();
const started = performance.now();
const writer = createBatchWriter({
  db,
  tenant: 'bench',
  runId,
  counts,
  logger: silentLogger,
  onFatal: (error) => {
    throw error;
  },
});
for (const [userId, tokens] of tenant) await writer.push({ status: 'synced', userId, records: toWarehouseRows(userId, tokens) });
await writer.close();
const seconds = (performance.now() - started) / 1000;
await finishRun(db, runId, { status: 'succeeded', counts });
await db.destroy();
process.stdout.write(
  JSON.stringify({ seconds, users: counts.usersSynced, tokens: counts.tokensSeen, peakRssMb: Math.round(process.resourceUsage().maxRSS / 1024) }) + '\n',
);
