/**
 * `report` as a command (issue #21): an empty warehouse gives a page that says so, a path that
 * cannot be written is one clear sentence and exit 1, an unmigrated database names the fix.
 */
import { mkdir, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { main } from '../../src/cli/main.js';
import { captureIo, cliDeps } from '../helpers/db.js';
import { sharedDatabase, withTempDir, withTestDatabase } from '../helpers/fixtures.js';

const shared = sharedDatabase();

describe('npm run report', () => {
  it('on an empty warehouse writes a page that says it is empty, with no chart', () =>
    shared.withEmptyDatabase((t) =>
      withTempDir(async (dir) => {
        const file = path.join(dir, 'empty.html');
        const out = captureIo();
        expect(await main(['report', '--out', file], {}, out.io, cliDeps(t))).toBe(0);
        expect(out.stdout.join('\n')).toContain(`Report written to ${file} (`);
        expect(out.stdout.join('\n')).toContain('0 charts, 0 live tokens');
        const html = await readFile(file, 'utf8');
        expect(html).toContain('The warehouse is empty');
        expect(html).not.toContain('<svg');
      }),
    ));

  it('says which path it cannot write, exits 1 and leaves no file behind', () =>
    shared.withEmptyDatabase((t) =>
      withTempDir(async (dir) => {
        const missing = path.join(dir, 'missing-folder', 'report.html');
        const out = captureIo();
        expect(await main(['report', '--out', missing], {}, out.io, cliDeps(t))).toBe(1);
        expect(out.stderr).toEqual([`error [report_unwritable]: cannot write the report to ${missing} (ENOENT); choose another --out.`]);
        // A directory: the page is written beside it, the rename fails, the temporary file goes.
        const folder = path.join(dir, 'a-folder');
        await mkdir(folder);
        const again = captureIo();
        expect(await main(['report', '--out', folder], {}, again.io, cliDeps(t))).toBe(1);
        expect(again.stderr.join('\n')).toMatch(/^error \[report_unwritable\]: cannot write the report to .* \((EISDIR|ENOTEMPTY|EEXIST|EPERM)\)/);
        expect(await readdir(dir)).toEqual(['a-folder']);
      }),
    ));

  it('refuses an unmigrated database with the command to run', () =>
    withTestDatabase(
      (bare) =>
        withTempDir(async (dir) => {
          const out = captureIo();
          expect(await main(['report', '--out', path.join(dir, 'x.html')], {}, out.io, cliDeps(bare))).toBe(1);
          expect(out.stderr.join('\n')).toMatch(/npm run migrate/);
        }),
      { migrate: false },
    ));

  it('takes no argument but --out', () =>
    shared.withDatabase(async (t) => {
      const out = captureIo();
      expect(await main(['report', 'extra'], {}, out.io, cliDeps(t))).toBe(64);
    }));
});
