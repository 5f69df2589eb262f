/** The configuration of ClusterCore, and the snapshot it gives of the cluster. */
import type { FailureDetectorConfig } from './membership.ts'
import type { LeaderView, MemberStatus } from './types.ts'

export interface ClusterCoreConfig extends FailureDetectorConfig {
  /**
   * Live members (this node included) a node must see to take or keep
   * leadership; 0 turns the rule off. With a majority here, the minority side
   * of a partition has no leader and so dispatches nothing.
   */
  quorum: number
  /**
   * How long a starting node listens before it may lead, and the window in
   * which it orders itself after every established member it hears.
   */
  joinWindowMs: number
  /**
   * How long after its start a node that has heard of members (an mDNS
   * answer, a connection; see ClusterCore.onContact) but has not completed
   * its first state sync keeps its join window open, at most. Absent: the
   * join window alone.
   */
  syncWaitMs?: number
  /**
   * The heartbeats per second that all followers of the cluster publish
   * together, at most: a follower publishes every max(heartbeatIntervalMs,
   * live others / budget seconds), so what each node receives stays flat as
   * the cluster grows. The leader and joining nodes always publish every
   * heartbeatIntervalMs; any node publishes at once when its claim, term,
   * dead list or joining state changes. Absent or 0: no budget (every member
   * publishes every heartbeatIntervalMs).
   */
  followerHeartbeatsPerSecond?: number
}

export interface MemberSnapshot {
  id: string
  name: string
  http: string
  status: MemberStatus
  capacity: number
  running: number
  queued: number
  load: { cpu: number, memory: number }
  /** Milliseconds since the member was last heard from (0 for this node). */
  lastSeenMs: number
  incarnation: number
  types: string[]
  /** The member's labels (absent: none). */
  labels?: Record<string, string>
}

export interface ClusterSnapshot {
  self: { id: string, name: string }
  leader: LeaderView | null
  term: number
  members: MemberSnapshot[]
}
