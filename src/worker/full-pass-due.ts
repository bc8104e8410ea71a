import type { Kysely } from 'kysely';
import type { UserSource } from '../source/user-ids.js';
import type { Database } from '../warehouse/schema.js';
import { readFullPassDue } from '../status/read-status.js';

/** Tenant log history was lost and no full pass has started since (`npm run status`'s fullPassDue). */
export interface FullPassDue {
  historyLostAt: Date;
  /** How the loss was detected, as the follower recorded it; null when it did not say. */
  reason: string | null;
}

/** The worker's view of a full pass due after lost log history (issue #18). */
export interface FullPassWatch {
  /** As of the last `check`; undefined when none is due. */
  readonly due: FullPassDue | undefined;
  /** Read whether a full pass is due, by the status's own rule (readFullPassDue: cheap enough for every follow). */
  check(): Promise<FullPassDue | undefined>;
  /** The due full pass, handed out once per loss (per `history_lost_at`): the worker starts one pass for it. */
  claim(): FullPassDue | undefined;
}

export function watchFullPassDue(db: Kysely<Database>, users: UserSource): FullPassWatch {
  let due: FullPassDue | undefined;
  let claimed: number | undefined;
  return {
    get due() {
      return due;
    },
    async check() {
      due = await readFullPassDue(db, users);
      return due;
    },
    claim() {
      if (due === undefined || claimed === due.historyLostAt.getTime()) return undefined;
      claimed = due.historyLostAt.getTime();
      return due;
    },
  };
}
