import { describe, expect, it } from '@jest/globals';
import { queueName, tenantJobId, tickKey, toTenantJob } from '../../../src/worker/tenant-jobs.js';

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

describe('tenant jobs (issue #23)', () => {
  it('names one queue per tenant', () => {
    expect(queueName('prod-eu')).toBe('tenant.prod-eu');
    expect(queueName('prod-us')).not.toBe(queueName('prod-eu'));
  });

  it('gives every replica the same job id for one tick of one tenant and kind, and another for anything else', () => {
    const tick = '2026-12-04T21:00:00.000Z';
    const id = tenantJobId('prod-eu', 'pass', tick);
    expect(id).toMatch(UUID);
    expect(tenantJobId('prod-eu', 'pass', tick)).toBe(id);
    expect(tenantJobId('prod-us', 'pass', tick)).not.toBe(id);
    expect(tenantJobId('prod-eu', 'follow', tick)).not.toBe(id);
    expect(tenantJobId('prod-eu', 'pass', '2026-12-04T22:00:00.000Z')).not.toBe(id);
  });

  it('keys a tick on its scheduled second, whatever the milliseconds the replicas fired it at', () => {
    expect(tickKey(new Date('2026-12-04T21:00:00.000Z'))).toBe('2026-12-04T21:00:00.000Z');
    expect(tickKey(new Date('2026-12-04T21:00:00.456Z'))).toBe('2026-12-04T21:00:00.000Z');
  });

  it('reads back only the jobs it makes', () => {
    expect(toTenantJob({ kind: 'pass', tenant: 't1', tick: 'x' })).toEqual({ kind: 'pass', tenant: 't1', tick: 'x' });
    expect(toTenantJob({ kind: 'follow', tenant: 't1', tick: 'x', args: { a: 1 } })).toEqual({ kind: 'follow', tenant: 't1', tick: 'x', args: { a: 1 } });
    expect(toTenantJob({ kind: 'import', tenant: 't1', tick: 'x' })).toBeUndefined();
    expect(toTenantJob({ kind: 'pass', tick: 'x' })).toBeUndefined();
    expect(toTenantJob(null)).toBeUndefined();
  });
});
