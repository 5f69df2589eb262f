/**
 * What a node's membership view looks like from outside: the snapshot the
 * HTTP API serves, and the heartbeats a joining node's state sync carries.
 */
import type { ClusterSnapshot, MemberSnapshot } from './cluster-core-types.ts'
import type { Heartbeat, LeaderView, Member } from './types.ts'

/** A member's last word as a heartbeat (its dead list left out: the joiner learns of deaths from heartbeats). */
export function memberHeartbeat (m: Member): Heartbeat {
  return { id: m.id, name: m.name, incarnation: m.incarnation, seq: m.seq, ...m.info, leader: m.claim.leader, term: m.claim.term, dead: [], joining: m.joining, intervalMs: m.intervalMs }
}

/** The cluster as this node (`self`) sees it: every member, oldest first. */
export function clusterSnapshot (self: MemberSnapshot, members: readonly Member[], leader: LeaderView | null, term: number, nowMs: number): ClusterSnapshot {
  const others = members.map((m): MemberSnapshot => ({
    id: m.id,
    name: m.name,
    status: m.status,
    ...m.info,
    lastSeenMs: Math.max(0, nowMs - m.lastHeardMs),
    incarnation: m.incarnation
  }))
  return {
    self: { id: self.id, name: self.name },
    leader,
    term,
    members: [self, ...others].sort((a, b) => a.incarnation - b.incarnation || (a.id < b.id ? -1 : 1))
  }
}
