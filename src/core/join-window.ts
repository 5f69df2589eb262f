/**
 * When a starting node may lead: its join window, pure (ClusterCore asks it
 * at every step; the runtime tells it what the node has heard of).
 *
 * A node listens for `joinWindowMs` after it (re)joins before it may lead: a
 * live leader is heard well within it. But on a starved host (25 processes
 * starting at once on 2 cores) a node can learn that members exist (an mDNS
 * answer, an open connection) long before their state sync reaches it, and
 * the plain window then runs out with the node alone in its view: it leads a
 * cluster of one, and merging such clusters churns every view (each deposed
 * leader begins a new incarnation, which the others see as a join). So a node
 * that has heard of a member but has not yet completed its first state sync
 * keeps its window open until the sync completes, at most `syncWaitMs` after
 * it started. A node that has heard of nobody ends its window as before: it
 * is alone, and may lead alone.
 *
 * At a cold start (no member leads yet) one sync is not enough: the member
 * asked is joining too and knows a handful of others, so twenty nodes each
 * end their window as the oldest they know and lead clusters of one, which
 * then merge for tens of seconds. So a starting node also keeps its window
 * open while a member it is connected to has not yet answered its state
 * sync (the runtime syncs with every connected member while the node is
 * starting, and says how many have not answered), within the same bound.
 * The runtime only counts members it is connected to: one it merely heard
 * of (mDNS) does not hold the window, and once the node has a leader the
 * runtime stops counting.
 */
export class JoinWindow {
  readonly #windowMs: number
  readonly #syncWaitMs: number
  /** When this node (re)joined: its start, or its return from a stall the others took for its death. */
  #joinedMs: number
  /** When it first heard of another member before its first state sync; null: not yet. */
  #contactMs: number | null = null
  /** Its first state sync has completed (in this process: a later stall does not wait for another). */
  #synced = false
  /** When the node started: the wait for a first sync is bounded from here. */
  readonly #startedMs: number
  /** Connected members that have not answered a state sync yet (the runtime's count; 0 once the node has had a leader). */
  #unanswered = 0
  /** The node has followed (or been) a leader in this life: it is no longer starting (see leaderKnown). */
  #hadLeader = false

  constructor (windowMs: number, syncWaitMs: number, nowMs: number) {
    this.#windowMs = windowMs
    this.#syncWaitMs = Math.max(windowMs, syncWaitMs)
    this.#joinedMs = nowMs
    this.#startedMs = nowMs
  }

  /** The node joins again (back from a stall the others took for its death): a fresh window. */
  restart (nowMs: number): void {
    this.#joinedMs = nowMs
  }

  /**
   * The node has heard of another member (an mDNS answer, a connection)
   * before its first state sync. Only a runtime that can sync says so: a
   * heartbeat alone does not count (without a state sync to wait for, the
   * plain window is the rule).
   */
  contact (nowMs: number): void {
    if (!this.#hadLeader && !this.#synced && this.#contactMs === null) this.#contactMs = nowMs
  }

  /**
   * How many members this node is connected to have not yet answered a
   * state sync (or sent a heartbeat): while any has not, a starting node's
   * window stays open (within the bound).
   */
  unanswered (count: number): void {
    this.#unanswered = this.#hadLeader ? 0 : count
  }

  /**
   * The node has a leader: it is no longer starting. A newcomer's
   * connection changes nothing for it, and the members that had not
   * answered yet no longer hold its window (the runtime stops counting
   * them then: the last count would hold a restarted node "joining" to the
   * bound, reconciling and handing over nothing).
   */
  leaderKnown (): void {
    this.#hadLeader = true
    this.#unanswered = 0
  }

  /** See leaderKnown. */
  get hadLeader (): boolean { return this.#hadLeader }

  /** Its first state sync has completed: the node now knows what the member it asked knew. */
  synced (): void {
    this.#synced = true
  }

  /** True while the node waits for its first state sync beyond the plain window (and within the bound). */
  awaitingSync (nowMs: number): boolean {
    if (nowMs >= this.#startedMs + this.#syncWaitMs) return false
    return (!this.#synced && this.#contactMs !== null) || this.#unanswered > 0
  }

  /** True while the node may not lead: within its window, or waiting for syncs of members it has heard of. */
  open (nowMs: number): boolean {
    return nowMs < this.#joinedMs + this.#windowMs || this.awaitingSync(nowMs)
  }
}
