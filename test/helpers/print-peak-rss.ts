/**
 * Preloaded into a child process (`--import ./test/helpers/print-peak-rss.ts`): prints the
 * process's peak resident set size as `peak-rss-kb=N` on stderr when it exits, so a test can
 * assert on the memory a command took without counting Jest's own.
 */
process.on('exit', () => {
  process.stderr.write(`peak-rss-kb=${process.resourceUsage().maxRSS}\n`);
});
