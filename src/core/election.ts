/**
 * Leader election as a pure verdict over a membership view, in the manner of
 * Akka Cluster and Hazelcast: when no live member claims leadership, the
 * oldest live member leads. "Oldest" is the earliest incarnation; ties are
 * broken by member id. Because a member that joins (or rejoins) always takes
 * an incarnation later than every one it has heard of, a newcomer never
 * displaces a live leader. A working leader keeps office over an older
 * member that comes back (sticky leadership, as raft's PreVote and
 * CheckQuorum make it): ClusterCore follows the best live claim (claimBeats)
 * before it asks electLeader.
 */

export interface Candidate {
  id: string
  incarnation: number
}

/** True when `a` is older than `b` (and so ranks before it for leadership). */
export function isOlder (a: Candidate, b: Candidate): boolean {
  return a.incarnation < b.incarnation || (a.incarnation === b.incarnation && a.id < b.id)
}

/** The oldest candidate's id, or null when there is none. Order of input does not matter. */
export function electLeader (candidates: Iterable<Candidate>): string | null {
  let best: Candidate | null = null
  for (const c of candidates) {
    if (best === null || isOlder(c, best)) best = c
  }
  return best === null ? null : best.id
}

/**
 * A leadership claim as carried in heartbeats. Between two conflicting
 * claims (two members each believing it leads, e.g. after a partition heals)
 * the higher term wins; at equal terms the older leader wins.
 */
export interface Claim {
  term: number
  leader: Candidate
}

/** True when claim `a` supersedes claim `b`. */
export function claimBeats (a: Claim, b: Claim): boolean {
  if (a.term !== b.term) return a.term > b.term
  return isOlder(a.leader, b.leader)
}
