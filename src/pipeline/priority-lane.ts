/**
 * The priority lane of a running pass (issue #10): how the worker's log follower hands the users
 * named in new log entries to the full or budgeted pass already holding the run lock, instead of
 * waiting hours for it to end. The pass (src/pipeline/pipeline.ts) takes lane users before its next
 * source user, through the same run, lease, writer and rate limiter, so no second writer ever
 * touches a user. Each hand-off resolves once every user in it was written (synced, gone or
 * recorded as failed), or as incomplete when the pass stopped first: only a complete hand-off
 * lets the follower move its checkpoint.
 */

import { createLogEvidence, type GrowingLogEvidence, type LogEvidence, type LogEvidenceInput } from './log-evidence.js';

/** What a hand-off came to. */
export interface HandOffResult {
  /** Every user was written (or recorded as failed) by the pass. */
  complete: boolean;
  /** The pass's run. */
  runId: number;
}

interface HandOff {
  remaining: number;
  complete: boolean;
  resolve: (result: HandOffResult) => void;
}

/** Users the pass took from the lane: settle it once they are written or abandoned. */
export interface LaneTicket {
  readonly userId: string;
  /** `written`: the user's outcome is in the warehouse; false: the pass abandoned the user. */
  settle(written: boolean): void;
}

export interface PriorityLane {
  /**
   * Hand users to the running pass. Undefined when no pass is taking users (none runs, or it has
   * taken its last one): the caller syncs them itself.
   */
  hand(userIds: readonly string[], evidence?: LogEvidenceInput): Promise<HandOffResult> | undefined;
  /** What the logs said about the users handed over (issue #18): the pass's writer plans with it. */
  readonly evidence: LogEvidence;
  /** Users waiting in the lane. */
  readonly waiting: number;
  /** A pass is taking hand-offs now. */
  readonly accepting: boolean;
  /** For the pipeline: the pass `runId` starts taking users; `onHand` wakes it when some arrive. */
  open(runId: number, onHand: () => void): void;
  /** For the pipeline: the oldest waiting user that `isBusy` does not reject (with every hand-off naming it). */
  take(isBusy: (userId: string) => boolean): LaneTicket | undefined;
  /** For the pipeline: no more hand-offs; those waiting are still taken. */
  closeIntake(): void;
  /** For the pipeline: the pass is over; whatever is still waiting or unsettled is incomplete. */
  finish(): void;
}

export interface PriorityLaneEvents {
  /** A pass opened the lane (it takes hand-offs from now until it closes its intake). */
  onOpen?: () => void;
}

export function createPriorityLane(events: PriorityLaneEvents = {}): PriorityLane {
  let runId: number | undefined;
  let intake = false;
  let wake: (() => void) | undefined;
  /** Waiting users, oldest first (a Map keeps insertion order), with every hand-off naming each. */
  const queue = new Map<string, HandOff[]>();
  const open = new Set<HandOff>();
  const evidence: GrowingLogEvidence = createLogEvidence();

  const settleOne = (handOff: HandOff, written: boolean) => {
    if (!open.has(handOff)) return; // the pass already finished: resolved as incomplete
    handOff.complete &&= written;
    handOff.remaining -= 1;
    if (handOff.remaining === 0) {
      open.delete(handOff);
      handOff.resolve({ complete: handOff.complete, runId: runId! });
    }
  };

  return {
    hand(userIds, said) {
      if (!intake || runId === undefined) return undefined;
      if (said) evidence.add(said);
      const unique = [...new Set(userIds)];
      const id = runId;
      if (unique.length === 0) return Promise.resolve({ complete: true, runId: id });
      return new Promise<HandOffResult>((resolve) => {
        const handOff: HandOff = { remaining: unique.length, complete: true, resolve };
        open.add(handOff);
        for (const userId of unique) {
          const handOffs = queue.get(userId);
          if (handOffs) handOffs.push(handOff);
          else queue.set(userId, [handOff]);
        }
        wake?.();
      });
    },
    evidence,
    get waiting() {
      return queue.size;
    },
    get accepting() {
      return intake && runId !== undefined;
    },
    open(id, onHand) {
      runId = id;
      intake = true;
      wake = onHand;
      events.onOpen?.();
    },
    take(isBusy) {
      let userId: string | undefined;
      for (const waiting of queue.keys()) {
        if (isBusy(waiting)) continue;
        userId = waiting;
        break;
      }
      if (userId === undefined) return undefined;
      // Every waiting hand-off naming this user is served by this one fetch: it starts after all of them.
      const handOffs = queue.get(userId)!;
      queue.delete(userId);
      let settled = false;
      return {
        userId,
        settle(written) {
          if (settled) return;
          settled = true;
          for (const handOff of handOffs) settleOne(handOff, written);
        },
      };
    },
    closeIntake() {
      intake = false;
    },
    finish() {
      intake = false;
      wake = undefined;
      for (const handOff of open) handOff.resolve({ complete: false, runId: runId! });
      open.clear();
      queue.clear();
      evidence.clear();
      runId = undefined;
    },
  };
}
