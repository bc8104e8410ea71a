import type { Command } from 'commander';
import type { Env } from '../core/config.js';
import { toSafeText } from '../core/upstream-text.js';

/**
 * The command's own flags that npm took for itself. `npm run sync --dry-run` (no `--`) does not
 * pass `--dry-run` to the script: npm reads it as its own configuration and sets
 * `npm_config_dry_run=true` in the script's environment, so a real sync would run and write in
 * silence. npm does the same with any flag it is given before `--`, known to it or not
 * (`--user x` sets `npm_config_user=true` and passes a bare `x`). Only looked at under
 * `npm run` (npm_lifecycle_event set), and only for the flags `command` itself defines, so
 * npm's own settings (a registry, a cache) never count. Returns each flag as the command should
 * have received it (`--dry-run`, `--stale=7d`), or nothing.
 */
export function findNpmEatenFlags(command: Command, env: Env): string[] {
  if (!env.npm_lifecycle_event) return [];
  const flags: string[] = [];
  for (const option of command.options) {
    if (!option.long) continue;
    const value = env[`npm_config_${option.long.slice(2).replace(/-/g, '_')}`];
    if (value === undefined || value === '') continue;
    // `--user x` reaches npm as a bare `--user` (npm_config_user=true) and a stray `x`.
    if (option.isBoolean()) flags.push(option.long);
    else flags.push(value === 'true' ? option.flags : `${option.long}=${toSafeText(value, 60)}`);
  }
  return flags;
}

/** The one sentence for a run `findNpmEatenFlags` refuses. */
export function describeNpmEatenFlags(flags: string[], env: Env): string {
  const script = toSafeText(env.npm_lifecycle_event ?? '', 40);
  return `error [usage]: npm kept ${flags.join(' ')} for itself, so nothing was run: put the command's flags after --, as in npm run ${script} -- ${flags.join(' ')}`;
}
