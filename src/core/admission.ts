/**
 * What an origin decides before it accepts a submit, and where it stores the
 * second copy. Pure: the caller measures payloads and reads the membership
 * view; these functions only judge.
 */
import type { MemberStatus } from './types.ts'

export interface AdmissionInput {
  /** Task types that live members run. */
  types: ReadonlySet<string>
  /** The submitted tasks, in order, with the size of each payload as JSON (bytes). */
  tasks: ReadonlyArray<{ type: string, payloadBytes: number }>
  maxPayloadBytes: number
  /** Tasks the leader has waiting (0 without a leader). */
  leaderWaiting: number
  /** The cluster's queue bound (maxQueuedTasks). */
  maxQueuedTasks: number
  /** Tasks accepted here that no leader has taken yet. */
  heldForLeader: number
  /** How many of those this node may hold (maxQueuedTasksPerNode; Infinity: no bound). */
  maxHeldForLeader: number
}

export type AdmissionVerdict =
  | { ok: true }
  | { ok: false, reason: 'unknown-type', type: string, known: string[] }
  | { ok: false, reason: 'payload-too-large', index: number, bytes: number, limit: number }
  | { ok: false, reason: 'queue-full', scope: 'cluster' | 'node', limit: number }

/**
 * A submit is refused whole when one task has a type no live member runs or
 * a payload over the limit, or when accepting it would overfill the leader's
 * queue or the tasks this node holds waiting for a leader. The first problem
 * found is the one reported, tasks in order.
 */
export function admit (input: AdmissionInput): AdmissionVerdict {
  for (const [index, t] of input.tasks.entries()) {
    if (!input.types.has(t.type)) return { ok: false, reason: 'unknown-type', type: t.type, known: [...input.types].sort() }
    if (t.payloadBytes > input.maxPayloadBytes) return { ok: false, reason: 'payload-too-large', index, bytes: t.payloadBytes, limit: input.maxPayloadBytes }
  }
  if (input.leaderWaiting + input.tasks.length > input.maxQueuedTasks) return { ok: false, reason: 'queue-full', scope: 'cluster', limit: input.maxQueuedTasks }
  if (input.heldForLeader + input.tasks.length > input.maxHeldForLeader) return { ok: false, reason: 'queue-full', scope: 'node', limit: input.maxHeldForLeader }
  return { ok: true }
}

/** A leader takes handed-over tasks only while its queue has room for the ones it does not track yet. */
export function leaderHasRoom (waiting: number, incoming: number, maxQueuedTasks: number): boolean {
  return waiting + incoming <= maxQueuedTasks
}

export interface ReplicaCandidate {
  id: string
  status: MemberStatus
  running: number
  capacity: number
}

/**
 * The members an origin tries, one after another, to store the second copy
 * of new tasks on: alive members other than itself, the leader first (a copy
 * there is also the hand-over), then the least loaded by share of busy slots;
 * at most `max` of them.
 */
export function replicaTargets (members: readonly ReplicaCandidate[], self: string, leaderId: string | null, max: number): string[] {
  const load = (m: ReplicaCandidate): number => m.running / Math.max(1, m.capacity)
  return members
    .filter(m => m.id !== self && m.status === 'alive')
    .sort((a, b) => (a.id === leaderId ? -1 : b.id === leaderId ? 1 : load(a) - load(b)))
    .slice(0, max)
    .map(m => m.id)
}

/**
 * How many copies a submit is stored in before it is accepted: two when
 * another live member can take the second copy, one on a lone node; `null`
 * refuses the submit when that is fewer than `minCopies` (nothing is
 * accepted). The origin still refuses later if every target fails.
 */
export function plannedCopies (secondCopyTargets: number, minCopies: number): 1 | 2 | null {
  const copies = secondCopyTargets > 0 ? 2 : 1
  return copies >= minCopies ? copies : null
}
