/**
 * What one node remembers of having been cut off, for the election rules
 * that depend on it (ClusterCore asks at every step; pure, driven by the
 * core's clock):
 *
 * - Back from a partition, listen before claiming. A node that saw no
 *   majority of the members it knows, or fewer live than the quorum, within
 *   the last join window, and now hears from a member it held dead or never
 *   knew while it follows no leader, claims nothing for a join window:
 *   gossip may first hand it heartbeats sent while it was cut off, from
 *   before the others elected, that would count as PreVote votes (sim seeds
 *   1794746818, 325425499). Only two heartbeat intervals if that member joins
 *   in a new incarnation: most likely a restart (or a long pause) that gives
 *   back a lost quorum, which should elect within a few heartbeats; but a
 *   joining heartbeat replayed from the far side may still name this node
 *   (seed 1311195301), and the current heartbeats follow within an interval.
 *   A node that kept its majority does not listen: nothing was held back
 *   from it, and a paused leader's late heartbeats, which bring it back from
 *   the dead, do not delay the others' election (seed 460).
 * - Pass over accusers. A member whose last heartbeat lists this
 *   incarnation dead cannot hear this node (say a resumed leader still deaf
 *   from its backlog, which stepped down for want of a quorum and will
 *   listen before it claims again): waiting for it as the oldest would leave
 *   everyone without a leader. Not within a join window of having been cut
 *   off: then this node was the one cut off, and at the heal gossip replays
 *   what the others said of it meanwhile.
 */
import type { Heartbeat, Member } from './types.ts'

export class CutOff {
  readonly #joinWindowMs: number
  readonly #rejoinListenMs: number
  /** When this node last saw no majority of the members it knows live, or fewer live than the quorum. */
  #smallSideMs = Number.NEGATIVE_INFINITY
  /** Before this time the node claims nothing (see heard). */
  #listenUntilMs = Number.NEGATIVE_INFINITY
  /** Members whose last heartbeat lists this incarnation as dead. */
  readonly #accusers = new Set<string>()

  constructor (config: { joinWindowMs: number, heartbeatIntervalMs: number }) {
    this.#joinWindowMs = config.joinWindowMs
    this.#rejoinListenMs = 2 * config.heartbeatIntervalMs
  }

  /** At each verdict: `live` members this node sees (itself included) of `known` (itself included, none that left). */
  sides (live: number, known: number, quorum: number, nowMs: number): void {
    if (2 * live <= known || live < quorum) this.#smallSideMs = nowMs
  }

  /**
   * A heartbeat about to be admitted: `known` is its sender's record before
   * it; `followsNobody`, this node has no leader now; `self`, this node's
   * incarnation (for the accusation).
   */
  heard (hb: Heartbeat, known: Member | undefined, followsNobody: boolean, self: { id: string, incarnation: number }, nowMs: number): void {
    const cutOff = nowMs - this.#smallSideMs < this.#joinWindowMs
    if (cutOff && (known === undefined || known.status === 'dead') && followsNobody && hb.leader !== hb.id) {
      // A joining heartbeat of the incarnation held dead was held back too (cut off in its join window: its vote is old).
      const heldBack = !hb.joining || (known !== undefined && known.incarnation === hb.incarnation)
      this.#listenUntilMs = Math.max(this.#listenUntilMs, nowMs + (heldBack ? this.#joinWindowMs : this.#rejoinListenMs))
    }
    if (!hb.joining && hb.dead.some(d => d.id === self.id && d.incarnation === self.incarnation)) this.#accusers.add(hb.id)
    else this.#accusers.delete(hb.id)
  }

  /** Still listening: claim no office yet. */
  listening (nowMs: number): boolean {
    return nowMs < this.#listenUntilMs
  }

  /** `id` is no leader candidate for this node now (it accuses this node, which was not cut off lately). */
  passesOver (id: string, nowMs: number): boolean {
    return nowMs - this.#smallSideMs >= this.#joinWindowMs && this.#accusers.has(id)
  }

  /** A new incarnation: nobody has listed it dead yet. */
  reincarnated (): void {
    this.#accusers.clear()
  }
}
