import { rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { FatalError } from '../core/errors.js';
import { toPrintable } from '../core/upstream-text.js';

/**
 * Write the page to `file` whole or not at all (a temporary file beside it, then a rename), so a
 * browser or a mail job never reads half a report. A path that cannot be written is a
 * FatalError (`report_unwritable`) that names it.
 */
export async function writeReportFile(file: string, html: string): Promise<{ path: string; url: string; bytes: number }> {
  const target = path.resolve(file);
  const temporary = `${target}.${process.pid}.tmp`;
  try {
    await writeFile(temporary, html, 'utf8');
    await rename(temporary, target);
  } catch (error) {
    await rm(temporary, { force: true }).catch(() => {});
    const reason = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new FatalError('report_unwritable', `cannot write the report to ${toPrintable(target, 300)} (${reason}); choose another --out.`, { cause: error });
  }
  return { path: target, url: pathToFileURL(target).href, bytes: Buffer.byteLength(html) };
}
