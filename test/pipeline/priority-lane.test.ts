import { describe, expect, it } from '@jest/globals';
import { createLogger } from '../../src/core/log.js';
import { createPriorityLane, type HandOffResult } from '../../src/pipeline/priority-lane.js';
import { runSyncJob } from '../../src/jobs/sync.js';
import { loadUsers, type TestDatabase } from '../helpers/db.js';
import { configFor, generateTenant, makeToken, type FakeAuth0 } from '../helpers/fake-auth0.js';
import { sharedDatabase } from '../helpers/fixtures.js';

const { withEmptyDatabaseAndTenant } = sharedDatabase();

/** 12 users with a token or two each, in the tenant and the source table; returns their IDs, sorted. */
async function twelveUsers(t: TestDatabase, fake: FakeAuth0): Promise<string[]> {
  const tenant = generateTenant({ users: 12, seed: 5, maxTokensPerUser: 2 });
  for (const [userId, tokens] of tenant) fake.setUser(userId, tokens.length > 0 ? tokens : [makeToken(userId, 0)]);
  const users = [...tenant.keys()].sort();
  await loadUsers(t.db, users);
  return users;
}

const logger = createLogger({ level: 'warn', write: () => {} });

describe('priority lane', () => {
  it('syncs a user named again while in flight once more after its fetch, never twice at once', () =>
    withEmptyDatabaseAndTenant(async (t, fake) => {
      const users = await twelveUsers(t, fake);
      const lane = createPriorityLane();
      const target = users[0]!;
      const fetchedAt: number[] = [];
      let handed: Promise<HandOffResult> | undefined;
      fake.intercept((ctx) => {
        if (ctx.userId !== target) return { delayMs: 100 };
        fetchedAt.push(Date.now());
        // Named in a log entry while its first listing is on its way.
        if (fetchedAt.length === 1) setImmediate(() => (handed = lane.hand([target, users.at(-1)!])));
        return { delayMs: 300 };
      });
      const config = configFor(fake, t.url, { SYNC_CONCURRENCY: '3', SYNC_DELETE_GUARD_MIN: '1' });
      const run = await runSyncJob({ config, db: t.db, logger, trigger: 'manual', ownsDatabase: t.embedded, lane });
      expect(run.status).toBe('succeeded');
      expect(handed).toBeDefined();
      await expect(handed).resolves.toEqual({ complete: true, runId: run.runId });
      // Listed twice (a listing takes two pages here), each request after the previous one was
      // answered (300 ms later): never two listings of the user at once.
      expect(fetchedAt).toHaveLength(4);
      for (let i = 1; i < fetchedAt.length; i++) expect(fetchedAt[i]! - fetchedAt[i - 1]!).toBeGreaterThanOrEqual(295);
      const changes = await t.db.selectFrom('auth0.refresh_token_changes').select(['token_id', 'change']).execute();
      const keys = changes.map((c) => `${c.token_id} ${c.change}`);
      expect(new Set(keys).size).toBe(keys.length);
      // After the run, hand-offs go back to the caller.
      expect(lane.hand([target])).toBeUndefined();
    }));

  it('gives a hand-off back as incomplete when the pass stops first', () =>
    withEmptyDatabaseAndTenant(async (t, fake) => {
      await twelveUsers(t, fake);
      const lane = createPriorityLane();
      const stop = new AbortController();
      let handed: Promise<HandOffResult> | undefined;
      fake.intercept((ctx) => {
        if (ctx.userId && !handed) {
          handed = lane.hand(['auth0|named-in-a-log']);
          stop.abort();
        }
        return ctx.userId ? { delayMs: 200 } : undefined;
      });
      const config = configFor(fake, t.url, { SYNC_CONCURRENCY: '1' });
      const run = await runSyncJob({ config, db: t.db, logger, trigger: 'manual', ownsDatabase: t.embedded, lane, stopSignal: stop.signal, stopGraceMs: 1000 });
      expect(run.status).toBe('interrupted');
      await expect(handed).resolves.toEqual({ complete: false, runId: run.runId });
    }));
});
