/**
 * Retention of finished task records, pure: which finished records a holder
 * may forget, and how much of that one sweep step does. A finished record
 * expires `retainMs` after it ended (the task's own `retainMs` from its
 * submit, else the node's `retainFinishedMs`), or earlier when the node holds
 * more than `retainFinishedCount` finished records (the oldest endings go
 * first), whichever comes first. The store carries the plan out in small
 * steps so that no sweep pauses the task path.
 */

export interface RetentionPolicy {
  /** How long a finished record is kept after it ended, unless the task set its own `retainMs`. */
  retainFinishedMs: number
  /** Finished records one node keeps at most; beyond, the oldest endings are forgotten. */
  retainFinishedCount: number
}

/** What one sweep step removes. */
export interface SweepPlan {
  /** Oldest finished records to remove because the node holds more than retainFinishedCount. */
  overCount: number
  /** Records without their own retainMs that ended at or before this time (unix ms) have expired. */
  endedBefore: number
  /** Records with their own retainMs whose `finishedAt + retainMs` is at or before this time have expired. */
  expiresBy: number
  /** Most records the step removes in all. */
  limit: number
}

/**
 * The plan of one step: first the records beyond the count (they are the
 * oldest anyway), then expired ones, at most `stepLimit` in all.
 */
export function planSweep (finishedHeld: number, nowMs: number, policy: RetentionPolicy, stepLimit: number): SweepPlan {
  const over = Math.max(0, finishedHeld - policy.retainFinishedCount)
  return {
    overCount: Math.min(over, stepLimit),
    endedBefore: nowMs - policy.retainFinishedMs,
    expiresBy: nowMs,
    limit: stepLimit
  }
}

/**
 * Delay before the next sweep step: at once (after other work had its turn)
 * when this step removed as much as it may, so a backlog drains in many
 * small steps; else the idle period.
 */
export function nextSweepDelayMs (removed: number, stepLimit: number, idleMs: number): number {
  return removed >= stepLimit ? 0 : idleMs
}

/**
 * Ids of forgotten records remembered (as expired) at most, so that a read
 * can say why it finds nothing; a node remembers as many as it keeps
 * finished records (retainFinishedCount; at least 10,000), up to this.
 */
export const EXPIRED_IDS_KEPT = 100_000
