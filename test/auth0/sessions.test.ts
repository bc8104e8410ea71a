import { describe, expect, it } from '@jest/globals';
import { createAuth0Client, type Auth0Client } from '../../src/auth0/client.js';
import { collectSessions, listSessions } from '../../src/auth0/sessions.js';
import { configFor, fastClock, type FakeAuth0 } from '../helpers/fake-auth0.js';
import { withFakeTenant } from '../helpers/fixtures.js';

// The sessions listing shares the token listings' page rules (src/auth0/pages.ts); the sandbox
// route itself is tested in test/sandbox/sessions.test.ts.

const USER = 'auth0|alice';

/** A fake tenant that serves sessions, and a client of it, closed after `use`. */
function withClient(use: (w: { fake: FakeAuth0; client: Auth0Client }) => Promise<void>): Promise<void> {
  return withFakeTenant(
    async (fake) => {
      const client = createAuth0Client(configFor(fake, 'postgres://x/y').auth0, { clock: fastClock, maxRetries: 1 });
      try {
        await use({ fake, client });
      } finally {
        client.close();
      }
    },
    { scope: 'read:refresh_tokens read:sessions' },
  );
}

describe('listSessions', () => {
  it('stops at once with bad_response on a cursor that does not advance (a tenant ignoring from), not after maxPages', () =>
    withClient(async ({ fake, client }) => {
      fake.intercept((ctx) =>
        ctx.path.endsWith('/sessions') ? { status: 200, body: JSON.stringify({ sessions: [{ id: 'same' }], next: 'again' }) } : undefined,
      );
      const pages: unknown[][] = [];
      await expect(
        (async () => {
          for await (const page of listSessions(client, USER, { pageSize: 1, maxPages: 5 })) pages.push(page);
        })(),
      ).rejects.toMatchObject({ code: 'bad_response', message: `Listing sessions of ${USER} answered the same cursor twice: the listing does not advance` });
      // The first page, sent without `from`, is taken; the second answers the `from` it was sent.
      expect(pages).toEqual([[{ id: 'same' }], [{ id: 'same' }]]);
      expect(fake.stats.sessionListRequests).toBe(2);
    }));

  it('collectSessions does not restart on it: a cursor that does not advance is not an expired one', () =>
    withClient(async ({ fake, client }) => {
      fake.intercept((ctx) =>
        ctx.path.endsWith('/sessions') ? { status: 200, body: JSON.stringify({ sessions: [{ id: 'same' }], next: 'again' }) } : undefined,
      );
      await expect(collectSessions(client, USER, { pageSize: 1, maxPages: 5 })).rejects.toMatchObject({
        code: 'bad_response',
        message: expect.stringContaining('answered the same cursor twice'),
      });
      expect(fake.stats.sessionListRequests).toBe(2);
    }));
});
