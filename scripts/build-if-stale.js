/**
 * What every npm script that runs the compiled job does first (issue #20): compile `dist/` only
 * when a source changed since the last build, so `npm run sync` does not pay for `tsc -b` (and a
 * second npm) on every call. Plain JavaScript, so it starts in milliseconds: it compares the
 * newest modification time under the compiled folders (files and folders, so a deleted file
 * counts) and the build's own configuration with `dist/.build-stamp`, and runs the build when
 * anything is newer or the stamp is missing. `npm run build` always builds.
 */
import { spawnSync } from 'node:child_process';
import { chmodSync, readdirSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '..');
const STAMP = path.join(ROOT, 'dist', '.build-stamp');
const INPUTS = ['src', 'jobs', 'migrations', 'sandbox', 'tsconfig.json', 'tsconfig.build.json', 'package.json'];

/** The newest mtime (ms) of `file`, and of everything below it when it is a folder; 0 when absent (an image with `dist/` only). */
function newest(file) {
  let stat;
  try {
    stat = statSync(file);
  } catch {
    return 0;
  }
  if (!stat.isDirectory()) return stat.mtimeMs;
  let latest = stat.mtimeMs;
  for (const entry of readdirSync(file)) latest = Math.max(latest, newest(path.join(file, entry)));
  return latest;
}

function stampTime() {
  try {
    return statSync(STAMP).mtimeMs;
  } catch {
    return -Infinity;
  }
}

const force = process.argv.includes('--force');
if (force || Math.max(...INPUTS.map((input) => newest(path.join(ROOT, input)))) > stampTime()) {
  const tsc = spawnSync(process.execPath, [path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc'), '-b', path.join(ROOT, 'tsconfig.build.json')], {
    stdio: 'inherit',
  });
  if (tsc.status !== 0) process.exit(tsc.status ?? 1);
  // The bin entry (npx, npm install -g): tsc writes files without the executable bit.
  chmodSync(path.join(ROOT, 'dist', 'src', 'cli', 'main.js'), 0o755);
  writeFileSync(STAMP, `${new Date().toISOString()}\n`);
}
