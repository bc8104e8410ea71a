import { describe, expect, it } from '@jest/globals';
import { EXIT, worseExit } from '../../src/cli/exit.js';
import { chooseTenants, requireOneTenant, toTenantFlags } from '../../src/cli/tenant-args.js';
import { UsageError } from '../../src/core/errors.js';

const configs = [{ tenant: 'prod-eu' }, { tenant: 'prod-us' }, { tenant: 'staging' }];

describe('--tenant', () => {
  it('takes tenant names, trimmed, each once; refuses anything else before reading the configuration', () => {
    expect(toTenantFlags(undefined)).toBeUndefined();
    expect(toTenantFlags([' prod-eu', 'prod-eu', 'staging'])).toEqual(['prod-eu', 'staging']);
    expect(() => toTenantFlags(['Prod EU'])).toThrow(
      new UsageError('--tenant takes a short name of lower-case letters, digits and hyphens (at most 32), such as prod-eu (got "Prod EU").'),
    );
  });

  it('chooses every configured tenant without it, the named ones in the configuration order with it, and names the configured ones for a stranger', () => {
    expect(chooseTenants(configs, undefined)).toEqual(configs);
    expect(chooseTenants(configs, ['staging', 'prod-eu'])).toEqual([configs[0], configs[2]]);
    expect(() => chooseTenants(configs, ['prod-au', 'prod-eu'])).toThrow(
      '--tenant prod-au: no such tenant; the configured tenants are prod-eu, prod-us, staging.',
    );
  });

  it('wants one tenant for a flag that names users', () => {
    expect(() => requireOneTenant([configs[0]!], '--user')).not.toThrow();
    expect(() => requireOneTenant(configs, '--user')).toThrow(
      '--user names something of one tenant, and 3 are chosen (prod-eu, prod-us, staging): add --tenant NAME.',
    );
  });

  it('exits with the worst of the tenants: fatal over locked over interrupted over partial over ok', () => {
    const worst = (codes: number[]) => codes.reduce(worseExit, EXIT.ok);
    expect(worst([EXIT.ok, EXIT.partial, EXIT.ok])).toBe(EXIT.partial);
    expect(worst([EXIT.locked, EXIT.partial, EXIT.interrupted])).toBe(EXIT.locked);
    expect(worst([EXIT.fatal, EXIT.locked])).toBe(EXIT.fatal);
    expect(worst([EXIT.ok, EXIT.ok])).toBe(EXIT.ok);
  });
});
