/**
 * `npm run check` part: the import graph of jobs/, src/ and migrations/ has no cycles and its
 * arrows point one way (docs/architecture.md). Every file of src/ sits in a folder named for its
 * layer, and every folder states what it may import; a file directly under src/, a folder with no
 * rule or an import its folder's rule does not allow is a violation. Reads the relative imports
 * of every .ts file; prints each violation and exits 1.
 *
 * Also: a unit test (test/unit/) imports neither the test database nor the fake tenant, pg, nor a
 * module that opens sockets or starts processes, so `npm run test:unit` needs no server.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '..');
const ROOTS = ['jobs', 'src', 'migrations', 'sandbox', 'bench'];

/** [importer prefix, imported prefix, why]: an importer under the first may not import under the second. */
const FORBIDDEN: readonly (readonly [string, string, string])[] = [
  ['src/', 'jobs/', 'jobs/ is the entry a scheduler runs: it imports src/, never the reverse'],
  ['migrations/', 'src/', 'migrations are typed on Kysely<any> and never depend on today’s code'],
  ['src/', 'sandbox/', 'the sandbox tenant and the demo are beside the product, not in it (nor in the image): src/ never imports them'],
  ['src/', 'bench/', 'bench/ measures the product: src/ never imports it'],
  ['jobs/', 'sandbox/', 'jobs/ is the entry a scheduler runs in the image, which has no sandbox/'],
  ['sandbox/', 'bench/', 'bench/ may use the sandbox, never the reverse'],
];

interface Layer {
  /** The folders of src/ (besides its own) this folder may import, lowest first. */
  imports: readonly string[];
  why: string;
}

/** One rule per folder of src/, top to bottom (docs/architecture.md, "Layers"). */
const LAYERS: Readonly<Record<string, Layer>> = {
  cli: {
    imports: ['core', 'warehouse', 'source', 'auth0', 'status', 'pipeline', 'jobs', 'worker', 'report'],
    why: 'cli/ is the program: nothing in src/ imports it',
  },
  worker: {
    imports: ['core', 'warehouse', 'source', 'auth0', 'status', 'pipeline', 'jobs', 'report'],
    why: 'worker/ is the long-running service: it runs the jobs; only cli/ (the worker command) imports it',
  },
  jobs: {
    imports: ['core', 'warehouse', 'source', 'auth0', 'status', 'pipeline'],
    why: 'jobs/ imports the pipeline and below, never cli/ or worker/',
  },
  report: {
    imports: ['core', 'warehouse', 'status'],
    why: 'report/ reads the warehouse and draws it: it imports core/, warehouse/ and status/ at most; in src/ only cli/ and worker/ import it',
  },
  pipeline: {
    imports: ['core', 'warehouse', 'source', 'auth0', 'status'],
    why: 'pipeline/ is below the jobs: it never imports jobs/, worker/ or cli/',
  },
  status: {
    imports: ['core', 'warehouse', 'source'],
    why: 'status/ reads the warehouse; it is below the pipeline',
  },
  auth0: {
    imports: ['core'],
    why: 'auth0/ is the Management API: it imports only core/ (auth0/ and warehouse/ are siblings that never import each other)',
  },
  source: {
    imports: ['core', 'warehouse'],
    why: 'source/ reads the source table through the warehouse; it is below the pipeline',
  },
  warehouse: {
    imports: ['core'],
    why: 'warehouse/ is below source/ and the pipeline: it imports only core/ (never auth0/, never source/)',
  },
  core: { imports: [], why: 'core/ imports nothing of ours outside core/' },
};

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

/** `src/<folder>/…` → folder; undefined for a file outside src/ or directly under it. */
function layerOf(file: string): string | undefined {
  const parts = file.split('/');
  return parts[0] === 'src' && parts.length > 2 ? parts[1] : undefined;
}

for (const folder of readdirSync(path.join(ROOT, 'src'), { withFileTypes: true })) {
  if (folder.isDirectory() && !(folder.name in LAYERS))
    problems.push(`src/${folder.name}/ has no rule in scripts/check-layers.ts: say which layer it is and what it may import`);
}

for (const [file, imports] of graph) {
  const layer = layerOf(file);
  if (file.startsWith('src/') && layer === undefined)
    problems.push(`${file} sits loose in src/: every file of src/ belongs in the folder of its layer (docs/architecture.md)`);
  const rule = layer === undefined ? undefined : LAYERS[layer];
  for (const target of imports) {
    for (const [from, to, why] of FORBIDDEN) {
      if (file.startsWith(from) && target.startsWith(to)) problems.push(`${file} imports ${target}: ${why}`);
    }
    const targetLayer = layerOf(target);
    if (rule === undefined || targetLayer === undefined || targetLayer === layer) continue;
    if (!rule.imports.includes(targetLayer)) problems.push(`${file} imports ${target}: ${rule.why}`);
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

// Unit tests (test/unit/, mirroring src/) need no database and no HTTP server: `npm run
// test:unit` runs them alone. A file there may not import the test database or the fake tenant,
// pg, or a module that opens sockets or starts processes (docs/architecture.md, "Tests").
const UNIT_FORBIDDEN: Readonly<Record<string, string>> = {
  'test/helpers/db.ts': 'the test database',
  'test/helpers/fake-auth0.ts': 'the fake tenant, an HTTP server; makeToken and generateTenant are in sandbox/tenant.ts',
  'test/helpers/cli.ts': 'the CLI in child processes',
  'test/helpers/tcp-proxy.ts': 'a TCP proxy',
  'sandbox/auth0-server.ts': 'the fake tenant, an HTTP server',
  pg: 'PostgreSQL',
  'node:net': 'sockets',
  'node:http': 'an HTTP server',
  'node:https': 'HTTP',
  'node:child_process': 'child processes',
};
const SPECIFIER = /(?:^|\n)\s*(?:import|export)\s[^;]*?from\s+['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;
const unitTests = files('test/unit');
for (const file of unitTests) {
  const text = readFileSync(path.join(ROOT, file), 'utf8');
  for (const m of text.matchAll(SPECIFIER)) {
    const spec = m[1] ?? m[2]!;
    const target = spec.startsWith('.')
      ? path.posix.normalize(path.posix.join(path.posix.dirname(file), spec)).replace(/\.js$/, '.ts')
      : spec.replace(/^(?!node:)(http|https|net|child_process)$/, 'node:$1');
    const why = UNIT_FORBIDDEN[target];
    if (why !== undefined) problems.push(`${file} imports ${spec} (${why}): a unit test needs no database and no HTTP server; move it out of test/unit/`);
  }
}

if (problems.length > 0) {
  for (const problem of problems) process.stderr.write(`${problem}\n`);
  process.exit(1);
}
process.stdout.write(
  `layers: ${graph.size} modules in ${Object.keys(LAYERS).length} layers of src/, none loose, no cycle, every import points one way; ${unitTests.length} unit tests need no database or server\n`,
);
