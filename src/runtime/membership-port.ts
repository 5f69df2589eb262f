/**
 * What the task side needs from membership, and nothing more: the task
 * runtime never reaches into the cluster core. ClusterRuntime implements it;
 * the simulator drives the same ClusterRuntime.
 *
 * Two meanings of "live", each used for one purpose:
 * - `reachable` (status alive, suspect or draining): a member that may still answer.
 *   Reads, reconcile, the new leader's gathering, and the outbox's retries
 *   go to every reachable member; a suspect member's copy of a task still
 *   counts, and dropping its lane early would lose updates it may yet take.
 * - `healthy` (status alive): a member given new work. Second copies of new
 *   tasks and assignments go only to healthy members, so that a member that
 *   has gone quiet is not handed what it may never run.
 */
import type { Grant } from '../core/grants.ts'
import type { CoreEvent, LeaderView, MemberStatus } from '../core/types.ts'

/** A member as the task side sees it (from its latest heartbeat). */
export interface TaskMember {
  id: string
  name: string
  status: MemberStatus
  capacity: number
  running: number
  queued: number
  types: readonly string[]
  /** Its labels from its config (absent: none). */
  labels?: Readonly<Record<string, string>>
}

export interface MembershipPort {
  /** This node's member id. */
  readonly self: string
  /** The leader this node follows (or is), with its term; null while there is none. */
  leader (): LeaderView | null
  /** The highest term this node knows (an assignment below it is stale). */
  term (): number
  /** This node is still in its join window: its view may not list every member yet. */
  joining (): boolean
  /** Every member (this one included) not dead and not left: alive, suspect or draining. */
  reachableMembers (): readonly TaskMember[]
  /** Members (this one included) currently alive: the ones given new work (not draining ones). */
  healthyMembers (): readonly TaskMember[]
  /** Live members a leader needs before it dispatches (0: no quorum rule). */
  readonly quorum: number
  readonly heartbeatIntervalMs: number
  /**
   * Grants `term` to `leader` (the vote carried by inventory requests and
   * assignments). True only once the grant is on disk: the caller may act on
   * it and reveal it at once (persist, then send).
   */
  grant (term: number, leader: string): boolean
  /** This node leads, but its term was granted to another: claim a newer one. */
  claimNewTerm (aboveTerm: number): void
  /** Membership and leader changes. */
  onEvent (listener: (e: CoreEvent) => void): () => void
}

export type { Grant }

/** True for a member that may still answer (see the header). */
export function isReachable (status: MemberStatus): boolean {
  return status !== 'dead' && status !== 'left'
}

/** True for a member that is given new work (see the header). */
export function isHealthy (status: MemberStatus): boolean {
  return status === 'alive'
}
