import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import pg from 'pg';
import { createDb } from '../../src/db.js';
import type { Database } from '../../src/database.js';
import { migrateToLatest } from '../../src/migrate.js';

/** The server tests run against; CI and this machine have one on 127.0.0.1:5432. */
export const ADMIN_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres:postgres@127.0.0.1:5432/postgres';

export interface TestDatabase {
  url: string;
  name: string;
  db: Kysely<Database>;
  /** Drops the database, unless KEEP_TEST_DB=1 (then it prints its name for inspection). */
  drop(): Promise<void>;
}

async function admin<T>(run: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: ADMIN_URL });
  await client.connect();
  try {
    return await run(client);
  } finally {
    await client.end();
  }
}

function urlFor(name: string): string {
  const url = new URL(ADMIN_URL);
  url.pathname = `/${name}`;
  return url.toString();
}

/**
 * A fresh database of its own for one test file (so parallel Jest workers never share state),
 * migrated unless `migrate: false`.
 */
export async function createTestDatabase(options: { migrate?: boolean } = {}): Promise<TestDatabase> {
  const name = `rt_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  await admin((client) => client.query(`create database ${name}`));
  const url = urlFor(name);
  const db = createDb(url, { poolSize: 4 });
  if (options.migrate ?? true) {
    const { error } = await migrateToLatest(db);
    if (error) throw error;
  }
  return {
    url,
    name,
    db,
    async drop() {
      await db.destroy();
      if (process.env.KEEP_TEST_DB === '1') {
        process.stderr.write(`KEEP_TEST_DB=1: kept database ${name}\n`);
        return;
      }
      await admin((client) => client.query(`drop database if exists ${name} with (force)`));
    },
  };
}

/** Put user IDs into the default source table, auth0.users. */
export async function loadUsers(db: Kysely<Database>, userIds: Iterable<string>): Promise<void> {
  const ids = [...userIds];
  for (let i = 0; i < ids.length; i += 5000) {
    await db
      .insertInto('auth0.users')
      .values(ids.slice(i, i + 5000).map((user_id) => ({ user_id })))
      .onConflict((oc) => oc.column('user_id').doNothing())
      .execute();
  }
}

/** Captures what a CLI command prints. */
export function captureIo() {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return {
    io: { stdout: (line: string) => stdout.push(line), stderr: (line: string) => stderr.push(line) },
    stdout,
    stderr,
    /** stdout's JSON log lines, parsed. */
    logs: () => stdout.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>),
  };
}
