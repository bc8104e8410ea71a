import { describe, expect, it } from '@jest/globals';
import { sql } from 'kysely';
import type { PgInterval, RefreshTokenAsOfRow, ReportingViews } from '../../src/warehouse/schema.js';
import type { TestDatabase } from '../helpers/db.js';
import { sharedDatabase } from '../helpers/fixtures.js';

/**
 * The row types of src/warehouse/schema.ts against the database: each reporting view (and
 * `refresh_tokens_as_of`) has exactly the columns its type declares, of a matching type.
 *
 * The lists below are written out by hand, and `npm run check` (tsc) holds each to its type:
 * a column missing from a list, a column the type lacks, or a PostgreSQL type that cannot carry
 * the declared TypeScript type is a type error. This test holds the lists to the database. Not
 * checked: nullability (PostgreSQL reports every view column nullable) and literal unions such
 * as `reason`.
 */

/** The information_schema data_type a column of TypeScript type T may have (Date before PgInterval: a Date would pass for one). */
type PgType<T> = unknown extends T
  ? 'jsonb'
  : NonNullable<T> extends Date
    ? 'timestamp with time zone'
    : NonNullable<T> extends boolean
      ? 'boolean'
      : NonNullable<T> extends number
        ? 'integer' | 'bigint'
        : NonNullable<T> extends string
          ? 'text' | 'numeric' | 'inet'
          : NonNullable<T> extends readonly string[]
            ? 'ARRAY'
            : NonNullable<T> extends PgInterval
              ? 'interval'
              : never;
type Declared<T> = { [K in keyof T]-?: PgType<T[K]> };

const TIME = 'timestamp with time zone';

const COUNTS = { active_sessions: 'bigint', users: 'bigint', without_second_factor: 'bigint', first_authenticated_at: TIME, last_interacted_at: TIME } as const;

const VIEWS: { [V in keyof ReportingViews]: Declared<ReportingViews[V]> } = {
  // Issue #22: sessions beside tokens.
  'auth0.active_sessions': {
    tenant: 'text',
    id: 'text',
    user_id: 'text',
    created_at: TIME,
    updated_at: TIME,
    authenticated_at: TIME,
    last_interacted_at: TIME,
    idle_expires_at: TIME,
    expires_at: TIME,
    initial_ip: 'inet',
    initial_asn: 'text',
    initial_user_agent: 'text',
    last_ip: 'inet',
    last_asn: 'text',
    last_user_agent: 'text',
    client_ids: 'ARRAY',
    authentication_methods: 'jsonb',
    methods: 'ARRAY',
    has_second_factor: 'boolean',
    first_seen_at: TIME,
    last_changed_at: TIME,
  },
  'auth0.refresh_tokens_with_session': {
    tenant: 'text',
    token_id: 'text',
    user_id: 'text',
    client_id: 'text',
    session_id: 'text',
    token_created_at: TIME,
    token_expires_at: TIME,
    token_idle_expires_at: TIME,
    last_exchanged_at: TIME,
    token_first_seen_at: TIME,
    token_deleted_at: TIME,
    token_live: 'boolean',
    session_found: 'boolean',
    session_created_at: TIME,
    authenticated_at: TIME,
    last_interacted_at: TIME,
    session_expires_at: TIME,
    session_idle_expires_at: TIME,
    session_deleted_at: TIME,
    session_live: 'boolean',
    authentication_methods: 'jsonb',
    methods: 'ARRAY',
    has_second_factor: 'boolean',
    session_initial_ip: 'inet',
    session_last_ip: 'inet',
    session_last_asn: 'text',
    session_last_user_agent: 'text',
    sessions_synced_at: TIME,
  },
  'auth0.refresh_tokens_outliving_session': {
    tenant: 'text',
    token_id: 'text',
    user_id: 'text',
    client_id: 'text',
    session_id: 'text',
    token_created_at: TIME,
    token_expires_at: TIME,
    token_idle_expires_at: TIME,
    last_exchanged_at: TIME,
    why: 'text',
    session_ended_at: TIME,
    authenticated_at: TIME,
    methods: 'ARRAY',
    has_second_factor: 'boolean',
    session_last_ip: 'inet',
    session_last_user_agent: 'text',
  },
  'auth0.refresh_tokens_without_second_factor': {
    tenant: 'text',
    token_id: 'text',
    user_id: 'text',
    client_id: 'text',
    session_id: 'text',
    token_created_at: TIME,
    token_expires_at: TIME,
    last_exchanged_at: TIME,
    session_live: 'boolean',
    authenticated_at: TIME,
    methods: 'ARRAY',
    session_last_ip: 'inet',
    session_last_user_agent: 'text',
  },
  'auth0.sessions_per_device': { tenant: 'text', last_user_agent: 'text', last_ip: 'inet', last_asn: 'text', ...COUNTS },
  'auth0.sessions_per_client': { tenant: 'text', client_id: 'text', ...COUNTS },
  'auth0.active_refresh_tokens': {
    tenant: 'text',
    id: 'text',
    user_id: 'text',
    client_id: 'text',
    session_id: 'text',
    rotating: 'boolean',
    created_at: TIME,
    idle_expires_at: TIME,
    expires_at: TIME,
    last_exchanged_at: TIME,
    metadata: 'jsonb',
    raw: 'jsonb',
    first_seen_at: TIME,
    last_changed_at: TIME,
    deleted_at: TIME,
    first_seen_run_id: 'integer',
    last_changed_run_id: 'integer',
    last_seen_at: TIME,
    initial_ip: 'inet',
    initial_asn: 'text',
    initial_user_agent: 'text',
    last_ip: 'inet',
    last_asn: 'text',
    last_user_agent: 'text',
    audiences: 'ARRAY',
    scopes: 'ARRAY',
  },
  'auth0.refresh_tokens_per_client': {
    tenant: 'text',
    client_id: 'text',
    active_tokens: 'bigint',
    users: 'bigint',
    rotating_share: 'numeric',
    oldest_created_at: TIME,
    last_exchanged_at: TIME,
  },
  'auth0.refresh_tokens_expiring_soon': {
    tenant: 'text',
    id: 'text',
    user_id: 'text',
    client_id: 'text',
    expires_at: TIME,
    idle_expires_at: TIME,
    expires_first_at: TIME,
    reason: 'text',
  },
  'auth0.refresh_tokens_location_changed': {
    tenant: 'text',
    id: 'text',
    user_id: 'text',
    client_id: 'text',
    initial_ip: 'inet',
    initial_asn: 'text',
    initial_user_agent: 'text',
    last_ip: 'inet',
    last_asn: 'text',
    last_user_agent: 'text',
    last_exchanged_at: TIME,
    ip_changed: 'boolean',
    asn_changed: 'boolean',
  },
  'auth0.refresh_tokens_unused': {
    tenant: 'text',
    id: 'text',
    user_id: 'text',
    client_id: 'text',
    created_at: TIME,
    last_exchanged_at: TIME,
    last_used_at: TIME,
    unused_for: 'interval',
  },
  'auth0.recent_token_changes': {
    tenant: 'text',
    observed_at: TIME,
    change: 'text',
    token_id: 'text',
    user_id: 'text',
    email: 'text',
    client_id: 'text',
    session_id: 'text',
    old_value: 'text',
    new_value: 'text',
    run_id: 'integer',
    reason: 'text',
    reason_log_id: 'text',
    reason_client_id: 'text',
  },
  'auth0.refresh_token_deletions': {
    tenant: 'text',
    observed_at: TIME,
    token_id: 'text',
    user_id: 'text',
    email: 'text',
    client_id: 'text',
    session_id: 'text',
    reason: 'text',
    reason_log_id: 'text',
    reason_client_id: 'text',
    run_id: 'integer',
  },
  'auth0.refresh_token_scopes': {
    tenant: 'text',
    token_id: 'text',
    user_id: 'text',
    client_id: 'text',
    audience: 'text',
    scopes: 'ARRAY',
  },
  'auth0.refresh_token_deletions_by_reason': {
    tenant: 'text',
    day: TIME,
    reason: 'text',
    deletions: 'integer',
    users: 'integer',
  },
};

