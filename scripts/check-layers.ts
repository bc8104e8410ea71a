/**
 * `npm run check` part: the import graph of jobs/, src/ and migrations/ has no cycles and its
 * arrows point one way (docs/architecture.md). Reads the relative imports of every .ts file;
 * prints each violation and exits 1.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '..');
const ROOTS = ['jobs', 'src', 'migrations'];

/** [importer prefix, imported prefix]: an importer under the first may not import under the second. */
const FORBIDDEN: readonly (readonly [string, string, string])[] = [
  ['src/', 'jobs/', 'jobs/ is the entry a scheduler runs: it imports src/, never the reverse'],
  ['migrations/', 'src/', 'migrations are typed on Kysely<any> and never depend on today’s code'],
  ['src/sandbox/', 'src/', 'the sandbox tenant imports no job code'],
  ['src/auth0/', 'src/sync/', 'auth0/ is below the pipeline'],
  ['src/auth0/', 'src/changes/', 'auth0/ is below the pipeline'],
  ['src/source/', 'src/sync/', 'source/ is below the pipeline'],
  ['src/warehouse/', 'src/sync/', 'warehouse/ is below the pipeline: it owns the row and plan types it writes'],
  ['src/warehouse/', 'src/auth0/', 'warehouse/ and auth0/ are siblings'],
  ['src/auth0/', 'src/warehouse/', 'warehouse/ and auth0/ are siblings'],
  ['src/sync/', 'src/cli', 'the CLI uses the job, not the reverse'],
];

function files(dir: string): string[] {
  return readdirSync(path.join(ROOT, dir), { withFileTypes: true }).flatMap((entry) => {
    const rel = path.posix.join(dir, entry.name);
    if (entry.isDirectory()) return files(rel);
    return entry.name.endsWith('.ts') ? [rel] : [];
  });
}

const IMPORT = /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+['"](\.{1,2}\/[^'"]+)['"]|import\(\s*['"](\.{1,2}\/[^'"]+)['"]\s*\)/g;

function importsOf(file: string): string[] {
  const text = readFileSync(path.join(ROOT, file), 'utf8');
  return [...text.matchAll(IMPORT)].map((m) => path.posix.normalize(path.posix.join(path.posix.dirname(file), m[1] ?? m[2]!)).replace(/\.js$/, '.ts'));
}

const graph = new Map(ROOTS.flatMap(files).map((file) => [file, importsOf(file)]));
const problems: string[] = [];

for (const [file, imports] of graph) {
  for (const target of imports) {
    for (const [from, to, why] of FORBIDDEN) {
      const inside = from.endsWith('/') && target.startsWith(from);
      if (file.startsWith(from) && target.startsWith(to) && !inside) problems.push(`${file} imports ${target}: ${why}`);
    }
  }
}

// Cycles: depth-first search, reporting each cycle once by its path.
const state = new Map<string, 'open' | 'done'>();
const stack: string[] = [];
function visit(file: string): void {
  state.set(file, 'open');
  stack.push(file);
  for (const next of graph.get(file) ?? []) {
    if (!graph.has(next)) continue;
    if (state.get(next) === 'open') problems.push(`import cycle: ${[...stack.slice(stack.indexOf(next)), next].join(' → ')}`);
    else if (!state.has(next)) visit(next);
  }
  stack.pop();
  state.set(file, 'done');
}
for (const file of graph.keys()) if (!state.has(file)) visit(file);

if (problems.length > 0) {
  for (const problem of problems) process.stderr.write(`${problem}\n`);
  process.exit(1);
}
process.stdout.write(`layers: ${graph.size} modules, no cycle, every import points one way\n`);
