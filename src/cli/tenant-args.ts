import { Option } from 'commander';
import { UsageError } from '../core/errors.js';
import type { Io } from '../core/io.js';
import { isTenantName, TENANT_NAME_RULE } from '../core/tenant-name.js';
import { toSafeText } from '../core/upstream-text.js';

/** A repeatable flag's parser: each value added to the ones before. */
export const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value];

/** `--tenant NAME` (issue #23), repeatable: `sync`, `import-users`, `migrate` and `status` take it. */
export function tenantOption(description = 'only this tenant (repeatable; default every configured tenant)'): Option {
  return new Option('--tenant <name>', description).argParser(collect);
}

/**
 * The `--tenant` values, trimmed and without repeats; undefined when none was given. A value
 * that cannot be a tenant name is a usage error at once, before any configuration is read.
 */
export function toTenantFlags(values: readonly string[] | undefined): string[] | undefined {
  if (values === undefined) return undefined;
  const names = [...new Set(values.map((value) => value.trim()))];
  for (const name of names) {
    if (!isTenantName(name)) throw new UsageError(`--tenant takes ${TENANT_NAME_RULE} (got ${JSON.stringify(toSafeText(name, 60))}).`);
  }
  return names;
}

/**
 * The configured tenants the flags choose, in the configuration's order: every one without
 * `--tenant`. A name that is not configured is a usage error naming the ones that are.
 */
export function chooseTenants<T extends { readonly tenant: string }>(configs: readonly T[], flags: readonly string[] | undefined): T[] {
  if (flags === undefined) return [...configs];
  const names = configs.map((config) => config.tenant);
  checkConfigured(flags, names);
  return configs.filter((config) => flags.includes(config.tenant));
}

/** Refuse a `--tenant` name that is not among `configured` (when the configuration names any). */
export function checkConfigured(flags: readonly string[], configured: readonly string[]): void {
  if (configured.length === 0) return;
  const unknown = flags.filter((name) => !configured.includes(name));
  if (unknown.length > 0) {
    throw new UsageError(`--tenant ${unknown.join(', ')}: no such tenant; the configured tenants are ${configured.join(', ')}.`);
  }
}

/**
 * The one tenant a flag that names users, a file or a connection acts on (a user ID means
 * nothing across tenants); a usage error saying to add `--tenant NAME` when several are chosen.
 */
export function requireOneTenant(chosen: readonly { readonly tenant: string }[], flag: string): void {
  if (chosen.length <= 1) return;
  throw new UsageError(
    `${flag} names something of one tenant, and ${chosen.length} are chosen (${chosen.map((c) => c.tenant).join(', ')}): add --tenant NAME.`,
  );
}

/** Sentences for people labelled with their tenant when a command acts on several (`[prod-eu] Run 7 succeeded …`); log lines are not passed through here. */
export function labelled(io: Io, tenant: string, many: boolean): Io {
  if (!many) return io;
  return { ...io, stdout: (line) => io.stdout(`[${tenant}] ${line}`), stderr: (line) => io.stderr(`[${tenant}] ${line}`) };
}
