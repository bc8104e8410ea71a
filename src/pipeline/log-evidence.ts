/**
 * What the tenant's own logs said about the users of a run (issue #18), for the writer: whose
 * loss of tokens is expected, who was deleted, who is alive again. A `logs` run gets it from the
 * follow that started it; a pass gets it through the priority lane with each hand-off. A run
 * without it (a pass on its own, a manual sync) explains nothing.
 */
export interface LogEvidence {
  /** Users whose entries explain a loss of tokens: never counted by the deletion guard. */
  readonly explained: ReadonlySet<string>;
  /** Users the tenant deleted: `removed_at` is set once a listing confirms it (404) in the same write. */
  readonly deleted: ReadonlySet<string>;
  /** Users the tenant shows alive (last lifecycle entry after any deletion): `removed_at` is cleared. */
  readonly alive: ReadonlySet<string>;
}

/** Evidence that can take more (the lane's, filled by hand-offs while a pass runs). */
export interface GrowingLogEvidence extends LogEvidence {
  add(more: Partial<Record<keyof LogEvidence, Iterable<string>>>): void;
  clear(): void;
}

export function createLogEvidence(from: Partial<Record<keyof LogEvidence, Iterable<string>>> = {}): GrowingLogEvidence {
  const explained = new Set<string>();
  const deleted = new Set<string>();
  const alive = new Set<string>();
  const evidence: GrowingLogEvidence = {
    explained,
    deleted,
    alive,
    add(more) {
      for (const id of more.explained ?? []) explained.add(id);
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
      explained.clear();
      deleted.clear();
      alive.clear();
    },
  };
  evidence.add(from);
  return evidence;
}
