/**
 * Types shared by the pure core. Nothing here performs I/O: the core is
 * stepped with events and a `nowMs` and returns what it decided.
 */

/** What a member advertises about itself besides its identity. */
export interface MemberInfo {
  /** Base URL of the member's HTTP API, e.g. `http://127.0.0.1:7420`. */
  http: string
  /** Task slots the member offers. */
  capacity: number
  /** Tasks the member is running now. */
  running: number
  /** Tasks the member holds in its queue. */
  queued: number
  /** CPU load (1-minute load average / cores) and memory in use, both 0..1. */
  load: { cpu: number, memory: number }
  /** Task types the member can run. */
  types: string[]
  /** The member's labels from its config (absent: none); a task may require some (see labels.ts). */
  labels?: Record<string, string>
}

/** The identity of one life of a member: a restart or a refutation begins a new incarnation. */
export interface Incarnation {
  id: string
  incarnation: number
}

/**
 * A heartbeat as the core sees it, already decoded and validated at the edge
 * (src/protocol) and checked against its signer (src/net).
 */
export interface Heartbeat extends MemberInfo {
  id: string
  name: string
  incarnation: number
  seq: number
  /** The sender's view: who leads, and the highest term it knows. */
  leader: string | null
  term: number
  /** Members the sender has declared dead, so that a live one can refute. */
  dead: Incarnation[]
  /** The sender is still in its join window (not yet a leader candidate). */
  joining: boolean
  /**
   * The sender is leaving: `draining` (it finishes what it runs, takes no new
   * work and is no leader candidate) or `left` (gone for good: no failure
   * timeout to wait for). Absent while it is an ordinary member.
   */
  leaving?: Leaving
  /**
   * How often the sender publishes now (a follower of a large cluster
   * publishes less often than the leader, see ClusterCore.publishIntervalMs);
   * receivers scale its silence timeout by it. Absent: heartbeatIntervalMs.
   */
  intervalMs?: number
}

export type Leaving = 'draining' | 'left'

/**
 * `alive` and `suspect` (silent for a while) members are live; `draining`
 * members are live but take no new work and never lead; `left` members said
 * they are gone, `dead` members were declared gone by the failure detector.
 */
export type MemberStatus = 'alive' | 'suspect' | 'draining' | 'left' | 'dead'

export interface Member {
  id: string
  name: string
  incarnation: number
  seq: number
  status: MemberStatus
  info: MemberInfo
  /** When its last heartbeat arrived (core clock). */
  lastHeardMs: number
  /** When `status` last changed. */
  statusSinceMs: number
  /** Set after a disconnect hint: the member is declared dead unless heard from before this. */
  confirmByMs: number | null
  /** The leader and term that the member last announced. */
  claim: { leader: string | null, term: number }
  /** The member was in its join window at its last heartbeat. */
  joining: boolean
  /** How often it said it publishes (its silence timeout scales with it). */
  intervalMs: number
  /**
   * Its last word came from a state sync (its own answer, or relayed by
   * another member), not from a heartbeat of its own: at a cold start the
   * gossip mesh reaches a member seconds after a sync does, so its silence
   * is given the sync's bound (see MembershipView.tick).
   */
  relayed?: boolean
}

export interface LeaderView {
  id: string
  name: string
  term: number
}

/** What the core decided or noticed in one step; the runtime logs and acts on these. */
export type CoreEvent =
  | { type: 'member-joined', id: string, name: string, incarnation: number }
  | { type: 'member-status', id: string, name: string, from: MemberStatus, to: MemberStatus, reason: string }
  | { type: 'member-removed', id: string, name: string }
  | { type: 'leader-changed', leader: LeaderView | null, previous: string | null }
  | { type: 'reincarnated', incarnation: number, reason: string }
  | { type: 'stall-detected', gapMs: number }
