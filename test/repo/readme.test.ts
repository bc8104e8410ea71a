import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, it } from '@jest/globals';
import { main } from '../../src/cli/main.js';
import { captureIo } from '../helpers/db.js';

/**
 * Every command the README and the docs/ pages show still runs as written (issue #19): each
 * `npm run X` is a script of package.json, each command of the CLI exists, and each flag shown
 * after `--` is one that command takes (its `--help` names it). Also: the README stays the page
 * a newcomer needs, under 300 lines.
 */
const ROOT = path.resolve(import.meta.dirname, '../..');
const pages = ['README.md', ...readdirSync(path.join(ROOT, 'docs')).map((name) => path.join('docs', name))].filter((name) => name.endsWith('.md'));
const text = Object.fromEntries(pages.map((page) => [page, readFileSync(path.join(ROOT, page), 'utf8')]));
const scripts = Object.keys((JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts);
/** The npm scripts that run a command of the CLI of the same name. */
const CLI_COMMANDS = ['migrate', 'sync', 'import-users', 'worker', 'status', 'db'];

interface Shown {
  page: string;
  /** The script (`npm run X`) or command (`npx auth0-refresh-token-sync X`). */
  name: string;
  flags: string[];
  kind: 'script' | 'command';
}

/** `npm run [-s] X [-- flags]` and `npx auth0-refresh-token-sync X [flags]`, wherever they are shown. */
function shownCommands(): Shown[] {
  const found: Shown[] = [];
  const flagsOf = (rest: string | undefined) => [...(rest ?? '').matchAll(/(?:^|\s)(--[a-z][a-z-]*)/g)].map((m) => m[1]!);
  for (const [page, body] of Object.entries(text)) {
    // Arguments end where the shell command does: a backtick, a pipe, `&&`, `;`, `#`, `)` or the line's end.
    for (const m of body.matchAll(/npm run (?:-s )?([a-z][\w:-]*)((?: --(?: [^`|;#)\n&]*)?)?)/g)) {
      found.push({ page, name: m[1]!, flags: flagsOf(m[2]?.replace(/^ --/, '')), kind: 'script' });
    }
    for (const m of body.matchAll(/(?:npx auth0-refresh-token-sync|node dist\/src\/cli\/main\.js) ([a-z][\w-]*)([^`|;#)\n&]*)/g)) {
      found.push({ page, name: m[1]!, flags: flagsOf(m[2]), kind: 'command' });
    }
  }
  return found;
}

async function helpOf(command: string): Promise<string> {
  const out = captureIo();
  const code = await main([command, '--help'], {}, out.io, { openDatabase: () => Promise.reject(new Error('opened the database')) });
  expect(code).toBe(0);
  return out.stdout.join('\n');
}

describe('the README and docs/', () => {
  const shown = shownCommands();

  it('show commands (the check below would pass on nothing otherwise)', () => {
    expect(shown.filter((s) => s.kind === 'script').length).toBeGreaterThan(30);
    expect(shown.some((s) => s.name === 'sync' && s.flags.includes('--from-logs'))).toBe(true);
  });

  it('name only npm scripts that exist', () => {
    const missing = shown.filter((s) => s.kind === 'script' && !scripts.includes(s.name)).map((s) => `${s.page}: npm run ${s.name}`);
    expect(missing).toEqual([]);
  });

  it('name only commands of the CLI that exist, with flags they take', async () => {
    const problems: string[] = [];
    const help = new Map<string, string>();
    for (const command of CLI_COMMANDS) help.set(command, await helpOf(command));
    for (const { page, name, flags, kind } of shown) {
      if (kind === 'script' && !CLI_COMMANDS.includes(name)) continue;
      const usage = help.get(name);
      if (!usage) {
        problems.push(`${page}: no command ${name}`);
        continue;
      }
      for (const flag of flags) if (!new RegExp(`${flag}\\b`).test(usage)) problems.push(`${page}: ${name} ${flag}`);
    }
    expect(problems).toEqual([]);
  });

  it('show only sandbox and benchmark flags that exist', async () => {
    const { stdout: sandboxHelp } = await promisify(execFile)(process.execPath, ['--import', 'tsx', 'sandbox/serve.ts', '--help'], { cwd: ROOT });
    const freshness = readFileSync(path.join(ROOT, 'bench', 'freshness.ts'), 'utf8');
    const bench = readFileSync(path.join(ROOT, 'bench', 'bench.ts'), 'utf8');
    const problems: string[] = [];
    for (const { page, name, flags } of shown) {
      for (const flag of flags) {
        const bare = flag.slice(2);
        if (name === 'sandbox' && !new RegExp(`${flag}\\b`).test(sandboxHelp)) problems.push(`${page}: sandbox ${flag}`);
        if (name === 'bench:freshness' && !freshness.includes(`'${bare}'`) && !freshness.includes(`${bare}:`))
          problems.push(`${page}: bench:freshness ${flag}`);
        if (name === 'bench' && !bench.includes(bare)) problems.push(`${page}: bench ${flag}`);
      }
    }
    expect(problems).toEqual([]);
  }, 20_000);

  it('link only to pages and headings that exist', () => {
    const slug = (heading: string) =>
      heading
        .trim()
        .toLowerCase()
        .replace(/[`*_]/g, '')
        .replace(/[^\p{L}\p{N}\- ]/gu, '')
        .replaceAll(' ', '-');
    const anchors = (page: string) =>
      new Set([...[...text[page]!.matchAll(/^#{1,4} (.*)$/gm)].map((m) => slug(m[1]!)), ...[...text[page]!.matchAll(/<a id="([^"]+)"/g)].map((m) => m[1]!)]);
    const broken: string[] = [];
    for (const [page, body] of Object.entries(text)) {
      for (const m of body.matchAll(/\]\(([^)\s]+)\)/g)) {
        const [target, anchor] = m[1]!.split('#') as [string, string | undefined];
        if (/^[a-z]+:/.test(target)) continue;
        const linked = target === '' ? page : path.normalize(path.join(path.dirname(page), target));
        if (!(linked in text)) {
          if (!existsSync(path.join(ROOT, linked))) broken.push(`${page}: ${m[1]}`);
          continue;
        }
        if (anchor && !anchors(linked).has(anchor)) broken.push(`${page}: ${m[1]}`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('keep the README under 300 lines', () => {
    expect(text['README.md']!.split('\n').length).toBeLessThan(300);
  });
});
