import { existsSync, readFileSync } from 'node:fs';

/**
 * package.json's version, read once. The file sits two folders up from src/core/ (tests, tsx) and three
 * up from dist/src/core/ (the build).
 */
export const VERSION: string = readVersion();

function readVersion(): string {
  for (const relative of ['../../package.json', '../../../package.json']) {
    const url = new URL(relative, import.meta.url);
    if (!existsSync(url)) continue;
    const { name, version } = JSON.parse(readFileSync(url, 'utf8')) as { name?: unknown; version?: unknown };
    if (name === 'auth0-refresh-token-sync' && typeof version === 'string') return version;
  }
  return 'unknown';
}
