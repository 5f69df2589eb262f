/**
 * Fencing: what a member answers to a leader's assignment or inventory
 * request, given the terms it knows and whether it can grant the term. Pure:
 * the grant itself is TermGrants' verdict, made durable by the caller before
 * it acts on it.
 */

/** Error codes a member answers with when it refuses a leader (see RPC_ERROR_CODES). */
export type FenceRefusal =
  | { accept: false, code: 'STALE_TERM', message: string }
  | { accept: false, code: 'FORGED', message: string }
  | { accept: false, code: 'TERM_TAKEN', message: string }

export type FenceVerdict = { accept: true } | FenceRefusal

/**
 * A worker runs an assignment only when its term is not below the highest
 * term it knows, it comes from the leader it names, and that term is (or
 * now becomes) granted to that leader. `grant` is asked last, so a stale or
 * forged assignment grants nothing.
 */
export function fenceAssignment (assignment: { term: number, leader: string }, from: string, knownTerm: number, grant: () => boolean): FenceVerdict {
  if (assignment.term < knownTerm) {
    return { accept: false, code: 'STALE_TERM', message: `assignment of term ${assignment.term} refused: this node knows term ${knownTerm}` }
  }
  if (assignment.leader !== from) return { accept: false, code: 'FORGED', message: 'assignments come only from the leader itself' }
  if (!grant()) {
    return { accept: false, code: 'STALE_TERM', message: `assignment of term ${assignment.term} refused: this node granted that term, or a newer one, to another leader` }
  }
  return { accept: true }
}

/** A member answers a new leader's inventory request only when it grants it the term. */
export function fenceInventory (term: number, granted: boolean): FenceVerdict {
  if (granted) return { accept: true }
  return { accept: false, code: 'TERM_TAKEN', message: `term ${term} refused: this node granted it, or a newer one, to another leader` }
}
