import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { cp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from '@jest/globals';
import { sql, type Kysely } from 'kysely';
import pg from 'pg';
import { createDb } from '../../src/warehouse/connection.js';
import type { Database } from '../../src/warehouse/schema.js';
import { migrateToLatest } from '../../src/warehouse/migrate.js';
import { installJobQueueSchema, JOB_QUEUE_SCHEMA } from '../../src/warehouse/job-queue-schema.js';
import type { Deps } from '../../src/cli/main.js';
import { loadDatabaseConfig } from '../../src/core/config.js';
import { openEmbeddedDatabase } from '../../src/warehouse/embedded/pglite.js';
import { migrations } from '../../migrations/index.js';

/** The server tests run against; CI and this machine have one on 127.0.0.1:5432. */
export const ADMIN_URL = process.env.TEST_DATABASE_URL ?? 'postgres://postgres:postgres@127.0.0.1:5432/postgres';

/** 'server' (PostgreSQL at ADMIN_URL) or 'embedded' (PGlite): decided by test/global-setup.js. */
export const TEST_DB_MODE = process.env.TEST_DB_MODE === 'embedded' ? 'embedded' : 'server';
/** `it` for tests that need several processes on one database: skipped on the embedded fallback. */
export const itServer = TEST_DB_MODE === 'server' ? it : it.skip;
export const describeServer = TEST_DB_MODE === 'server' ? describe : describe.skip;

export interface TestDatabase {
  /** The connection URL; undefined on the embedded database (one process only). */
  url: string | undefined;
  name: string;
  db: Kysely<Database>;
  embedded: boolean;
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
 * The name of a database migrated to the current migrations, made once per test run (the
 * first Jest worker to need it creates it under an advisory lock; the others wait) and cloned
 * by every test file: `create database … template …` copies files, far faster than migrating.
 * The name carries this run's id (so runs sharing a server never drop each other's) and a
 * digest of the migration names.
 */
async function migratedTemplate(): Promise<string> {
  const digest = createHash('sha256')
    .update([...Object.keys(migrations), JOB_QUEUE_SCHEMA].join('\n'))
    .digest('hex')
    .slice(0, 12);
  const name = `rt_template_${process.env.TEST_RUN_ID ?? process.pid}_${digest}`;
  await admin(async (client) => {
    await client.query('select pg_advisory_lock(4242, 1)');
    try {
      const { rowCount } = await client.query('select 1 from pg_database where datname = $1', [name]);
      if (rowCount) return;
      await client.query(`create database ${name}`);
      const db = createDb(urlFor(name), { poolSize: 1 });
      try {
        const { error } = await migrateToLatest(db);
        if (error) throw error;
        // As `npm run migrate` does on a server: the worker replicas' job queue (issue #23).
        await installJobQueueSchema(db);
      } finally {
        await db.destroy();
      }
      await client.query(`alter database ${name} with is_template true`);
    } finally {
      await client.query('select pg_advisory_unlock(4242, 1)');
    }
  });
  return name;
}

/**
 * A fresh database of its own for one test file (so parallel Jest workers never share state),
 * cloned from the migrated template unless `migrate: false` (then empty). `embedded: true` asks
 * for a migrated PGlite database even when the tests run against a server (for what only the
 * embedded database does: one connection, no run lock).
 */
export async function createTestDatabase(options: { migrate?: boolean; embedded?: boolean } = {}): Promise<TestDatabase> {
  const name = `rt_test_${process.pid}_${randomBytes(4).toString('hex')}`;
  if (TEST_DB_MODE === 'embedded' || options.embedded) return createEmbeddedTestDatabase(name);
  const migrate = options.migrate ?? true;
  const clone = async () => {
    const template = migrate ? await migratedTemplate() : 'template0';
    await admin((client) => client.query(`create database ${name} template ${template}`));
  };
  // A template dropped under us (an older checkout's teardown sharing this server) is made again, once.
  await clone().catch((error: { code?: string }) => (migrate && error.code === '3D000' ? clone() : Promise.reject(error)));
  const url = urlFor(name);
  const db = createDb(url, { poolSize: 4 });
  return {
    url,
    name,
    db,
    embedded: false,
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

/**
 * Empties every auth0.* table but Kysely's migration records (identities restarted) and frees
 * the run lease: the rows of a fresh clone, in some 20-100 ms, where cloning and dropping a
 * database per test takes 0.2-0.6 s on a busy 2-core machine (both wait for fsync).
 */
export async function emptyTables(db: Kysely<Database>): Promise<void> {
  const { rows } = await sql<{ name: string }>`
    select format('%I.%I', schemaname, tablename) as name from pg_tables
    where schemaname = 'auth0' and tablename not like 'kysely\_%' order by tablename
  `.execute(db);
  // run_lease too: each tenant's row is made by its first run (issue #23).
  await sql.raw(`truncate ${rows.map((row) => row.name).join(', ')} restart identity`).execute(db);
}

/**
 * The tenant the tests' configuration points at: envFor/configFor name no AUTH0_TENANT_NAME, so
 * it is the first label of the fake tenant's URL (`http://127.0.0.1:port`).
 */
export const TEST_TENANT = '127';

/** Put user IDs into the default source table, auth0.users (as the test tenant's, unless `tenant` says). */
export async function loadUsers(db: Kysely<Database>, userIds: Iterable<string>, tenant = TEST_TENANT): Promise<void> {
  const ids = [...userIds];
  for (let i = 0; i < ids.length; i += 5000) {
    await db
      .insertInto('auth0.users')
      .values(ids.slice(i, i + 5000).map((user_id) => ({ tenant, user_id })))
      .onConflict((oc) => oc.columns(['tenant', 'user_id']).doNothing())
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

/**
 * A migrated PGlite directory for this Jest worker (so workers never race on it), made once
 * (a new PGlite runs initdb: seconds) and copied for each test file (a fraction of a second).
 */
async function embeddedTemplate(): Promise<string> {
  const dir = path.join(os.tmpdir(), `rt-pglite-template-${process.env.TEST_RUN_ID ?? 0}-${process.pid}-${Object.keys(migrations).length}`);
  if (existsSync(path.join(dir, 'PG_VERSION'))) return dir;
  await rm(dir, { recursive: true, force: true });
  const embedded = await openEmbeddedDatabase(dir, 'test template');
  try {
    const { error } = await migrateToLatest(embedded.db);
    if (error) throw error;
  } finally {
    await embedded.close();
  }
  return dir;
}

/** A copy of the migrated template, opened in this process. */
async function createEmbeddedTestDatabase(name: string): Promise<TestDatabase> {
  const dir = path.join(os.tmpdir(), name);
  await cp(await embeddedTemplate(), dir, { recursive: true });
  const embedded = await openEmbeddedDatabase(dir, 'test');
  return {
    url: undefined,
    name,
    db: embedded.db,
    embedded: true,
    async drop() {
      await embedded.close();
      if (process.env.KEEP_TEST_DB === '1') process.stderr.write(`KEEP_TEST_DB=1: kept ${dir}\n`);
      else await rm(dir, { recursive: true, force: true });
    },
  };
}

/** For `main(argv, env, io, cliDeps(t))`: the command uses the test's database and leaves it open. */
export function cliDeps(t: TestDatabase): Deps {
  return { openDatabase: async () => ({ db: t.db, ownsDatabase: t.embedded, close: async () => {} }) };
}

/** The source settings for a table and column, as loadDatabaseConfig parses them. */
export function sourceOf(table: string, column: string) {
  return loadDatabaseConfig({ SOURCE_USERS_TABLE: table, SOURCE_USER_ID_COLUMN: column }).source;
}
