/**
 * A warehouse of two tenants written row by row (issue #23), for the report's and the Grafana
 * dashboard's tests: small enough that every number is known, with the same token and user IDs
 * in both tenants, so a join that forgot `tenant` counts them twice.
 */
import type { TestDatabase } from '../helpers/db.js';

const DAY = 86_400_000;

/**
 * prod-eu: 3 live tokens (2 users, 2 applications), one of them used from a new network, one
 * expiring within 7 days; one deleted token. prod-us: 2 live tokens with the same IDs as two of
 * prod-eu's (other user and application), one unused for 40 days, one unexplained deletion.
 */
export async function seedTwoTenants(t: TestDatabase): Promise<void> {
  const now = Date.now();
  const ago = (days: number) => new Date(now - days * DAY);
  const token = (tenant: string, id: string, userId: string, clientId: string, extra: Record<string, unknown> = {}) => ({
    tenant,
    id,
    user_id: userId,
    client_id: clientId,
    rotating: true,
    created_at: ago(10),
    expires_at: new Date(now + 60 * DAY),
    raw: JSON.stringify({ id }),
    first_seen_at: ago(10),
    last_changed_at: ago(1),
    ...extra,
  });
  await t.db
    .insertInto('auth0.refresh_tokens')
    .values([
      token('prod-eu', 'rt_1', 'auth0|a', 'app-eu-1'),
      token('prod-eu', 'rt_2', 'auth0|a', 'app-eu-2', { expires_at: new Date(now + 2 * DAY) }),
      token('prod-eu', 'rt_3', 'auth0|b', 'app-eu-1'),
      token('prod-eu', 'rt_gone', 'auth0|b', 'app-eu-1', { deleted_at: ago(0.5) }),
      token('prod-us', 'rt_1', 'auth0|x', 'app-us', { last_exchanged_at: ago(40) }),
      token('prod-us', 'rt_2', 'auth0|x', 'app-us'),
    ])
    .execute();
  await t.db
    .insertInto('auth0.refresh_token_resource_servers')
    .values([
      { tenant: 'prod-eu', token_id: 'rt_1', audience: 'https://api.eu', scopes: null },
      { tenant: 'prod-eu', token_id: 'rt_2', audience: 'https://api.eu', scopes: null },
      { tenant: 'prod-us', token_id: 'rt_1', audience: 'https://api.us', scopes: null },
    ])
    .execute();
  await t.db
    .insertInto('auth0.refresh_token_devices')
    .values([
      { tenant: 'prod-eu', token_id: 'rt_1', initial_ip: '192.0.2.1', initial_asn: '64500', last_ip: '198.51.100.7', last_asn: '64501' },
      { tenant: 'prod-us', token_id: 'rt_1', initial_ip: '192.0.2.9', initial_asn: '64600', last_ip: '192.0.2.9', last_asn: '64600' },
    ])
    .execute();
  await t.db
    .insertInto('auth0.refresh_token_changes')
    .values([
      ...['rt_1', 'rt_2', 'rt_3', 'rt_gone'].map((id) => ({
        tenant: 'prod-eu',
        token_id: id,
        user_id: 'auth0|a',
        change: 'created' as const,
        observed_at: ago(10),
      })),
      { tenant: 'prod-eu', token_id: 'rt_gone', user_id: 'auth0|b', change: 'deleted', reason: 'revoked_by_user', observed_at: ago(0.5) },
      ...['rt_1', 'rt_2', 'rt_old'].map((id) => ({ tenant: 'prod-us', token_id: id, user_id: 'auth0|x', change: 'created' as const, observed_at: ago(10) })),
      { tenant: 'prod-us', token_id: 'rt_old', user_id: 'auth0|x', change: 'deleted', reason: 'unexplained', observed_at: ago(0.2) },
    ])
    .execute();
  await t.db
    .insertInto('auth0.sync_runs')
    .values([
      { tenant: 'prod-eu', trigger: 'schedule', status: 'succeeded', started_at: ago(1), finished_at: new Date(now - DAY + 60_000), requests: 5 },
      { tenant: 'prod-us', trigger: 'schedule', status: 'succeeded', started_at: ago(2), finished_at: new Date(now - 2 * DAY + 60_000), requests: 7 },
      { tenant: 'prod-us', trigger: 'manual', status: 'failed', started_at: ago(0.5), finished_at: new Date(now - 0.5 * DAY + 1000), requests: 1 },
    ])
    .execute();
  await t.db
    .insertInto('auth0.users')
    .values([
      { tenant: 'prod-eu', user_id: 'auth0|a' },
      { tenant: 'prod-eu', user_id: 'auth0|b' },
      { tenant: 'prod-us', user_id: 'auth0|x' },
      { tenant: 'prod-us', user_id: 'auth0|a' },
    ])
    .execute();
  await t.db
    .insertInto('auth0.user_sync_state')
    .values([
      { tenant: 'prod-eu', user_id: 'auth0|a', status: 'synced', last_attempt_at: ago(1), last_success_at: ago(1) },
      { tenant: 'prod-eu', user_id: 'auth0|b', status: 'synced', last_attempt_at: ago(1), last_success_at: ago(1) },
      { tenant: 'prod-us', user_id: 'auth0|x', status: 'synced', last_attempt_at: ago(2), last_success_at: ago(2) },
      { tenant: 'prod-us', user_id: 'auth0|a', status: 'synced', last_attempt_at: ago(3), last_success_at: ago(3) },
    ])
    .execute();
  await t.db
    .insertInto('auth0.log_checkpoint')
    .values([
      { tenant: 'prod-eu', log_id: '10', lag_seconds: 5, updated_at: ago(0.01) },
      { tenant: 'prod-us', log_id: '20', lag_seconds: 90, updated_at: ago(0.01) },
    ])
    .execute();
}
