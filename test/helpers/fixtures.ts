import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll } from '@jest/globals';
import { startFakeAuth0, type FakeAuth0, type FakeAuth0Options } from '../../sandbox/auth0-server.js';
import { createTestDatabase, emptyTables, type TestDatabase } from './db.js';

/**
 * Fixtures a test creates and closes itself: each `with…` helper makes the thing, hands it to
 * `use` and closes it in `finally`, whether the test passed or threw. No module-level `let`:
 * a test reads its fixtures from its own arguments, so it can run alone and never sees another
 * test's leftovers.
 */

/** A database of its own (cloned from the migrated template), dropped after `use`. */
export async function withTestDatabase<T>(use: (t: TestDatabase) => Promise<T>, options?: Parameters<typeof createTestDatabase>[0]): Promise<T> {
  const t = await createTestDatabase(options);
  try {
    return await use(t);
  } finally {
    await t.drop();
  }
}

/** A fake Auth0 tenant (a real HTTP server), closed after `use`. */
export async function withFakeTenant<T>(use: (fake: FakeAuth0) => Promise<T>, options?: FakeAuth0Options): Promise<T> {
  const fake = await startFakeAuth0(options);
  try {
    return await use(fake);
  } finally {
    await fake.close();
  }
}

/** A new directory under the system's temporary directory, removed after `use`. */
export async function withTempDir<T>(use: (dir: string) => Promise<T>, prefix = 'rt-test-'): Promise<T> {
  const dir = await mkdtemp(path.join(os.tmpdir(), prefix));
  try {
    return await use(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

export interface SharedDatabase {
  /** The shared database as the previous tests left it (for tests that only read, or undo what they change). */
  withDatabase<T>(use: (t: TestDatabase) => Promise<T>): Promise<T>;
  /** The shared database, emptied first (every auth0.* table, the run lease freed). */
  withEmptyDatabase<T>(use: (t: TestDatabase) => Promise<T>): Promise<T>;
  /** `withEmptyDatabase` and a fresh fake tenant, closed after `use`. */
  withEmptyDatabaseAndTenant<T>(use: (t: TestDatabase, fake: FakeAuth0) => Promise<T>, options?: FakeAuth0Options): Promise<T>;
}

/**
 * One database for the file or the describe block this is called in, created (and `seed`ed)
 * before its first test and dropped after its last; each test takes it through `withDatabase`
 * or, emptied, `withEmptyDatabase`: cloning and dropping a database per test costs 0.2-0.6 s on
 * a busy 2-core machine, emptying it 20-100 ms. For tests that only write rows; a test that
 * changes the schema or the privileges for good, or holds sessions across tests, takes a
 * database of its own (`withTestDatabase`).
 */
export function sharedDatabase(options: { seed?: (t: TestDatabase) => Promise<void> } = {}): SharedDatabase {
  const held: { t?: TestDatabase } = {};
  beforeAll(async () => {
    held.t = await createTestDatabase();
    await options.seed?.(held.t);
  });
  afterAll(async () => {
    await held.t?.drop();
  });
  const withDatabase = async <T>(use: (t: TestDatabase) => Promise<T>): Promise<T> => {
    if (!held.t) throw new Error('sharedDatabase(): take the database inside a test, not at load time');
    return use(held.t);
  };
  const withEmptyDatabase = <T>(use: (t: TestDatabase) => Promise<T>): Promise<T> =>
    withDatabase(async (t) => {
      await emptyTables(t.db);
      return use(t);
    });
  return {
    withDatabase,
    withEmptyDatabase,
    withEmptyDatabaseAndTenant: (use, fakeOptions) => withEmptyDatabase((t) => withFakeTenant((fake) => use(t, fake), fakeOptions)),
  };
}
