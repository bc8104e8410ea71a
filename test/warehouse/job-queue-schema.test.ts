import { expect, it } from '@jest/globals';
import { captureIo, describeServer } from '../helpers/db.js';
import { withTestDatabase } from '../helpers/fixtures.js';
import { main } from '../../src/cli/main.js';
import { assertJobQueueInstalled, installJobQueueSchema } from '../../src/warehouse/job-queue-schema.js';

// pg-boss's schema is for the worker replicas on a server database (issue #23).
describeServer('job queue schema', () => {
  it('is created once, outside any transaction, and a worker refuses a database without it', () =>
    withTestDatabase(
      async (t) => {
        await expect(assertJobQueueInstalled(t.db)).rejects.toMatchObject({ code: 'job_queue_missing', message: expect.stringContaining('npm run migrate') });
        expect(await installJobQueueSchema(t.db)).toBe(true);
        expect(await installJobQueueSchema(t.db)).toBe(false);
        await expect(assertJobQueueInstalled(t.db)).resolves.toBeUndefined();
      },
      { migrate: false },
    ));

  it('`migrate` creates it after the migrations, and says so once', () =>
    withTestDatabase(
      async (t) => {
        const first = captureIo();
        expect(await main(['migrate'], { DATABASE_URL: t.url }, first.io)).toBe(0);
        expect(first.stdout).toContain('applied: job queue schema pgboss');
        await assertJobQueueInstalled(t.db);
        const second = captureIo();
        expect(await main(['migrate'], { DATABASE_URL: t.url }, second.io)).toBe(0);
        expect(second.stdout).toEqual(['Nothing to migrate: the database is up to date.']);
      },
      { migrate: false },
    ));
});
