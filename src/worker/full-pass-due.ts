import type { Kysely } from 'kysely';
import type { Config } from '../core/config.js';
import type { Database } from '../warehouse/schema.js';
import { readStatus } from '../status/read-status.js';
import { readLogCheckpoint } from '../warehouse/log-checkpoint.js';

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
  /**
   * Read whether a full pass is due, by the status's own rule. The checkpoint (one row) is read
   * each time; the rule (which reads the runs and the source table) only while history lost is
   * on record and not yet known to be repaired: a full pass started after the loss never un-starts.
   */
  check(): Promise<FullPassDue | undefined>;
  /** The due full pass, handed out once per loss (per `history_lost_at`): the worker starts one pass for it. */
  claim(): FullPassDue | undefined;
}

export function watchFullPassDue(db: Kysely<Database>, source: Config['source']): FullPassWatch {
  let due: FullPassDue | undefined;
  /** The `history_lost_at` (ms) the rule was last read for. */
  let checked: number | undefined;
  let claimed: number | undefined;
  return {
    get due() {
      return due;
    },
    async check() {
      const checkpoint = await readLogCheckpoint(db);
      const lostAt = checkpoint?.history_lost_at ?? null;
      if (!checkpoint || lostAt === null) {
        due = undefined;
        checked = undefined;
        return undefined;
      }
      if (due !== undefined || checked !== lostAt.getTime()) {
        const report = await readStatus(db, source, { runs: 0, failing: 0 });
        checked = lostAt.getTime();
        due = report.logs?.fullPassDue ? { historyLostAt: lostAt, reason: checkpoint.history_lost_reason } : undefined;
      }
      return due;
    },
    claim() {
      if (due === undefined || claimed === due.historyLostAt.getTime()) return undefined;
      claimed = due.historyLostAt.getTime();
      return due;
    },
  };
}
