/**
 * Preloaded into a child process (`--import ./test/helpers/print-peak-rss.ts`): prints the
 * process's peak resident set size as `peak-rss-kb=N` on stderr when it exits, so a test can
 * assert on the memory a command took without counting Jest's own.
 *
 * Read from /proc/self/status (VmHWM, the high-water mark of this program's own memory) where
 * there is one: `process.resourceUsage().maxRSS` carries over the parent's peak through fork
 * and exec on Linux, so a child of a large Jest worker would report the worker's.
 */
import { readFileSync } from 'node:fs';

function peakRssKb(): number {
  try {
    const match = /^VmHWM:\s+(\d+) kB$/m.exec(readFileSync('/proc/self/status', 'utf8'));
    if (match) return Number(match[1]);
  } catch {
    // not Linux: fall back below
  }
  return process.resourceUsage().maxRSS;
}

process.on('exit', () => {
  process.stderr.write(`peak-rss-kb=${peakRssKb()}\n`);
});
