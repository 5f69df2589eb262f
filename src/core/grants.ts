/**
 * Term grants, the vote of Raft's election carried by the new leader's
 * inventory request: a member grants each term to one leader only, and never
 * goes back to an older term. A leader dispatches only once its gathering has
 * been granted by every member that answered (and, with `quorum` set, by at
 * least `quorum` of them, itself included); a refusal means another leader
 * took that term, and the leader claims a newer one. Two quorums always share
 * a member, so with a majority quorum at most one leader dispatches per term.
 * Workers grant too: an assignment is run only if its term is granted to the
 * leader that sent it, so even without a quorum no worker runs assignments of
 * one term from two leaders.
 *
 * Pure: the caller persists `current` before it answers (a restarted member
 * must not grant a term twice).
 */
export interface Grant {
  term: number
  leader: string
}

export type GrantVerdict =
  | { granted: true, changed: boolean }
  | { granted: false, reason: 'stale' | 'taken', current: Grant }

export class TermGrants {
  #current: Grant | null

  constructor (initial: Grant | null = null) {
    this.#current = initial
  }

  get current (): Grant | null { return this.#current }

  /** Grants `term` to `leader` unless it went to another leader or a newer term was granted. */
  grant (term: number, leader: string): GrantVerdict {
    const c = this.#current
    if (c === null || term > c.term) {
      this.#current = { term, leader }
      return { granted: true, changed: true }
    }
    if (term === c.term && leader === c.leader) return { granted: true, changed: false }
    return { granted: false, reason: term === c.term ? 'taken' : 'stale', current: { ...c } }
  }
}
