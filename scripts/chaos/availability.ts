/**
 * What a client saw during a chaos run, from the workload's own request log
 * and what the nodes stored: accepted submits and ended tasks per second on
 * each side of a partition, the longest window in which the majority side
 * accepted no submit and began no task while work was waiting, submit
 * latency during faults and outside them, and every fault that touched the
 * leader (as target, or inside a partition's minority) with the time until
 * the others noticed and until a leader dispatched again; and whether a
 * healed partition changed the leader.
 */
import type { TaskRecord } from '../../src/core/tasks.ts'
import type { CheckResult, ObservedFault } from './check.ts'
import { leaderFaults } from './fault-timing.ts'
import type { LeaderFault, LeaderSample } from './fault-timing.ts'
import { healChanges } from './heal-changes.ts'
import type { ForcedChange, HealChange, MemberLost } from './heal-changes.ts'

/** One submit request of the workload (a retry is a request of its own). */
export interface ClientRequest {
  atMs: number
  host: string
  /** Time to the answer, or to giving up (no answer). */
  latencyMs: number
  outcome: 'accepted' | 'refused' | 'no-answer'
  tasks: number
  /** 0 for a first try; n for the n-th retry of the same batch (same idempotency keys) on another host. */
  retry: number
}

export interface Availability {
  perSecond: Array<{ second: number, acceptedMajority: number, acceptedMinority: number, endedMajority: number, endedMinority: number }>
  longestMajorityGap: { fromMs: number, toMs: number, ms: number, during: string | null } | null
  latency: { duringFaults: Percentiles, outsideFaults: Percentiles }
  requests: { total: number, accepted: number, refused: number, noAnswer: number, retries: number, acceptedOnRetry: number }
  /** See fault-timing.ts: the leader in office from answers before the fault; detection and recovery from what happened after it. */
  leaderFaults: LeaderFault[]
  /**
   * Changes of the leader in office at a partition's heal (another leader, or the same one in a new term)
   * within HEAL_WINDOW_MS of the heal, with no other fault in between, that no fault forced (see heal-changes.ts).
   */
  healChanges: HealChange[]
  /** Such changes after a heal that a fault forced: the leader's host paused, killed or restarted, or the leader declared dead. */
  forcedAfterHeal: ForcedChange[]
}

export interface Percentiles { count: number, p50: number | null, p90: number | null, p99: number | null, max: number | null }

function percentiles (xs: number[]): Percentiles {
  const s = [...xs].sort((a, b) => a - b)
  const at = (p: number): number | null => s.length === 0 ? null : Math.round(s[Math.min(s.length - 1, Math.floor(p / 100 * s.length))]!)
  return { count: s.length, p50: at(50), p90: at(90), p99: at(99), max: s.length === 0 ? null : Math.round(s.at(-1)!) }
}

const endOf = (f: ObservedFault, loadEndMs: number): number => f.endMs ?? (f.kind === 'kill' ? f.atMs : Math.min(loadEndMs, f.atMs + f.holdMs))

/** The minority of the partition in place at `atMs` (empty: none, or every host on one side). */
function minorityAt (faults: readonly ObservedFault[], atMs: number, loadEndMs: number): string[] {
  const p = faults.find(f => f.kind === 'partition' && f.atMs <= atMs && atMs < endOf(f, loadEndMs))
  return p?.minority ?? []
}

