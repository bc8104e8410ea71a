/**
 * A tenant's short name (issue #23): the key of its rows in every table, its label in status
 * and metrics, its queue on the job engine. Lower-case letters, digits and hyphens, starting
 * with a letter or digit, at most 32 characters: safe in a SQL literal, a metric label, a
 * queue name and a file name without quoting.
 */
export const TENANT_NAME = /^[a-z0-9][a-z0-9-]{0,31}$/;

export const isTenantName = (name: string): boolean => TENANT_NAME.test(name);

/** What a tenant name must be, as the end of a sentence that names the setting. */
export const TENANT_NAME_RULE = 'a short name of lower-case letters, digits and hyphens (at most 32), such as prod-eu';

/**
 * The name a single tenant gets when none is set: the first label of its domain
 * (`prod-eu.eu.auth0.com` → `prod-eu`, `http://127.0.0.1:4000` → `127`), lower-cased.
 */
export function tenantNameFromDomain(baseUrl: string): string {
  try {
    return new URL(baseUrl).hostname.split('.')[0]!.toLowerCase();
  } catch {
    return '';
  }
}
