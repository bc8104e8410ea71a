import { existsSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { demoMain } from '../../sandbox/demo.js';
import { captureIo } from '../helpers/db.js';
import { withTempDir } from '../helpers/fixtures.js';

// Issue #19: a second `npm run demo` reported "0 entries read, touching only 0 of 500 users"
// and a change history that piled up. Each demo now starts from a new database of its own.

/** The report without what changes from one run to the next (times, ports, dates). */
const stable = (lines: string[]) =>
  lines.map((line) =>
    line
      .replace(/127\.0\.0\.1:\d+/g, '127.0.0.1:PORT')
      .replace(/\d+(\.\d+)? s\b/g, 'T s')
      .replace(/\(\d{4}-\d\d-\d\dT[\d:.]+Z\)/g, '(DATE)'),
  );

describe('npm run demo', () => {
  it(
    'run twice gives the same report, and says the second replaced the first',
    () =>
      withTempDir(async (dir) => {
        const demoDir = path.join(dir, 'demo');
        const first = captureIo();
        expect(await demoMain([], { DEMO_DATA_DIR: demoDir }, first.io)).toBe(0);
        const second = captureIo();
        expect(await demoMain([], { DEMO_DATA_DIR: demoDir }, second.io)).toBe(0);

        expect(first.stdout[1]).toBe(`Warehouse: embedded PostgreSQL in ${demoDir}, new.`);
        expect(second.stdout[1]).toBe(`Warehouse: embedded PostgreSQL in ${demoDir}, new (the previous demo's database was replaced).`);
        expect(stable(second.stdout).slice(2)).toEqual(stable(first.stdout).slice(2));
        const report = second.stdout.join('\n');
        expect(report).toMatch(/First sync: run 1 succeeded/);
        expect(report).toMatch(/\b2 entries read, touching only 2 of 500 users \(run 3\)/);
        expect(report).toMatch(/Change history \(auth0\.refresh_token_changes\): 2246 created,/);
        expect(report).not.toMatch(/\d{20}/); // log IDs shortened in sentences
        expect(report).toContain(`PGLITE_DATA_DIR=${demoDir} npm run status`);
      }),
    240_000,
  );

  it('refuses a DEMO_DATA_DIR holding files it did not make, and leaves them', () =>
    withTempDir(async (dir) => {
      const other = path.join(dir, 'warehouse');
      await mkdir(other);
      writeFileSync(path.join(other, 'PG_VERSION'), '18\n');
      const out = captureIo();
      expect(await demoMain([], { DEMO_DATA_DIR: other }, out.io)).toBe(1);
      expect(out.stderr.join('\n')).toMatch(/^error \[demo_dir_taken\]: DEMO_DATA_DIR .*warehouse holds files the demo did not make/);
      expect(existsSync(path.join(other, 'PG_VERSION'))).toBe(true);
    }));
});
