import { afterAll, beforeAll, beforeEach, describe, expect, it } from '@jest/globals';
import { sql } from 'kysely';
import { main } from '../../src/cli.js';
import { connectionIdOf } from '../../src/sandbox/users-export.js';
import { captureIo, cliDeps, createTestDatabase, loadUsers, type TestDatabase } from '../helpers/db.js';
import { envFor, startFakeAuth0, type FakeAuth0 } from '../helpers/fake-auth0.js';

let t: TestDatabase;
let fake: FakeAuth0;

const DB_USERS = Array.from({ length: 40 }, (_, i) => `auth0|u${String(i).padStart(3, '0')}`);
const GOOGLE_USERS = Array.from({ length: 10 }, (_, i) => `google-oauth2|g${String(i).padStart(3, '0')}`);

async function importUsers(args: string[] = [], extra: Record<string, string> = {}) {
  const out = captureIo();
  const code = await main(['import-users', ...args], envFor(fake, t.url, extra), out.io, cliDeps(t));
  return { code, ...out, text: [...out.stdout, ...out.stderr].join('\n') };
}

const users = () => t.db.selectFrom('auth0.users').selectAll().orderBy('user_id').execute();
const liveIds = async () => (await users()).filter((u) => u.removed_at === null).map((u) => u.user_id);
const removedIds = async () => (await users()).filter((u) => u.removed_at !== null).map((u) => u.user_id);
/** Every row with every column: to prove that a failed import changed nothing. */
const snapshot = async () => (await sql`select * from auth0.users order by user_id`.execute(t.db)).rows;

function setTenant(ids: string[]) {
  fake.users.clear();
  for (const id of ids) fake.setUser(id, []);
}

beforeAll(async () => {
  t = await createTestDatabase();
  fake = await startFakeAuth0({ usersExport: { pollsToComplete: 2 } });
});
afterAll(async () => {
  await fake.close();
  await t.drop();
});
beforeEach(async () => {
  fake.intercept(undefined);
  fake.usersExport.script({});
  fake.usersExport.expireNextDownloads(0);
  fake.setScope('read:refresh_tokens read:users');
  await sql`truncate auth0.users`.execute(t.db);
  setTenant([...DB_USERS, ...GOOGLE_USERS]);
});

describe('npm run import-users', () => {
  it('adds every user of the export with its profile fields, and never sends the Authorization header to the download host', async () => {
    fake.usersExport.setProfile('auth0|u001', { email: 'alice@example.org', blocked: true, last_login: '2026-11-30T10:00:00.000Z' });
    const { code, stdout, text } = await importUsers([], { LOG_LEVEL: 'info' });
    expect(text).toContain('Imported 50 users');
    expect(code).toBe(0);
    const rows = await users();
    expect(rows.map((u) => u.user_id)).toEqual([...DB_USERS, ...GOOGLE_USERS].sort());
    const alice = rows.find((u) => u.user_id === 'auth0|u001')!;
    expect(alice).toMatchObject({ email: 'alice@example.org', blocked: true, connection: 'Username-Password-Authentication', removed_at: null });
    expect(alice.last_login?.toISOString()).toBe('2026-11-30T10:00:00.000Z');
    expect(alice.created_at).toBeInstanceOf(Date);
    expect(alice.first_imported_at).toEqual(alice.last_imported_at);
    expect(rows.find((u) => u.user_id === GOOGLE_USERS[0])).toMatchObject({ connection: 'google-oauth2' });
    // Progress: percentage and time left on each poll.
    const progress = stdout.filter((l) => l.includes('"users export"')).map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(progress.length).toBeGreaterThanOrEqual(2);
    expect(progress[0]).toMatchObject({ percentDone: expect.any(Number), timeLeftSeconds: expect.any(Number) });
    expect(fake.usersExport.stats.lastJobRequest).toMatchObject({
      format: 'json',
      fields: expect.arrayContaining([{ name: 'user_id' }, { name: 'email' }, { name: 'blocked' }, { name: 'identities[0].connection', export_as: 'connection' }]),
    });
    expect(fake.usersExport.stats.downloads).toBeGreaterThan(0);
    expect(fake.usersExport.stats.authorizationRefused).toBe(0);
  });
});