export function availability (input: {
  requests: readonly ClientRequest[]
  accepted: ReadonlyArray<{ id: string, atMs: number, origin: string }>
  finals: ReadonlyMap<string, TaskRecord>
  observed: readonly ObservedFault[]
  leaderSamples: readonly LeaderSample[]
  /** Hosts in the cluster (a leader in office is named by more than half of them). */
  hostCount: number
  /** Their names, and the nodes' quorum (0: none). */
  hosts: readonly string[]
  quorum: number
  check: Pick<CheckResult, 'dispatches' | 'leaderChanges'> & { memberLost: readonly MemberLost[] }
  failureTimeoutMs: number
  hostOfId: (memberId: string | null) => string | null
  startedAt: number
  loadStartMs: number
  loadEndMs: number
}): Availability {
  const { requests, observed, loadEndMs, hostCount } = input
  const rel = (epochMs: number): number => epochMs - input.startedAt
  const side = (host: string | null, atMs: number): 'majority' | 'minority' => host !== null && minorityAt(observed, atMs, loadEndMs).includes(host) ? 'minority' : 'majority'

  const perSecond = new Map<number, Availability['perSecond'][number]>()
  const bucket = (ms: number): Availability['perSecond'][number] => {
    const second = Math.floor(ms / 1000)
    let b = perSecond.get(second)
    if (b === undefined) perSecond.set(second, b = { second, acceptedMajority: 0, acceptedMinority: 0, endedMajority: 0, endedMinority: 0 })
    return b
  }
  for (const a of input.accepted) {
    const b = bucket(a.atMs)
    if (side(a.origin, a.atMs) === 'majority') b.acceptedMajority++
    else b.acceptedMinority++
  }
  // Progress on the majority side: a submit accepted there, or a task begun there.
  const progress: number[] = []
  const starts: number[] = []
  for (const a of input.accepted) if (side(a.origin, a.atMs) === 'majority') progress.push(a.atMs)
  for (const rec of input.finals.values()) {
    const host = input.hostOfId(rec.worker)
    if (rec.finishedAt !== null) {
      const at = rel(rec.finishedAt)
      const b = bucket(at)
      if (side(host, at) === 'majority') b.endedMajority++
      else b.endedMinority++
    }
    if (rec.startedAt !== null) {
      const at = rel(rec.startedAt)
      starts.push(at)
      if (side(host, at) === 'majority') progress.push(at)
    }
  }
  progress.sort((a, b) => a - b)
  // Work waits at t when a task accepted by then has not begun by then (its last attempt's start).
  const acceptedAt = input.accepted.map(a => a.atMs).sort((a, b) => a - b)
  const startsSorted = starts.sort((a, b) => a - b)
  const waitingAt = (t: number): boolean => count(acceptedAt, t) > count(startsSorted, t)
  let longest: Availability['longestMajorityGap'] = null
  let prev = input.loadStartMs
  for (const t of [...progress.filter(x => x >= input.loadStartMs && x <= loadEndMs), loadEndMs]) {
    if (t - prev > (longest?.ms ?? 0) && waitingAt(prev + 1)) {
      const during = observed.filter(f => f.atMs <= t && endOf(f, loadEndMs) >= prev).map(f => `${f.kind} ${f.host}`)
      longest = { fromMs: prev, toMs: t, ms: t - prev, during: during.length === 0 ? null : during.join(', ') }
    }
    prev = Math.max(prev, t)
  }

  const inFault = (atMs: number): boolean => observed.some(f => f.atMs <= atMs && atMs <= endOf(f, loadEndMs))
  const answered = requests.filter(r => r.outcome === 'accepted')
  const latency = {
    duringFaults: percentiles(answered.filter(r => inFault(r.atMs)).map(r => r.latencyMs)),
    outsideFaults: percentiles(answered.filter(r => !inFault(r.atMs)).map(r => r.latencyMs))
  }

  const touched = leaderFaults(observed, input.leaderSamples, input.check, { failureTimeoutMs: input.failureTimeoutMs, endOf: f => endOf(f, loadEndMs) })

  const heals = healChanges({ observed, leaderSamples: input.leaderSamples, memberLost: input.check.memberLost, hosts: input.hosts, quorum: input.quorum, hostCount, failureTimeoutMs: input.failureTimeoutMs, loadEndMs, endOf: f => endOf(f, loadEndMs) })

  return {
    perSecond: [...perSecond.values()].sort((a, b) => a.second - b.second),
    longestMajorityGap: longest,
    latency,
    requests: {
      total: requests.length,
      accepted: answered.length,
      refused: requests.filter(r => r.outcome === 'refused').length,
      noAnswer: requests.filter(r => r.outcome === 'no-answer').length,
      retries: requests.filter(r => r.retry > 0).length,
      acceptedOnRetry: answered.filter(r => r.retry > 0).length
    },
    leaderFaults: touched,
    healChanges: heals.healCaused,
    forcedAfterHeal: heals.forced
  }
}

/** How many of the sorted values are at most t. */
function count (sorted: readonly number[], t: number): number {
  let lo = 0
  let hi = sorted.length
  while (lo < hi) {
    const mid = (lo + hi) >> 1
    if (sorted[mid]! <= t) lo = mid + 1
    else hi = mid
  }
  return lo
}