const AS_OF: Declared<RefreshTokenAsOfRow> = {
  tenant: 'text',
  id: 'text',
  user_id: 'text',
  client_id: 'text',
  session_id: 'text',
  rotating: 'boolean',
  created_at: TIME,
  expires_at: TIME,
  idle_expires_at: TIME,
  first_seen_at: TIME,
  live_since: TIME,
  deleted_at: TIME,
};

const { withDatabase } = sharedDatabase();

/** column → data_type of a view of schema auth0 (`auth0.name`). */
async function viewColumns(t: TestDatabase, view: string): Promise<Record<string, string>> {
  const { rows } = await sql<{ column_name: string; data_type: string }>`
    select column_name, data_type from information_schema.columns
    where table_schema = 'auth0' and table_name = ${view.replace(/^auth0\./, '')}`.execute(t.db);
  return Object.fromEntries(rows.map((r) => [r.column_name, r.data_type]));
}

describe('the row types of the reporting views', () => {
  it('declare every view of schema auth0', () =>
    withDatabase(async (t) => {
      const { rows } = await sql<{ name: string }>`
      select 'auth0.' || table_name as name from information_schema.views where table_schema = 'auth0' order by 1`.execute(t.db);
      expect(rows.map((r) => r.name)).toEqual(Object.keys(VIEWS).sort());
    }));

  it.each(Object.keys(VIEWS) as (keyof ReportingViews)[])('match the columns of %s', (view) =>
    withDatabase(async (t) => {
      expect(await viewColumns(t, view)).toEqual(VIEWS[view]);
    }),
  );

  it('match the columns refresh_tokens_as_of returns', () =>
    withDatabase(async (t) => {
      const { rows } = await sql<{ parameter_name: string; data_type: string }>`
      select p.parameter_name, p.data_type from information_schema.parameters p
      join information_schema.routines r on r.specific_schema = p.specific_schema and r.specific_name = p.specific_name
      where r.routine_schema = 'auth0' and r.routine_name = 'refresh_tokens_as_of' and p.parameter_mode = 'OUT'`.execute(t.db);
      expect(Object.fromEntries(rows.map((r) => [r.parameter_name, r.data_type]))).toEqual(AS_OF);
    }));

  it('notice a column that drifts', () =>
    withDatabase(async (t) => {
      await sql`alter view auth0.refresh_tokens_unused rename column unused_for to idle_for`.execute(t.db);
      try {
        const columns = await viewColumns(t, 'auth0.refresh_tokens_unused');
        expect(columns).not.toEqual(VIEWS['auth0.refresh_tokens_unused']);
        expect(columns).toMatchObject({ idle_for: 'interval' });
      } finally {
        await sql`alter view auth0.refresh_tokens_unused rename column idle_for to unused_for`.execute(t.db);
      }
    }));
});
