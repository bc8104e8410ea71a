import type { UserTokenRecords } from './normalize.js';

/** What syncing one user came to. Only `synced` carries rows; a failed user keeps its old ones. */
export type UserOutcome =
  | { status: 'synced'; userId: string; records: UserTokenRecords }
  | { status: 'not_found'; userId: string }
  | { status: 'failed'; userId: string; code: string; message: string };
