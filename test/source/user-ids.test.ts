import { describe, expect, it } from '@jest/globals';
import { sql } from 'kysely';
import { countFailedUsers, countUserIds, readFailedUserIds, readUserIds } from '../../src/source/user-ids.js';
import { loadUsers, sourceOf, TEST_TENANT } from '../helpers/db.js';
import { withTestDatabase } from '../helpers/fixtures.js';

async function collect(iterable: AsyncIterable<string>): Promise<string[]> {
  const out: string[] = [];
  for await (const value of iterable) out.push(value);
  return out;
}

// A fresh database per test (withTestDatabase): several tests fill auth0.users or create tables of their own.

describe('readUserIds', () => {
  it('streams every ID once, in order, across keyset pages', () =>
    withTestDatabase(async (t) => {
      const ids = Array.from({ length: 2503 }, (_, i) => `auth0|${String(i).padStart(5, '0')}`);
      await loadUsers(t.db, [...ids].reverse());
      const source = sourceOf('auth0.users', 'user_id');
      expect(await collect(readUserIds(t.db, { tenant: TEST_TENANT, source, batchSize: 500 }))).toEqual(ids);
      expect(await countUserIds(t.db, { tenant: TEST_TENANT, source: source })).toBe(2503);
    }));

  it('reads a custom table and column, quoted, skipping NULL and empty IDs', () =>
    withTestDatabase(async (t) => {
      await sql`create schema "Crm"`.execute(t.db);
      await sql`create table "Crm"."People" ("Auth0Id" text, name text)`.execute(t.db);
      await sql`insert into "Crm"."People" values ('b', 'x'), (null, 'y'), ('', 'z'), ('a', 'w'), ('c', 'v')`.execute(t.db);
      const source = sourceOf('Crm.People', 'Auth0Id');
      expect(await collect(readUserIds(t.db, { tenant: TEST_TENANT, source, batchSize: 2 }))).toEqual(['a', 'b', 'c']);
      expect(await countUserIds(t.db, { tenant: TEST_TENANT, source: source })).toBe(3);
    }));

  it('skips users import-users marked removed in auth0.users, and only there', () =>
    withTestDatabase(async (t) => {
      await sql`truncate auth0.users`.execute(t.db);
      await loadUsers(t.db, ['auth0|a', 'auth0|b', 'auth0|c']);
      await sql`update auth0.users set removed_at = now() where user_id = 'auth0|b'`.execute(t.db);
      const source = sourceOf('auth0.users', 'user_id');
      expect(await collect(readUserIds(t.db, { tenant: TEST_TENANT, source }))).toEqual(['auth0|a', 'auth0|c']);
      expect(await countUserIds(t.db, { tenant: TEST_TENANT, source: source })).toBe(2);
      await sql`create table public.people (id text, removed_at timestamptz)`.execute(t.db);
      await sql`insert into public.people values ('x', now()), ('y', null)`.execute(t.db);
      expect(await collect(readUserIds(t.db, { tenant: TEST_TENANT, source: sourceOf('people', 'id') }))).toEqual(['x', 'y']);
    }));

  it("reads only the tenant's users from auth0.users, and a custom table as it is (issue #23)", () =>
    withTestDatabase(async (t) => {
      await sql`truncate auth0.users`.execute(t.db);
      await loadUsers(t.db, ['auth0|a', 'auth0|b']);
      await loadUsers(t.db, ['auth0|b', 'auth0|z'], 'other');
      const source = sourceOf('auth0.users', 'user_id');
      expect(await collect(readUserIds(t.db, { tenant: TEST_TENANT, source }))).toEqual(['auth0|a', 'auth0|b']);
      expect(await collect(readUserIds(t.db, { tenant: 'other', source }))).toEqual(['auth0|b', 'auth0|z']);
      expect(await countUserIds(t.db, { tenant: 'other', source })).toBe(2);
      // A user synced in one tenant is not synced in the other.
      await t.db
        .insertInto('auth0.user_sync_state')
        .values({ tenant: 'other', user_id: 'auth0|b', status: 'synced', last_attempt_at: new Date(), last_success_at: new Date() })
        .execute();
      expect(await collect(readUserIds(t.db, { tenant: TEST_TENANT, source, notSyncedSince: 'ever' }))).toEqual(['auth0|a', 'auth0|b']);
      expect(await collect(readUserIds(t.db, { tenant: 'other', source, notSyncedSince: 'ever' }))).toEqual(['auth0|z']);
      await sql`create table public.people (id text)`.execute(t.db);
      await sql`insert into public.people values ('x')`.execute(t.db);
      expect(await collect(readUserIds(t.db, { tenant: 'other', source: sourceOf('people', 'id') }))).toEqual(['x']);
    }));

  it('names the variable to fix when the table or column does not exist', () =>
    withTestDatabase(async (t) => {
      await expect(collect(readUserIds(t.db, { tenant: TEST_TENANT, source: sourceOf('nope.users', 'user_id') }))).rejects.toThrow(
        'The source table nope.users does not exist; set SOURCE_USERS_TABLE',
      );
      await expect(countUserIds(t.db, { tenant: TEST_TENANT, source: sourceOf('auth0.users', 'uid') })).rejects.toThrow(
        'The source table auth0.users has no column uid; set SOURCE_USER_ID_COLUMN',
      );
    }));
});

