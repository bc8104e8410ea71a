import type { LogExplanation } from './deletion-reason.js';

/**
 * What the tenant's own logs said about the users of a run (issue #18), for the writer: the
 * entries that explain a loss of tokens (with their reasons and log ids, issue #22), who was
 * deleted, who is alive again. A `logs` run gets it from the follow that started it; a pass gets
 * it through the priority lane with each hand-off. A run without it (a pass on its own, a manual
 * sync) explains nothing but expiry (src/pipeline/deletion-reason.ts).
 */
export interface LogEvidence {
  /** Per user, the entries that explain a loss of its tokens, in log order. */
  readonly explanations: ReadonlyMap<string, readonly LogExplanation[]>;
  /** Users the tenant deleted: `removed_at` is set once a listing confirms it (404) in the same write. */
  readonly deleted: ReadonlySet<string>;
  /** Users the tenant shows alive (last lifecycle entry after any deletion): `removed_at` is cleared. */
  readonly alive: ReadonlySet<string>;
}

/** Evidence as it is handed on: explanations as a list (each names its user). */
export interface LogEvidenceInput {
  explanations?: Iterable<LogExplanation>;
  deleted?: Iterable<string>;
  alive?: Iterable<string>;
}

/** Evidence that can take more (the lane's, filled by hand-offs while a pass runs). */
export interface GrowingLogEvidence extends LogEvidence {
  add(more: LogEvidenceInput): void;
  clear(): void;
}

export function createLogEvidence(from: LogEvidenceInput = {}): GrowingLogEvidence {
  const explanations = new Map<string, LogExplanation[]>();
  const deleted = new Set<string>();
  const alive = new Set<string>();
  const evidence: GrowingLogEvidence = {
    explanations,
    deleted,
    alive,
    add(more) {
      for (const explanation of more.explanations ?? []) {
        const known = explanations.get(explanation.userId);
        if (!known) explanations.set(explanation.userId, [explanation]);
        // The same entry handed on twice (a retry, a second hand-off) counts once.
        else if (explanation.logId === undefined || !known.some((k) => k.logId === explanation.logId && k.reason === explanation.reason))
          known.push(explanation);
      }
      // The later word wins: a user deleted and created again is alive, and the other way round.
      for (const id of more.deleted ?? []) {
        alive.delete(id);
        deleted.add(id);
      }
      for (const id of more.alive ?? []) {
        deleted.delete(id);
        alive.add(id);
      }
    },
    clear() {
      explanations.clear();
      deleted.clear();
      alive.clear();
    },
  };
  evidence.add(from);
  return evidence;
}

/** The evidence as a hand-off carries it. */
export function toEvidenceInput(evidence: LogEvidence): LogEvidenceInput {
  return { explanations: [...evidence.explanations.values()].flat(), deleted: evidence.deleted, alive: evidence.alive };
}
