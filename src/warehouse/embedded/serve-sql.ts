import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadDatabaseConfig, type Env } from '../../core/config.js';
import { FatalError, UsageError } from '../../core/errors.js';
import type { Io } from '../../core/io.js';
import { toSafeText } from '../../core/upstream-text.js';
import { acquireDirLock, dataDirUnusable } from './dir-lock.js';
import { demoDataDirOf, hasEmbeddedDatabase, noEmbeddedDatabase } from './find-database.js';
import { startOneClientGate, type OneClientGate } from './one-client.js';

/** Loopback only: the wire protocol here has no password and no TLS. */
const HOST = '127.0.0.1';
const DEFAULT_PORT = 5433;
/** What a second client reads (psql prints it after `FATAL:`). */
const ONE_CONNECTION =
  'the embedded database takes one connection at a time and another client is connected; close it and connect again (or use a PostgreSQL server through DATABASE_URL)';

export interface SqlServer {
  /** The port it listens on (the one the OS chose when asked for 0). */
  port: number;
  /** The database holds the job's schema (`auth0`): false for one no `migrate` has run on. */
  migrated: boolean;
  /** A connection string for psql, pg or a BI tool: user and database `postgres`, no password. */
  url: string;
  /** Stops listening, closes the database and releases the directory lock. */
  close(): Promise<void>;
}

/**
 * Serves the embedded database in `dataDir` over the PostgreSQL wire protocol on 127.0.0.1
 * (`@electric-sql/pglite-socket`), holding the directory lock while it runs, so `psql` and
 * reporting tools can query it. One client connection at a time (PGlite has one session): a
 * second gets a PostgreSQL error saying so (SQLSTATE 53300), and `onRefused` hears of it. Refuses a directory holding no database rather than creating an
 * empty one. `port` 0 lets the OS choose.
 */
export async function serveEmbeddedDatabase(
  dataDir: string,
  options: { port: number; demoDataDir?: string; onRefused?: (client: string) => void },
): Promise<SqlServer> {
  if (!hasEmbeddedDatabase(dataDir)) throw noEmbeddedDatabase(dataDir, options.demoDataDir);
  const release = acquireDirLock(dataDir, 'db');
  try {
    // Loaded only here: both are large, and a server deployment never needs them.
    const { PGlite } = await import('@electric-sql/pglite');
    const { PGLiteSocketServer } = await import('@electric-sql/pglite-socket');
    const pglite = await PGlite.create(dataDir).catch((error: unknown) => {
      throw dataDirUnusable(dataDir, error);
    });
    // The socket server listens on a Unix socket of its own; the gate in front of it on
    // 127.0.0.1 admits one client and answers a second with a PostgreSQL error (the socket
    // server's own limit closes the connection without a word).
    const socketDir = await mkdtemp(path.join(os.tmpdir(), 'pglite-socket-'));
    const server = new PGLiteSocketServer({ db: pglite, path: path.join(socketDir, '.s.PGSQL'), maxConnections: 2 });
    let gate: OneClientGate;
    try {
      await server.start();
      gate = await startOneClientGate({
        host: HOST,
        port: options.port,
        target: path.join(socketDir, '.s.PGSQL'),
        message: ONE_CONNECTION,
        onRefused: options.onRefused ?? (() => {}),
      });
    } catch (error) {
      await server.stop();
      await pglite.close();
      await rm(socketDir, { recursive: true, force: true });
      const code = (error as NodeJS.ErrnoException).code;
      throw new FatalError(
        'port_unavailable',
        `Cannot listen on ${HOST}:${options.port} (${code === 'EADDRINUSE' ? 'the port is in use' : String(code ?? error)}); pass --port N or set PGLITE_PORT (0 picks a free port).`,
        { cause: error },
      );
    }
    const port = gate.port;
    const { rows } = await pglite.query<{ migrated: boolean }>("select to_regnamespace('auth0') is not null as migrated");
    let closed: Promise<void> | undefined;
    return {
      port,
      migrated: rows[0]?.migrated === true,
      url: `postgres://postgres@${HOST}:${port}/postgres`,
      close() {
        closed ??= (async () => {
          try {
            await gate.close();
            await server.stop();
            await pglite.close();
            await rm(socketDir, { recursive: true, force: true });
          } finally {
            release();
          }
        })();
        return closed;
      },
    };
  } catch (error) {
    release();
    throw error;
  }
}

/**
 * `npm run db [-- --port N]`: serves the embedded database (PGLITE_DATA_DIR, or the demo's
 * when that is unset and only the demo has run, or the default one holds no tables), saying which, until `stop` aborts (the CLI's SIGINT/SIGTERM)
 * and prints the psql command. With DATABASE_URL set there is nothing to serve: exit 1 saying
 * to use the server.
 */
export async function dbCommand(values: { port?: string }, env: Env, io: Io, stop: AbortSignal): Promise<number> {
  const config = loadDatabaseConfig(env);
  if (config.databaseUrl) {
    io.stderr(
      'DATABASE_URL is set: the warehouse is that PostgreSQL server; query it with psql "$DATABASE_URL" (npm run db serves only the embedded database).',
    );
    return 1;
  }
  const rawPort = values.port ?? (env.PGLITE_PORT || String(DEFAULT_PORT));
  const port = Number(rawPort);
  if (!/^\d+$/.test(rawPort.trim()) || port > 65535) {
    throw new UsageError(`--port (or PGLITE_PORT) must be a port number from 0 to 65535, got '${toSafeText(rawPort, 40)}'.`);
  }
  let dataDir = config.dataDir;
  if (!env.PGLITE_DATA_DIR && !hasEmbeddedDatabase(dataDir)) {
    const demoDir = demoDataDirOf(env.DEMO_DATA_DIR);
    if (hasEmbeddedDatabase(demoDir)) {
      io.stderr(`No embedded database in ${dataDir} yet: serving the demo's, in ${demoDir}.`);
      dataDir = demoDir;
    }
  }
  const serve = (dir: string) =>
    serveEmbeddedDatabase(dir, {
      port,
      demoDataDir: env.DEMO_DATA_DIR,
      onRefused: (client) => io.stderr(`Refused a second client (${client}): the embedded database takes one connection at a time.`),
    });
  let server = await serve(dataDir);
  if (!server.migrated) {
    // An empty database (made by an older `status` run bare, say) holds nothing to query: the
    // demo's does, when the directory was not chosen.
    const demoDir = demoDataDirOf(env.DEMO_DATA_DIR);
    if (!env.PGLITE_DATA_DIR && path.resolve(demoDir) !== path.resolve(dataDir) && hasEmbeddedDatabase(demoDir)) {
      await server.close();
      io.stderr(`The embedded database in ${dataDir} holds no tables yet (npm run migrate creates them): serving the demo's, in ${demoDir}.`);
      dataDir = demoDir;
      server = await serve(dataDir);
    } else {
      io.stderr(`The embedded database in ${dataDir} holds no tables yet: npm run migrate creates them, npm run sync fills them.`);
    }
  }
  if (stop.aborted) {
    // Stopped while it was starting: free the database without offering it.
    await server.close();
    return 0;
  }
  io.stderr(`Serving the embedded database in ${dataDir} on ${HOST}:${server.port} (one connection at a time; Ctrl-C stops it).`);
  io.stdout(`psql "${server.url}"`);
  await new Promise<void>((resolve) => stop.addEventListener('abort', () => resolve(), { once: true }));
  await server.close();
  io.stderr('Stopped; the embedded database is free for the job again.');
  return 0;
}