describe('readFailedUserIds', () => {
  it('streams the users whose last sync failed, in ID order, across keyset pages', () =>
    withTestDatabase(async (t) => {
      const statuses = ['failed', 'synced', 'failed', 'not_found', 'failed', 'failed', 'synced', 'failed'] as const;
      const rows = statuses.map((status, i) => ({ tenant: TEST_TENANT, user_id: `auth0|${i}`, status, last_attempt_at: new Date() }));
      await t.db
        .insertInto('auth0.user_sync_state')
        .values([...rows].reverse())
        .execute();
      const failed = rows.filter((r) => r.status === 'failed').map((r) => r.user_id);
      expect(failed).toHaveLength(5);
      // Pages of 2: a full last page (4 of 5) and a short one.
      expect(await collect(readFailedUserIds(t.db, TEST_TENANT, 2))).toEqual(failed);
      expect(await collect(readFailedUserIds(t.db, TEST_TENANT, 5))).toEqual(failed);
      expect(await countFailedUsers(t.db, TEST_TENANT)).toBe(5);
    }));

  it('yields nothing when no user is failing', () =>
    withTestDatabase(async (t) => {
      expect(await collect(readFailedUserIds(t.db, TEST_TENANT, 2))).toEqual([]);
      expect(await countFailedUsers(t.db, TEST_TENANT)).toBe(0);
    }));
});

describe('a source table with any PostgreSQL name', () => {
  it('reads a table and column named with mixed case, spaces, a dot and unicode', () =>
    withTestDatabase(async (t) => {
      await sql`create schema "Sales Team"`.execute(t.db);
      await sql`create table "Sales Team"."Kunden.v2 ü" ("Auth0 Ïd" text)`.execute(t.db);
      await sql`insert into "Sales Team"."Kunden.v2 ü" values ('auth0|b'), ('auth0|a'), (null)`.execute(t.db);
      const source = sourceOf('"Sales Team"."Kunden.v2 ü"', 'Auth0 Ïd');
      expect(source).toEqual({ table: ['Sales Team', 'Kunden.v2 ü'], column: 'Auth0 Ïd' });
      expect(await collect(readUserIds(t.db, { tenant: TEST_TENANT, source, batchSize: 1 }))).toEqual(['auth0|a', 'auth0|b']);
      expect(await countUserIds(t.db, { tenant: TEST_TENANT, source: source })).toBe(2);
      // Unquoted parts are taken as written: the same table without the dot in its name.
      await sql`create table "Sales Team"."Kunden ü" ("Auth0 Ïd" text)`.execute(t.db);
      await sql`insert into "Sales Team"."Kunden ü" values ('auth0|c')`.execute(t.db);
      expect(await collect(readUserIds(t.db, { tenant: TEST_TENANT, source: sourceOf('Sales Team.Kunden ü', 'Auth0 Ïd') }))).toEqual(['auth0|c']);
    }));

  it('names a missing table as written in SQL', () =>
    withTestDatabase(async (t) => {
      await expect(countUserIds(t.db, { tenant: TEST_TENANT, source: sourceOf('"no.such"."place.v2"', 'id') })).rejects.toThrow(
        'The source table "no.such"."place.v2" does not exist; set SOURCE_USERS_TABLE',
      );
    }));
});
