/**
 * The verdicts behind sticky leadership (ClusterCore asks them at every
 * step): who is in office as a node hears it, whether it may take office
 * itself (raft's PreVote, over heartbeats), and whether an accusation of
 * death needs a refutation. Pure functions of a node's membership view.
 */
import { claimBeats, isOlder } from './election.ts'
import type { Candidate, Claim } from './election.ts'
import type { Heartbeat, Member } from './types.ts'
import { isGone } from './membership.ts'

/** What these verdicts read of a membership view. */
export interface ViewReader {
  live: () => Member[]
  get: (id: string) => Member | undefined
}

/**
 * The leader in office as a node hears it: of the live members that claim
 * leadership in their last heartbeat (name themselves), and `own` (the
 * node's claim while it leads), the best claim (higher term, then the older
 * leader). A member that comes back older than that leader (from a
 * partition or a pause, its incarnation intact) follows it instead of taking
 * over by age. Null when nobody live claims: then the oldest leads.
 */
export function workingLeader (view: ViewReader, own: Claim | null): string | null {
  let best = own
  for (const m of view.live()) {
    if (m.status === 'draining' || m.claim.leader !== m.id) continue
    const claim: Claim = { term: m.claim.term, leader: { id: m.id, incarnation: m.incarnation } }
    if (best === null || claimBeats(claim, best)) best = claim
  }
  return best?.leader.id ?? null
}

/**
 * PreVote's quorum: `quorum` members (the candidate `self` included) would
 * vote for it now, as their last heartbeats show: each is `alive` (heard
 * within half its silence limit) and names `self` or no leader, so it too
 * has lost the old leader. A member in its join window votes only by naming
 * `self` (it has heard `self`, and no claim that beats it): one that names
 * nobody may not have heard anyone yet. So a member that restarts, or
 * resumes from a long pause, restores a lost quorum within a few heartbeats
 * (a node that lost its quorum listens two intervals first: cut-off.ts)
 * instead of after its join window. A member cut off with a minority never gathers
 * them (the majority's members name their own leader), also in the moments
 * when it has declared the old leader dead but not yet the members cut off
 * with it (a follower of a large cluster publishes slowly, and is declared
 * dead late); so it claims no term there, one that would make the
 * majority's leader claim above it at the heal.
 */
export function preVoteQuorum (view: ViewReader, self: string, quorum: number): boolean {
  if (quorum <= 0) return true
  return view.live().filter(m => m.status === 'alive' && (m.claim.leader === self || (!m.joining && m.claim.leader === null))).length + 1 >= quorum
}

/**
 * PreVote's "is there a leader I have not heard?": an alive member names a
 * leader this node (`self`) does not know (it is back from a partition or a
 * pause and has not heard the leader's claim yet: it learns the leader
 * first, then follows), or, as SWIM's indirect probes, one it declared dead
 * that the member still names `afterMs` after it fell silent here. A crashed
 * leader is noticed by every member within a heartbeat or two, so waiting
 * for them costs little; one lossy link cannot make a follower claim
 * leadership over a live leader.
 */
export function othersFollowAnUnheardLeader (view: ViewReader, self: string, afterMs: number): boolean {
  return view.live().some(m => {
    if (m.status !== 'alive' || m.claim.leader === null || m.claim.leader === self) return false
    const named = view.get(m.claim.leader)
    return named === undefined || (named.status === 'dead' && m.lastHeardMs > named.lastHeardMs + afterMs)
  })
}

/**
 * Whether the sender of `hb`, which lists `self` as dead, refuses `self`'s
 * heartbeats until it refutes: only while it follows a leader not older than
 * `self` (members admit a returning member older than their leader only
 * under a new incarnation). A sender that follows nobody (back from a
 * minority without a quorum) takes `self` back as it is; refuting anyway
 * would make every member of the majority the youngest at a heal and move
 * leadership to the minority.
 */
export function accuserRefuses (hb: Heartbeat, view: ViewReader, self: Candidate): boolean {
  if (hb.leader === null) return false
  if (hb.leader === self.id) return true
  const named = view.get(hb.leader)
  return named === undefined || !isOlder(named, self)
}

