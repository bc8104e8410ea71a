import { existsSync } from 'node:fs';
import path from 'node:path';
import { FatalError } from '../../core/errors.js';
import { toSafeText } from '../../core/upstream-text.js';

/** Where `npm run demo` keeps its own database (DEMO_DATA_DIR overrides it). */
export const DEFAULT_DEMO_DATA_DIR = '.data/demo';

/** The demo's directory: DEMO_DATA_DIR, or the default when it is unset or empty. */
export const demoDataDirOf = (value: string | undefined): string => value || DEFAULT_DEMO_DATA_DIR;

/** `dir` holds a PGlite database (initdb has run there), without opening or creating anything. */
export function hasEmbeddedDatabase(dir: string): boolean {
  return existsSync(path.join(dir, 'PG_VERSION'));
}

/**
 * A command that only reads found no database in `dir`: it creates none (an empty one would
 * then pass for the warehouse, and `npm run db` would serve it). Exit 1 (`status`: 5) with code
 * `data_dir_empty`, saying where it looked, what to run, and where the demo's database is when
 * the demo has run.
 */
export function noEmbeddedDatabase(dir: string, demoDataDir: string | undefined): FatalError {
  const demoDir = demoDataDirOf(demoDataDir);
  const demo =
    path.resolve(demoDir) !== path.resolve(dir) && hasEmbeddedDatabase(demoDir)
      ? ` The demo's database is in ${toSafeText(demoDir, 300)}: set PGLITE_DATA_DIR=${toSafeText(demoDir, 300)} to use it.`
      : '';
  return new FatalError(
    'data_dir_empty',
    `There is no embedded database in ${toSafeText(path.resolve(dir), 300)} yet: npm run migrate creates it (then npm run sync fills it), ` +
      `or set PGLITE_DATA_DIR to the directory that holds one (DATABASE_URL for a server); nothing was created.${demo}`,
  );
}
