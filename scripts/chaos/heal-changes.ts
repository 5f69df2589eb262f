/**
 * Which leader changes a partition's heal caused, from the chaos run's leader
 * polls, faults and the nodes' logs. A change of the leader in office at the
 * heal, within HEAL_WINDOW_MS of it and before the next fault begins, is
 * caused by the heal unless a fault forced it: a fault on that leader's host
 * (a pause, kill or restart) in effect around the heal, the partition itself
 * leaving the leader's side with fewer than `quorum` running hosts, or a
 * death verdict against that leader logged before the change by a host that
 * could hear it (one on its side of the partition; after the heal, any host
 * once a failure timeout has passed). A
 * leader declared dead by silence longer than the failure timeout has lost
 * office whatever the heal does: such changes are listed apart, with the
 * fault that forced them.
 */
import type { ObservedFault } from './check.ts'
import { latestAnswers } from './fault-timing.ts'
import type { LeaderSample } from './fault-timing.ts'

/** A leader change this soon after a heal, with no other fault in between, is counted as caused by the heal. */
export const HEAL_WINDOW_MS = 5_000

export interface HealChange { healedAtMs: number, fromLeader: string | null, toLeader: string | null, afterMs: number }
export interface ForcedChange extends HealChange { forcedBy: string }

/** A host's log line: it marked `member` suspect or dead (`to`; absent: not recorded). */
export interface MemberLost { atMs: number, host: string, member: string, to?: 'suspect' | 'dead' }

interface InOffice { host: string, term: number | null }

/**
 * The leader in office at `atMs`: a host that names itself leader in its
 * latest fresh sample and that a majority of all `hostCount` hosts name, in
 * the same term, in theirs; null when none is (no side has a leader that a
 * majority follows, or a failover is under way).
 */
export function inOfficeAt (samples: readonly LeaderSample[], atMs: number, hostCount: number): InOffice | null {
  const latest = latestAnswers(samples, atMs)
  for (const own of latest.values()) {
    if (own.leader !== own.host) continue
    const named = [...latest.values()].filter(s => s.leader === own.host && s.term === own.term).length
    if (named > hostCount / 2) return { host: own.host, term: own.term }
  }
  return null
}

const label = (l: InOffice | null): string | null => l === null ? null : `${l.host} (term ${l.term ?? '?'})`

export function healChanges (input: {
  observed: readonly ObservedFault[]
  leaderSamples: readonly LeaderSample[]
  memberLost: readonly MemberLost[]
  /** Every host of the run (hostCount of them). */
  hosts: readonly string[]
  /** The nodes' quorum (0: none). */
  quorum: number
  hostCount: number
  failureTimeoutMs: number
  loadEndMs: number
  endOf: (f: ObservedFault) => number
}): { healCaused: HealChange[], forced: ForcedChange[] } {
  const { observed, leaderSamples, hostCount } = input
  const healCaused: HealChange[] = []
  const forced: ForcedChange[] = []
  for (const p of observed.filter(f => f.kind === 'partition' && f.endMs !== null)) {
    const healed = p.endMs!
    const nextFault = observed.filter(f => f.atMs > healed).map(f => f.atMs).sort((a, b) => a - b)[0] ?? Infinity
    const until = Math.min(healed + HEAL_WINDOW_MS, nextFault, input.loadEndMs)
    // A heal while no leader is in office (the failover the partition forced is still under way) has nothing to keep.
    const before = inOfficeAt(leaderSamples, healed, hostCount)
    if (before === null) continue
    const beforeLabel = label(before)
    const change = leaderSamples.filter(s => s.answeredMs > healed && s.answeredMs <= until).map(s => s.answeredMs).sort((x, y) => x - y)
      .find(t => { const now = label(inOfficeAt(leaderSamples, t, hostCount)); return now !== null && now !== beforeLabel })
    if (change === undefined) continue
    const entry: HealChange = { healedAtMs: healed, fromLeader: beforeLabel, toLeader: label(inOfficeAt(leaderSamples, change, hostCount)), afterMs: change - healed }
    const forcedBy = forcingFault(p, before.host, change, input)
    if (forcedBy === null) healCaused.push(entry)
    else forced.push({ ...entry, forcedBy })
  }
  return { healCaused, forced }
}

/** What forced the leader `leader` out by `changeMs` after partition `p` healed, or null: nothing but the heal. */
function forcingFault (p: ObservedFault, leader: string, changeMs: number, input: Parameters<typeof healChanges>[0]): string | null {
  const healed = p.endMs!
  const fmt = (ms: number): string => `+${(ms / 1000).toFixed(1)}s`
  // A fault on the leader's own host in effect around the heal (its effects outlast it by up to a failure timeout).
  const onLeader = input.observed.find(f => f !== p && f.kind !== 'partition' && f.host === leader && f.atMs <= changeMs && input.endOf(f) >= healed - input.failureTimeoutMs)
  if (onLeader !== undefined) return `${onLeader.kind} ${leader} at ${fmt(onLeader.atMs)}`
  // The partition itself left the leader's side with fewer than `quorum` running hosts (others killed, paused or
  // restarting): that leader had to step down, whatever the heal did.
  const sameSide = (host: string): boolean => p.minority.includes(host) === p.minority.includes(leader)
  if (input.quorum > 0) {
    const side = input.hosts.filter(sameSide)
    const downAt = (t: number): number => side.filter(h => input.observed.some(f => f.kind !== 'partition' && f.host === h && f.atMs <= t && t < input.endOf(f))).length
    const moments = [p.atMs, ...input.observed.filter(f => f.kind !== 'partition').flatMap(f => [f.atMs, input.endOf(f)]).filter(t => t > p.atMs && t < healed)]
    const fewest = Math.min(...moments.map(t => side.length - downAt(t)))
    if (fewest < input.quorum) return `the partition left ${leader}'s side with ${fewest} running of quorum ${input.quorum}`
  }
  // A death verdict against the leader by a host that could hear it (on its side; after the heal, any host once
  // a failure timeout has passed, so that the silence is not the partition's): it was silent for the failure timeout.
  const verdict = input.memberLost.find(m => m.to === 'dead' && m.member === leader && m.host !== leader && m.atMs >= p.atMs && m.atMs <= changeMs && (sameSide(m.host) || m.atMs >= healed + input.failureTimeoutMs))
  if (verdict !== undefined) return `${leader} declared dead by ${verdict.host} at ${fmt(verdict.atMs)}`
  return null
}
