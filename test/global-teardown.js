import { readdir, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';

/** Remove the per-worker embedded templates that test/helpers/db.ts made, if any. */
export default async function globalTeardown() {
  const entries = await readdir(os.tmpdir()).catch(() => []);
  await Promise.all(
    entries.filter((name) => name.startsWith('rt-pglite-template-')).map((name) => rm(path.join(os.tmpdir(), name), { recursive: true, force: true })),
  );
}
