import { describeLogId } from '../../src/auth0/log-id.js';
/**
 * The log follower on a bad day (issue #18), reading half: every follow ends and moves past the
 * checkpoint, hostile answers never reach a table or a terminal, lost history is found in each
 * of its forms, and the lag is measured against the tenant's newest entry. Against the real
 * PostgreSQL and the sandbox tenant's misbehaving logs (LogQuirks).
 */
import { describe, expect, it } from '@jest/globals';
import { sql } from 'kysely';
import { loadConfig } from '../../src/core/config.js';
import { createLogger } from '../../src/core/log.js';
import { formatStatus, toStatusJson } from '../../src/status/format-status.js';
import { readStatus } from '../../src/status/read-status.js';
import { followLogs, type FollowLogsOptions } from '../../src/jobs/follow-logs.js';
import { hasControlCharacter } from '../../src/core/upstream-text.js';
import { loadUsers, sourceOf, TEST_TENANT, type TestDatabase } from '../helpers/db.js';
import { sharedDatabase } from '../helpers/fixtures.js';
import { envFor, generateTenant, makeToken, type FakeAuth0 } from '../helpers/fake-auth0.js';
import { expectWarehouseMatchesApi } from '../helpers/warehouse.js';
import { runSyncJob } from '../../src/jobs/sync.js';

const DAY = 86_400_000;
const ago = (ms: number) => new Date(Date.now() - ms).toISOString();
const source = sourceOf('auth0.users', 'user_id');

/** What a test works with: its emptied database, its fake tenant, what the follow logs, and helpers bound to them. */
function world(t: TestDatabase, fake: FakeAuth0) {
  /** What the follow logged, line by line. */
  const logLines: string[] = [];
  function follow(options: Partial<FollowLogsOptions> = {}) {
    const config = loadConfig(envFor(fake, t.url));
    const logger = createLogger({ level: 'info', write: (line) => logLines.push(line) });
    return followLogs({ config, db: t.db, logger, ownsDatabase: t.embedded, ...options });
  }
  const checkpoint = async () => (await t.db.selectFrom('auth0.log_checkpoint').selectAll().executeTakeFirst())!;
  const status = async () => {
    const report = await readStatus(t.db, { tenant: TEST_TENANT, source });
    return { text: formatStatus(report).join('\n'), json: toStatusJson(report).logFollower as Record<string, unknown> };
  };

  /** `n` users synced in full, and the follower started at the newest entry. */
  async function syncedTenant(n = 5): Promise<string[]> {
    const tenant = generateTenant({ users: n, seed: 5, maxTokensPerUser: 2 });
    for (const [userId, tokens] of tenant) fake.setUser(userId, tokens.length > 0 ? tokens : [makeToken(userId, 0)]);
    await loadUsers(t.db, tenant.keys());
    const config = loadConfig(envFor(fake, t.url));
    const full = await runSyncJob({ config, db: t.db, logger: createLogger({ level: 'warn', write: () => {} }), trigger: 'manual', ownsDatabase: t.embedded });
    expect(full.status).toBe('succeeded');
    expect((await follow()).outcome).toBe('started');
    return [...tenant.keys()];
  }

  /** A new token for each user: one `s` entry each. */
  function login(users: string[], serial = 500): void {
    for (const [i, userId] of users.entries()) fake.setUser(userId, [...fake.users.get(userId)!, makeToken(userId, serial + i)]);
  }

  return { t, fake, logLines, follow, checkpoint, status, syncedTenant, login };
}

