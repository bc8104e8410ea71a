import type { Migration } from 'kysely';
import * as createWarehouse from './2026_11_26_0900_create_warehouse.js';
import * as changeHistory from './2026_11_26_1000_change_history.js';
import * as reportingViews from './2026_11_26_1100_reporting_views.js';
import * as brinChangeTime from './2026_11_26_1200_brin_change_time.js';
import * as deletionGuard from './2026_12_01_1000_deletion_guard.js';
import * as tokensEndpoint from './2026_12_01_1100_tokens_endpoint.js';
import * as runLease from './2026_12_01_1200_run_lease.js';
import * as quietWrites from './2026_12_01_1300_quiet_writes.js';
import * as usersImport from './2026_12_01_1400_users_import.js';
import * as logCheckpoint from './2026_12_01_1500_log_checkpoint.js';
import * as schemaDocsForensics from './2026_12_01_1800_schema_docs_forensics.js';
import * as followerBadDay from './2026_12_04_1000_follower_bad_day.js';
import * as sessions from './2026_12_04_1800_sessions.js';
import * as changeReasons from './2026_12_04_1900_change_reasons.js';
import * as typedColumns from './2026_12_04_1910_typed_columns.js';
import * as sessionCounts from './2026_12_04_2000_session_counts.js';
import * as tenants from './2026_12_05_1000_tenants.js';

/**
 * Every migration, listed statically: Kysely's FileMigrationProvider imports by path at run
 * time, which trips over Jest's module loader and bundlers. Names sort in the order they run.
 * Never edit a migration that has run; add a new file and a line here.
 */
export const migrations: Record<string, Migration> = {
  '2026_11_26_0900_create_warehouse': createWarehouse,
  '2026_11_26_1000_change_history': changeHistory,
  '2026_11_26_1100_reporting_views': reportingViews,
  '2026_11_26_1200_brin_change_time': brinChangeTime,
  '2026_12_01_1000_deletion_guard': deletionGuard,
  '2026_12_01_1100_tokens_endpoint': tokensEndpoint,
  '2026_12_01_1200_run_lease': runLease,
  '2026_12_01_1300_quiet_writes': quietWrites,
  '2026_12_01_1400_users_import': usersImport,
  '2026_12_01_1500_log_checkpoint': logCheckpoint,
  '2026_12_01_1800_schema_docs_forensics': schemaDocsForensics,
  '2026_12_04_1000_follower_bad_day': followerBadDay,
  '2026_12_04_1800_sessions': sessions,
  '2026_12_04_1900_change_reasons': changeReasons,
  '2026_12_04_1910_typed_columns': typedColumns,
  '2026_12_04_2000_session_counts': sessionCounts,
  '2026_12_05_1000_tenants': tenants,
};