/**
 * Claims that would depose this leader (its own term, from an older leader)
 * heard from a member it holds dead in that incarnation: one back from the
 * far side of a partition. Such a heartbeat may be old: at a heal gossip
 * hands on heartbeats sent while the partition held them back, among them
 * the claims of a leader that has since stepped down (it lost its quorum)
 * or been deposed. So the leader yields only to a claim that still stands
 * `windowMs` after the first such heartbeat, in a heartbeat newer than
 * every one heard from that member before (its sequence number, which the
 * view keeps also for a member it refuses): by then the member's current
 * heartbeats have arrived, and a stale one is older than them. A higher
 * term deposes at once, as in raft; so does a claimant held live (its old
 * heartbeats were heard, not held back) or not known at all (a first
 * contact: gossip replays seconds, a forgotten member was dead for
 * deadRetentionMs).
 */
export class ReturningClaims {
  readonly #windowMs: number
  readonly #firstHeardMs = new Map<string, { incarnation: number, atMs: number }>()

  constructor (windowMs: number) {
    this.#windowMs = windowMs
  }

  /**
   * Whether the deposing claim in `hb` (same term as `ownTerm` or above)
   * stands: at once unless it is in `ownTerm` from a sender `known` as gone
   * in that incarnation; then once it has been heard for the window.
   */
  stands (hb: Heartbeat, known: Member | undefined, ownTerm: number, nowMs: number): boolean {
    if (hb.term > ownTerm || known === undefined || known.incarnation !== hb.incarnation || !isGone(known.status)) return true
    const first = this.#firstHeardMs.get(hb.id)
    if (first === undefined || first.incarnation !== hb.incarnation) {
      this.#firstHeardMs.set(hb.id, { incarnation: hb.incarnation, atMs: nowMs })
      return false
    }
    return nowMs - first.atMs >= this.#windowMs
  }

  /** The member's latest heartbeat deposes nobody: an earlier claim of it no longer stands. */
  withdrawn (id: string): void {
    this.#firstHeardMs.delete(id)
  }

  clear (): void {
    this.#firstHeardMs.clear()
  }
}

/**
 * What a node holds of its own office, for the verdicts below: itself (id
 * and current incarnation) and the leader it follows or is, with that
 * leader's term (null: it follows nobody).
 */
export interface Office {
  self: Candidate
  leader: { id: string, term: number } | null
}

/** The office's leader has announced its claim (or is this node): it is established, not merely expected. */
export function leaderClaimed (view: ViewReader, office: Office): boolean {
  if (office.leader === null) return false
  if (office.leader.id === office.self.id) return true
  return view.get(office.leader.id)?.claim.leader === office.leader.id
}

/**
 * The sender lists this incarnation as dead, and that matters: it knows a
 * term at least as new as ours (`termBefore`, this node's highest term
 * before the heartbeat). A leader yields only to a newer term: an accuser in
 * the leader's own term has no other claimed leader, so it takes the leader
 * back at its next heartbeat (one flaky link must not depose the leader of
 * the whole cluster).
 */
export function accusedBy (hb: Heartbeat, view: ViewReader, office: Office, termBefore: number): boolean {
  // A joining sender's dead list is as old as its view (it is back from a stall): it accuses nobody yet.
  if (hb.joining || !hb.dead.some(d => d.id === office.self.id && d.incarnation === office.self.incarnation)) return false
  if (office.leader?.id === office.self.id) return hb.term > office.leader.term
  return hb.term >= termBefore && accuserRefuses(hb, view, office.self)
}

/**
 * Only a claimant speaks for a claim: a heartbeat in which the sender names
 * itself leader claims its term, and deposes this leader when it beats the
 * office's own claim. (A follower's term is the highest it has seen, not its
 * leader's claim, so it deposes nobody.)
 */
export function deposedBy (hb: Heartbeat, office: Office): boolean {
  if (hb.leader !== hb.id || office.leader === null) return false
  return claimBeats({ term: hb.term, leader: { id: hb.id, incarnation: hb.incarnation } }, { term: office.leader.term, leader: office.self })
}

/**
 * Whether a member this node does not know, or holds dead in that
 * incarnation, is admitted: always while no leader is established here or
 * when it brings a newer term; otherwise only if the leader is older than it
 * (a newcomer never displaces a live leader: refused, it re-joins younger).
 */
export function mayAdmit (hb: Heartbeat, view: ViewReader, office: Office, termBefore: number): boolean {
  if (office.leader === null || !leaderClaimed(view, office)) return true
  if (hb.term > termBefore) return true
  const leader: Candidate = office.leader.id === office.self.id
    ? office.self
    : { id: office.leader.id, incarnation: view.get(office.leader.id)?.incarnation ?? Number.NEGATIVE_INFINITY }
  return isOlder(leader, { id: hb.id, incarnation: hb.incarnation })
}
