/**
 * The joining state syncs of a starting node (the design's "joining in one
 * round trip"), over direct streams (`/taskmesh/members/1.0.0`), so that a
 * cold start does not wait for the gossip mesh: on a starved host (25 nodes
 * on 2 cores) a gossipsub graft comes a median 10 s after its connection
 * (identify first, then one outbound stream at a time, then the mesh
 * heartbeat), while a sync is one request on the open connection.
 *
 * Until the node has a leader (and has had one sync answered), it:
 * - syncs with every member it is connected to (at most MAX_IN_FLIGHT at
 *   once; a failed one is tried again after RETRY_MS), not only the first:
 *   each answer carries the member's own heartbeat and its view, and each
 *   request carries ours, so both sides learn each other at once;
 * - tells the core how many connected members have not answered yet (a
 *   heartbeat heard from one counts as an answer): its join window stays
 *   open until all have, within the bound (src/core/join-window.ts), so the
 *   nodes of a cold start elect the oldest of all of them once instead of
 *   twenty leading clusters of one that merge later;
 * - once its window has closed and it names a leader whose claim it has not
 *   heard (the oldest member it knows, itself still joining or just taken
 *   office), asks that member again every PULL_MS: the answer carries the
 *   claim, so the node does not wait for the member's heartbeat to cross
 *   the mesh.
 * After that one sync per process is all there was before: a node that
 * joins a running cluster is done with its first answer (it names the
 * leader it carries).
 */
import type { Heartbeat } from '../core/types.ts'
import type { Clock } from './clock.ts'
import type { MembershipTransport } from './transport.ts'

/** Syncs under way at once: a starting node's connections open in bursts. */
const MAX_IN_FLIGHT = 4
/** A failed sync with a member is tried again after this long (while the node is starting). */
const RETRY_MS = 1_000
/** How often the expected leader is asked for its claim while it has not been heard. */
const PULL_MS = 1_000

export interface FormationSyncHooks {
  /** The node's current heartbeat, sent with each request (its sequence number not advanced). */
  self: () => Heartbeat
  /** Applies an answer (the member's view, its own heartbeat first). */
  apply: (view: Heartbeat[], from: string, ms: number) => void
  /** The member the node's election names but whose claim it has not heard; null: none. */
  expectedLeader: () => string | null
  /** True once the node has a leader (itself included). */
  hasLeader: () => boolean
  /** A sync failed (logged at debug). */
  failed: (from: string, err: Error) => void
}

export class FormationSync {
  readonly #members: MembershipTransport
  readonly #clock: Clock
  readonly #hooks: FormationSyncHooks
  readonly #timeoutMs: number
  /** Members that answered a sync (or were heard by heartbeat) while this node was starting. */
  readonly #answered = new Set<string>()
  /** Members being asked now. */
  readonly #inFlight = new Set<string>()
  /** When a failed member may be asked again. */
  readonly #retryAt = new Map<string, number>()
  /** When the expected leader was last asked for its claim. */
  #lastPullMs = Number.NEGATIVE_INFINITY
  /** Some sync has been answered. */
  #synced = false
  /** Done: a sync answered and a leader named; no more syncs in this process. */
  #done = false

  constructor (members: MembershipTransport, clock: Clock, timeoutMs: number, hooks: FormationSyncHooks) {
    this.#members = members
    this.#clock = clock
    this.#timeoutMs = timeoutMs
    this.#hooks = hooks
  }

  /** Some sync has been answered (the first state sync of the join window). */
  get synced (): boolean { return this.#synced }

  /** True while the node still syncs (starting, or no answer yet). */
  get active (): boolean {
    if (!this.#done && this.#synced && this.#hooks.hasLeader()) {
      this.#done = true
      this.#answered.clear()
      this.#retryAt.clear()
    }
    return !this.#done
  }

  /** A heartbeat came from `id`: as good as its answer for the join window. */
  heard (id: string): void {
    if (this.active) this.#answered.add(id)
  }

  /** Connected members that have not answered yet (0 once done). */
  unanswered (): number {
    if (!this.active) return 0
    let n = 0
    for (const id of this.#members.connectedPeers()) if (!this.#answered.has(id)) n++
    return n
  }

  /** Starts the syncs that are due: with each connected member not yet answered, and the pull of the expected leader. */
  pump (): void {
    if (!this.active) return
    const now = this.#clock.now()
    const connected = this.#members.connectedPeers()
    const expected = this.#synced ? this.#hooks.expectedLeader() : null
    if (expected !== null && !this.#inFlight.has(expected) && now - this.#lastPullMs >= PULL_MS && connected.includes(expected)) {
      this.#lastPullMs = now
      this.#ask(expected)
    }
    for (const id of connected) {
      if (this.#inFlight.size >= MAX_IN_FLIGHT) return
      if (this.#answered.has(id) || this.#inFlight.has(id) || (this.#retryAt.get(id) ?? 0) > now) continue
      this.#ask(id)
    }
  }

  #ask (id: string): void {
    this.#inFlight.add(id)
    const startedMs = this.#clock.now()
    this.#members.requestMembers(id, this.#hooks.self(), this.#timeoutMs).then(view => {
      this.#synced = true
      this.#answered.add(id)
      this.#retryAt.delete(id)
      this.#hooks.apply(view, id, this.#clock.now() - startedMs)
    }, (err: Error) => {
      this.#retryAt.set(id, this.#clock.now() + RETRY_MS)
      this.#hooks.failed(id, err)
    }).finally(() => {
      this.#inFlight.delete(id)
      this.pump()
    })
  }
}
