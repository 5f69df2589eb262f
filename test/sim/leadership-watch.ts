/**
 * The simulators' invariant "no leader change without a fault that forces
 * one" (issue 19), shared by the membership simulator (cluster-sim.ts) and
 * the task-system simulation (task-sim.ts).
 *
 * A fault forces a leader change when it stops the leader (crash, pause,
 * drain, leave) or leaves it with fewer than `quorum` running members on its
 * side of a partition (without a quorum: any partition that leaves a running
 * or paused member on the other side, or a member's return there, since that
 * side then elects a leader of its own, whose higher term wins at the heal,
 * so that heal forces a change too).
 * Once the cluster has had one leader in office (see majorityLeader) for a
 * failure timeout, and the effects of the last forcing fault have played out
 * (FORCED_EFFECT_TIMEOUTS failure timeouts: the others' failure detectors
 * fire, the new leader's claim travels, accused members refute), that leader
 * must keep office until the next forcing fault: heals, the resume of a
 * paused member, the restart of a crashed one, and faults that force nothing
 * (a follower's crash, a minority cut off without the leader) must not move
 * it, nor, with a quorum, change its term. (Without a quorum the term may
 * rise: a member that led a side of an earlier partition returns with that
 * side's term, and the leader claims above it so that fencing keeps working.)
 */

/** How long, in failure timeouts, a fault that forces a leader change may still move leadership. */
const FORCED_EFFECT_TIMEOUTS = 3

export interface WatchedNode {
  id: string
  /** `down`: crashed, or left; a paused node is stopped but will resume. */
  state: 'up' | 'paused' | 'down'
  /** It leads in its own eyes. */
  leads: boolean
  /**
   * It dispatches as leader in its current term (it has gathered); absent
   * where there is no dispatcher (the membership simulator). A leader that
   * has not begun to dispatch is not yet in office.
   */
  dispatching?: boolean
  /** The leader it names (one that has claimed), or null. */
  names: { id: string, term: number } | null
  /** Its side of the partition in place (all equal when there is none). */
  side: number
}

export interface LeaderInOffice { id: string, term: number }

export class LeadershipWatch {
  readonly #quorum: number
  readonly #failureTimeoutMs: number
  /** Breaches, each with the time and what happened. */
  readonly violations: string[] = []
  /** The leader that must keep office, and since when, until a fault forces a change. */
  #mustHold: (LeaderInOffice & { sinceMs: number }) | null = null
  /** When the last fault that may force a leader change happened. */
  #forcedAtMs = Number.NEGATIVE_INFINITY
  /** Without a quorum: a partition left members on the leader's other side, which may elect (see healed). */
  #split = false
  /** The leader in office now and since when (an election race settles within a failure timeout). */
  #inOffice: (LeaderInOffice & { sinceMs: number }) | null = null

  constructor (opts: { quorum: number, failureTimeoutMs: number }) {
    this.#quorum = opts.quorum
    this.#failureTimeoutMs = opts.failureTimeoutMs
  }

  /**
   * The cluster's leader: a running node that leads in its own eyes (and
   * dispatches) and that a majority of all nodes (running ones) name, in the
   * same term; or null.
   */
  static majorityLeader (nodes: readonly WatchedNode[]): LeaderInOffice | null {
    const need = Math.floor(nodes.length / 2) + 1
    const up = nodes.filter(n => n.state === 'up')
    for (const n of up) {
      if (!n.leads || n.dispatching === false || n.names?.id !== n.id) continue
      const term = n.names.term
      if (up.filter(o => o.names?.id === n.id && o.names.term === term).length >= need) return { id: n.id, term }
    }
    return null
  }

  /** The leader before a fault is applied (pass it to faultApplied): the one that must hold, else the one in office. */
  leaderBefore (nodes: readonly WatchedNode[]): string | null {
    return this.#mustHold?.id ?? LeadershipWatch.majorityLeader(nodes)?.id ?? null
  }

  /** A fault was applied to `target` (null: a partition; a draining target counts as gone); `nodes` as they are now. */
  faultApplied (nowMs: number, leader: string | null, target: string | null, nodes: readonly WatchedNode[]): void {
    const side = nodes.find(n => n.id === leader)?.side
    const forced = leader === null || leader === target || side === undefined || (this.#quorum > 0
      ? nodes.filter(n => n.state === 'up' && n.id !== target && n.side === side).length < this.#quorum
      : nodes.some(n => n.state !== 'down' && n.side !== side))
    if (forced) this.#forced(nowMs)
    if (forced && target === null && this.#quorum === 0) this.#split = true
  }

  /**
   * A partition healed. Without a quorum, if a side cut off from the leader
   * could elect its own, its higher term wins now (even that of a leader
   * that crashed meanwhile: gossip hands on its last claims): a forced change.
   */
  healed (nowMs: number): void {
    if (this.#split) this.#forced(nowMs)
    this.#split = false
  }

  /** A member returns (a resume, a restart): without a quorum, one cut off from the leader leads its own side. */
  returns (nowMs: number, id: string, nodes: readonly WatchedNode[]): void {
    const leader = this.leaderBefore(nodes)
    if (this.#quorum > 0 || leader === null) return
    const side = (x: string): number | undefined => nodes.find(n => n.id === x)?.side
    if (side(id) !== side(leader)) { this.#forced(nowMs); this.#split = true }
  }

  /** Checks the invariant against the nodes as they are at `nowMs`. */
  check (nowMs: number, nodes: readonly WatchedNode[]): void {
    const now = LeadershipWatch.majorityLeader(nodes)
    const hold = this.#mustHold
    if (hold === null) {
      if (now === null || now.id !== this.#inOffice?.id || now.term !== this.#inOffice.term) this.#inOffice = now === null ? null : { ...now, sinceMs: nowMs }
      const settled = this.#inOffice !== null && nowMs - this.#inOffice.sinceMs >= this.#failureTimeoutMs
      const effectsOver = nowMs - this.#forcedAtMs >= FORCED_EFFECT_TIMEOUTS * this.#failureTimeoutMs
      if (settled && effectsOver && nodes.filter(n => n.state !== 'down' && n.leads).length === 1) this.#mustHold = { ...this.#inOffice! }
      return
    }
    if (now === null || (now.id === hold.id && (now.term === hold.term || this.#quorum === 0))) return
    this.violations.push(`at ${nowMs}: leader ${hold.id} (term ${hold.term}, in office since ${hold.sinceMs}) replaced by ${now.id} (term ${now.term}) with no fault that forces a change`)
    this.#mustHold = null
  }

  #forced (nowMs: number): void {
    this.#forcedAtMs = nowMs
    this.#mustHold = null
  }
}
