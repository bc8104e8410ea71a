import { expect } from '@jest/globals';
import type { Kysely } from 'kysely';
import type { Database } from '../../src/warehouse/schema.js';
import type { FakeAuth0 } from './fake-auth0.js';
import { TEST_TENANT } from './db.js';

/** Every live token, device and resource server the warehouse holds for `tenant` equals what the API lists. */
export async function expectWarehouseMatchesApi(db: Kysely<Database>, fake: FakeAuth0, tenant = TEST_TENANT): Promise<void> {
  const tokens = await db.selectFrom('auth0.refresh_tokens').selectAll().where('tenant', '=', tenant).where('deleted_at', 'is', null).orderBy('id').execute();
  const expected = [...fake.users.values()].flat().sort((a, b) => String(a.id).localeCompare(String(b.id)));
  expect(tokens.map((r) => r.id)).toEqual(expected.map((e) => e.id));
  const devices = await db.selectFrom('auth0.refresh_token_devices').selectAll().where('tenant', '=', tenant).execute();
  const devicesById = new Map(devices.map((d) => [d.token_id, d]));
  const servers = await db.selectFrom('auth0.refresh_token_resource_servers').selectAll().where('tenant', '=', tenant).execute();
  tokens.forEach((row, i) => {
    const api = expected[i]!;
    expect(row.raw).toEqual(api);
    expect(row).toMatchObject({
      user_id: api.user_id,
      client_id: api.client_id ?? null,
      session_id: api.session_id ?? null,
      rotating: api.rotating ?? null,
      metadata: api.refresh_token_metadata ?? null,
    });
    for (const field of ['created_at', 'idle_expires_at', 'expires_at', 'last_exchanged_at'] as const) {
      expect(row[field]?.toISOString() ?? null).toBe(api[field] ?? null);
    }
    const device = devicesById.get(row.id);
    const nulls = { initial_ip: null, initial_asn: null, initial_user_agent: null, last_ip: null, last_asn: null, last_user_agent: null };
    if (api.device) expect(device).toEqual({ tenant, token_id: row.id, ...nulls, ...(api.device as object) });
    else expect(device).toBeUndefined();
    const apiServers = (api.resource_servers as { audience: string; scopes: string }[] | undefined) ?? [];
    expect(servers.filter((s) => s.token_id === row.id).sort((a, b) => a.audience.localeCompare(b.audience))).toEqual(
      apiServers.map((s) => ({ tenant, token_id: row.id, ...s })).sort((a, b) => a.audience.localeCompare(b.audience)),
    );
  });
}
