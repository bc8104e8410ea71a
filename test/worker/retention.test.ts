import { expect, it } from '@jest/globals';
import { loadConfig } from '../../src/core/config.js';
import { createLogger } from '../../src/core/log.js';
import { runWorker } from '../../src/worker/worker.js';
import { loadUsers, TEST_TENANT } from '../helpers/db.js';
import { withFakeTenant, withTestDatabase } from '../helpers/fixtures.js';
import { envFor, generateTenant } from '../helpers/fake-auth0.js';

it('with SYNC_HISTORY_DAYS, prunes old runs and change rows after a scheduled run', () =>
  withTestDatabase((t) =>
    withFakeTenant(async (fake) => {
      for (const [userId, tokens] of generateTenant({ users: 3, seed: 11 })) fake.setUser(userId, tokens);
      await loadUsers(t.db, fake.users.keys());
      const longAgo = new Date(Date.now() - 40 * 86_400_000);
      const old = await t.db
        .insertInto('auth0.sync_runs')
        .values({ tenant: TEST_TENANT, trigger: 'schedule', status: 'failed', started_at: longAgo, finished_at: longAgo })
        .returning('id')
        .executeTakeFirstOrThrow();
      await t.db
        .insertInto('auth0.refresh_token_changes')
        .values({ tenant: TEST_TENANT, token_id: 'gone', user_id: 'u-gone', change: 'exchanged', observed_at: longAgo, run_id: old.id })
        .execute();

      const lines: Record<string, unknown>[] = [];
      const stop = new AbortController();
      const config = loadConfig(envFor(fake, t.url!, { SYNC_SCHEDULE: '0 0 1 1 *', SYNC_RUN_ON_START: 'true', SYNC_HISTORY_DAYS: '30' }));
      const logger = createLogger({ level: 'info', write: (line) => lines.push(JSON.parse(line) as Record<string, unknown>) });
      const done = runWorker({ configs: [config], db: t.db, logger, stopSignal: stop.signal, runOptions: { ownsDatabase: t.embedded } });
      for (let i = 0; i < 200 && !lines.some((l) => l.msg === 'history pruned'); i++) await new Promise((r) => setTimeout(r, 50));
      stop.abort();
      await done;

      expect(lines.find((l) => l.msg === 'history pruned')).toMatchObject({ days: 30, changesDeleted: 1, runsDeleted: 1 });
      const runs = await t.db.selectFrom('auth0.sync_runs').select(['id', 'status']).execute();
      expect(runs).toEqual([{ id: expect.any(Number), status: 'succeeded' }]);
      // The run's own change rows (each token's `created`) are inside the window: all kept.
      const changes = await t.db.selectFrom('auth0.refresh_token_changes').select('change').distinct().execute();
      expect(changes).toEqual([{ change: 'created' }]);
    }),
  ));