const { withEmptyDatabaseAndTenant } = sharedDatabase();
function withTenant(use: (w: ReturnType<typeof world>) => Promise<void>): Promise<void> {
  return withEmptyDatabaseAndTenant(async (t, fake) => {
    await use(world(t, fake));
  });
}
describe('a follow always ends and moves past the checkpoint', () => {
  it('ends on an inclusive from and a Link that stays put, syncing each changed user', () =>
    withTenant(async ({ t, fake, follow, checkpoint, syncedTenant, login }) => {
      const users = await syncedTenant();
      fake.logs.setQuirks({ inclusiveFrom: true, stuckNext: true });
      login(users.slice(0, 2));
      // take 2: with take 1 an inclusive `from` answers only the checkpoint, and nothing can be read.
      const result = await follow({ take: 2 });
      expect(result).toMatchObject({ outcome: 'followed', readEnd: 'caught_up', entriesRead: 2, usersChanged: 2 });
      expect(result.historyLost).toBeUndefined();
      expect((await checkpoint()).log_id).toBe(fake.logs.newestId());
      await expectWarehouseMatchesApi(t.db, fake);

      // Quiet: the checkpoint entry answered again is nothing new; one more request asks for the newest.
      fake.resetStats();
      const quiet = await follow();
      expect(quiet).toMatchObject({ outcome: 'followed', readEnd: 'caught_up', entriesRead: 0, runs: [] });
      expect(fake.stats.logRequests).toBe(2);
      expect(await checkpoint()).toMatchObject({ log_id: fake.logs.newestId(), newest_log_id: fake.logs.newestId(), lag_seconds: 0 });
    }));

  it('reports a page it cannot read past (take 1 and an inclusive from) as stuck, not as lost history', () =>
    withTenant(async ({ fake, follow, checkpoint, syncedTenant, login }) => {
      const users = await syncedTenant(3);
      const from = (await checkpoint()).log_id;
      fake.logs.setQuirks({ inclusiveFrom: true });
      login(users.slice(0, 1));
      const result = await follow({ take: 1 });
      expect(result).toMatchObject({ outcome: 'followed', readEnd: 'stuck', entriesRead: 0 });
      expect(result.historyLost).toBeUndefined();
      expect(result.messages.join('\n')).toContain(
        `The logs endpoint answered no next page past ${describeLogId(from)}: reading stopped there rather than loop`,
      );
      expect(await checkpoint()).toMatchObject({ log_id: from, newest_log_id: fake.logs.newestId(), history_lost_at: null });
    }));

  it('drops duplicate, out-of-order and hostile entries, ignores a hostile Link, and stores or prints no control character', () =>
    withTenant(async ({ t, fake, logLines, follow, checkpoint, syncedTenant, login }) => {
      const users = await syncedTenant();
      fake.logs.setQuirks({ duplicates: true, outOfOrder: true, hostileIds: true, hostileNext: true });
      login(users.slice(0, 3));
      const result = await follow({ take: 2 });
      expect(result).toMatchObject({ outcome: 'followed', readEnd: 'caught_up', entriesRead: 3, usersChanged: 3 });
      expect(result.ignored.bad_log_id).toBeGreaterThanOrEqual(2);
      expect(result.ignored.duplicate).toBeGreaterThanOrEqual(3);
      expect(result.messages.join('\n')).toMatch(/Ignored \d+ answered entries: \d+ with a bad log_id/);
      expect(logLines.some((line) => line.includes('log entries with a bad log_id dropped'))).toBe(true);
      for (const line of [...result.messages, ...logLines]) expect(hasControlCharacter(line)).toBe(false);
      expect((await checkpoint()).log_id).toBe(fake.logs.newestId());
      const { rows } = await sql<{
        text: string;
      }>`select coalesce(args::text, '') || log_id || coalesce(newest_log_id, '') as text from auth0.sync_runs, auth0.log_checkpoint`.execute(t.db);
      for (const row of rows) {
        expect(hasControlCharacter(row.text)).toBe(false);
        expect(row.text).not.toMatch(/\\u00(00|1b)|0{300}/);
      }
      await expectWarehouseMatchesApi(t.db, fake);
    }));

  it('stops at the bound on pages, says so, records how far behind it is, and the next follow reads on', () =>
    withTenant(async ({ fake, follow, checkpoint, status, syncedTenant }) => {
      const users = await syncedTenant(8);
      // Eight logins dated an hour apart, the last now: a lag of hours while only some are read.
      for (const [i, userId] of users.entries()) {
        fake.setUser(userId, [...fake.users.get(userId)!, makeToken(userId, 700 + i)]);
        (fake.logs.entries.at(-1) as Record<string, unknown>).date = ago((7 - i) * 3600_000);
      }
      const bounded = await follow({ take: 2, maxPages: 2 });
      expect(bounded).toMatchObject({ outcome: 'followed', readEnd: 'page_limit', entriesRead: 4, pagesRead: 2 });
      const at = await checkpoint();
      expect(at.log_id).toBe(fake.logs.entries.at(-5)!.log_id);
      expect(bounded.messages.join('\n')).toContain(
        `Stopped reading after 2 pages, the bound for one follow (2): the checkpoint is at ${describeLogId(at.log_id)}, and the next follow reads on from there.`,
      );
      expect(at).toMatchObject({ newest_log_id: fake.logs.newestId() });
      expect(at.lag_seconds).toBeCloseTo(4 * 3600, -1);
      const { text, json } = await status();
      expect(text).toMatch(/lag .+ behind the newest entry \(/);
      expect(json).toMatchObject({ newestLogId: fake.logs.newestId(), lagSeconds: at.lag_seconds });

      const rest = await follow({ take: 2 });
      expect(rest).toMatchObject({ readEnd: 'caught_up', entriesRead: 4 });
      expect(await checkpoint()).toMatchObject({ log_id: fake.logs.newestId(), lag_seconds: 0 });
      expect((await status()).text).toContain('lag 0 (caught up)');
    }));

  it('stops at the bound on time after the first page', () =>
    withTenant(async ({ follow, syncedTenant, login }) => {
      const users = await syncedTenant(4);
      login(users);
      const timed = await follow({ take: 1, maxDurationMs: 0 });
      expect(timed).toMatchObject({ readEnd: 'time_limit', entriesRead: 1, pagesRead: 1 });
      expect(timed.messages.join('\n')).toContain('the follow reached its time bound');
      expect((await follow()).entriesRead).toBe(3);
    }));
});

describe('lost history, in each form', () => {
  it('a refused checkpoint (400): restart at the newest, full pass due with the reason', () =>
    withTenant(async ({ fake, follow, checkpoint, status, syncedTenant }) => {
      await syncedTenant(3);
      fake.setUser('auth0|late', [makeToken('auth0|late', 0)]);
      fake.setUser('auth0|later', [makeToken('auth0|later', 0)]); // retention drops 'late', after the checkpoint
      fake.logs.expireBefore(fake.logs.newestId()!);
      const result = await follow();
      expect(result).toMatchObject({ outcome: 'restarted', historyLost: { reason: 'checkpoint_refused', at: expect.any(Date) } });
      expect(await checkpoint()).toMatchObject({ log_id: fake.logs.newestId(), history_lost_reason: 'checkpoint_refused', lag_seconds: 0 });
      const { text, json } = await status();
      expect(text).toContain('full pass due: log history was lost at');
      expect(text).toContain('the logs endpoint refused the checkpoint');
      expect(json).toMatchObject({ fullPassDue: true, historyLostReason: 'checkpoint_refused' });
    }));

  it('an empty answer while the tenant logged past the checkpoint, twice: restart at the newest', () =>
    withTenant(async ({ fake, follow, checkpoint, status, syncedTenant }) => {
      await syncedTenant(3);
      const stored = await checkpoint();
      fake.setUser('auth0|late', [makeToken('auth0|late', 0)]);
      fake.setUser('auth0|later', [makeToken('auth0|later', 0)]);
      fake.logs.setQuirks({ expired: 'empty' });
      fake.logs.expireBefore(fake.logs.newestId()!);
      fake.resetStats();
      const result = await follow();
      expect(result).toMatchObject({ outcome: 'restarted', historyLost: { reason: 'empty_past_checkpoint' } });
      expect(fake.stats.logRequests).toBe(3); // [], the newest, [] again
      expect(result.messages).toHaveLength(1);
      expect(result.messages[0]).toMatch(
        new RegExp(
          `^The log checkpoint ${describeLogId(stored.log_id)} \\(.+\\) is answered with no entry after it, twice, while the tenant's newest entry ${describeLogId(fake.logs.newestId()!)} lies past it .*every user is due for a full pass \\(npm run sync\\), and following resumes from the newest entry ${describeLogId(fake.logs.newestId()!)}\\.$`,
        ),
      );
      expect(await checkpoint()).toMatchObject({ log_id: fake.logs.newestId(), history_lost_reason: 'empty_past_checkpoint' });
      const { text, json } = await status();
      expect(text).toContain('nothing answered after the checkpoint while the tenant logged past it');
      expect(json).toMatchObject({ fullPassDue: true, historyLostReason: 'empty_past_checkpoint' });
    }));

  it('an empty answer followed by entries on the second read is a race, not a loss', () =>
    withTenant(async ({ fake, follow, checkpoint, syncedTenant, login }) => {
      const users = await syncedTenant(3);
      const from = (await checkpoint()).log_id;
      login(users.slice(0, 1));
      let answered = false;
      fake.intercept((ctx) => {
        if (ctx.path !== '/api/v2/logs' || ctx.query.get('from') !== from || answered) return undefined;
        answered = true;
        return { status: 200, body: '[]', headers: { link: `<${fake.url}/api/v2/logs?from=${from}&take=100>; rel="next"` } };
      });
      const result = await follow();
      expect(result).toMatchObject({ outcome: 'followed', entriesRead: 1, usersChanged: 1 });
      expect(result.historyLost).toBeUndefined();
      expect((await checkpoint()).history_lost_at).toBeNull();
    }));

  it('answered from the oldest entry held, past a checkpoint retention dropped: the entries are applied, history lost', () =>
    withTenant(async ({ t, fake, follow, checkpoint, status, syncedTenant, login }) => {
      const users = await syncedTenant(3);
      // The follower stopped ten days ago, caught up at an entry of that day.
      const old = fake.logs.append({ type: 'f', user_id: users[0], date: ago(10 * DAY) });
      fake.logs.append({ type: 's', user_id: users[1], date: ago(9 * DAY) }); // dropped by retention, never read
      await t.db
        .updateTable('auth0.log_checkpoint')
        .set({ log_id: String(old.log_id), newest_log_id: String(old.log_id), last_entry_date: new Date(ago(10 * DAY)), updated_at: new Date(ago(10 * DAY)) })
        .execute();
      login(users.slice(2, 3));
      fake.logs.setQuirks({ expired: 'oldest' });
      fake.logs.expireBefore(fake.logs.newestId()!);
      fake.resetStats();
      const result = await follow();
      expect(result).toMatchObject({ outcome: 'followed', entriesRead: 1, usersChanged: 1, historyLost: { reason: 'retention_gap' } });
      expect(fake.stats.logRequests).toBe(3); // the page, the oldest entry held, the empty page
      expect(result.messages.join('\n')).toContain('dropped entries never read');
      expect(await checkpoint()).toMatchObject({ log_id: fake.logs.newestId(), history_lost_reason: 'retention_gap' });
      await expectWarehouseMatchesApi(t.db, fake);
      const { text, json } = await status();
      expect(text).toContain('retention dropped entries after the checkpoint before they were read');
      expect(json).toMatchObject({ fullPassDue: true, historyLostReason: 'retention_gap' });
    }));

  it('a long pause within retention loses nothing', () =>
    withTenant(async ({ t, fake, follow, checkpoint, syncedTenant, login }) => {
      const users = await syncedTenant(3);
      const old = fake.logs.append({ type: 'f', user_id: users[0], date: ago(10 * DAY) });
      await t.db
        .updateTable('auth0.log_checkpoint')
        .set({ log_id: String(old.log_id), newest_log_id: String(old.log_id), last_entry_date: new Date(ago(10 * DAY)), updated_at: new Date(ago(10 * DAY)) })
        .execute();
      fake.logs.append({ type: 'f', user_id: users[1], date: ago(9 * DAY) });
      login(users.slice(2, 3));
      const result = await follow();
      expect(result).toMatchObject({ outcome: 'followed', entriesRead: 2, usersChanged: 1 });
      expect(result.historyLost).toBeUndefined();
      expect((await checkpoint()).history_lost_at).toBeNull();
    }));
});
