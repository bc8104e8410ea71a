import { expect, it } from '@jest/globals';
import { main } from '../../src/cli/main.js';
import { captureIo, cliDeps, describeServer, loadUsers, type TestDatabase } from '../helpers/db.js';
import { sharedDatabase } from '../helpers/fixtures.js';
import { envFor, makeToken, type FakeAuth0 } from '../helpers/fake-auth0.js';

// Issue #19: sentences for people say "1 user", never "user(s)"; long log IDs are shortened in
// them (kept whole in JSON and tables); a sync on a terminal ends with one sentence. The wording
// helpers alone: test/unit/core/wording.test.ts.

describeServer('the sentences of sync', () => {
  // An emptied database per test (one for the block) and a tenant of one user, beside one gone, in the source table.
  const { withEmptyDatabaseAndTenant } = sharedDatabase();
  const withTenant = (use: (w: { t: TestDatabase; fake: FakeAuth0 }) => Promise<void>) =>
    withEmptyDatabaseAndTenant(async (t, fake) => {
      fake.setUser('auth0|1', [makeToken('auth0|1', 1), makeToken('auth0|1', 2)]);
      await loadUsers(t.db, ['auth0|1', 'auth0|gone']);
      await use({ t, fake });
    });

  it('ends with one sentence for people on stdout, after the JSON log lines; stderr stays quiet', () =>
    withTenant(async ({ t, fake }) => {
      const out = captureIo();
      expect(await main(['sync'], envFor(fake, t.url), out.io, cliDeps(t))).toBe(0);
      expect(out.stderr).toEqual([]);
      expect(out.stdout.at(-1)).toMatch(
        /^Run \d+ succeeded in [\d.]+ s: synced 1 user \(1 gone from Auth0, 0 failed\); 2 tokens seen: (2 new|0 new), 0 changed, 0 marked deleted\.$/,
      );
      for (const line of out.stdout.slice(0, -1)) expect(() => JSON.parse(line) as unknown).not.toThrow();
    }));

  it('sync --from-logs shortens the log IDs in its sentences', () =>
    withTenant(async ({ t, fake }) => {
      const out = captureIo();
      expect(await main(['sync', '--from-logs'], envFor(fake, t.url), out.io, cliDeps(t))).toBe(0);
      const text = out.stdout.join('\n') + out.stderr.join('\n');
      expect(text).toMatch(/\d{8}…\d{6}/);
      expect(text).not.toMatch(/\d{20}/);
    }));
});
