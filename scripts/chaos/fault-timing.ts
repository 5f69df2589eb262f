/**
 * Who led when a fault struck, and how long the cluster took to notice and
 * to dispatch again, from the chaos run's leader polls and the nodes' logs.
 *
 * A poll's answer describes the node somewhere between the moment the
 * request left and the moment the answer came back (up to a second later),
 * and a host that stops answering (killed, paused, cut off) leaves its last
 * answer behind. So the leader at a fault is read from answers that came
 * back before the fault and at most SAMPLE_FRESH_MS before it; detection and
 * recovery are read from what the other nodes (after the fault's end, any
 * node) logged after the fault, and recovery counts only a leader that
 * dispatches in a term above the one in office at the fault (a dispatch in that term or below began before the
 * fault: a failover still under way, or a leader of a side cut off).
 */
import type { ObservedFault } from './check.ts'

/** One answer of GET /v1/cluster: `atMs` when the request left, `answeredMs` when the answer came. */
export interface LeaderSample { atMs: number, answeredMs: number, host: string, leader: string | null, term: number | null, queued: number | null }

/** A host's latest answer older than this (polls are every 250 ms, each waits up to 1 s) says nothing: the host is not answering. */
export const SAMPLE_FRESH_MS = 1_500

/** The latest fresh answer of each host that came back at or before `atMs`. */
export function latestAnswers (samples: readonly LeaderSample[], atMs: number): Map<string, LeaderSample> {
  const latest = new Map<string, LeaderSample>()
  for (const s of samples) {
    if (s.answeredMs > atMs || atMs - s.answeredMs > SAMPLE_FRESH_MS) continue
    const seen = latest.get(s.host)
    if (seen === undefined || seen.answeredMs <= s.answeredMs) latest.set(s.host, s)
  }
  return latest
}

/**
 * The leader (and the term) that most hosts named in their latest fresh
 * answers at or before `atMs`; ties go to the higher term. Null when no
 * answering host names one.
 */
export function leaderNamedAt (samples: readonly LeaderSample[], atMs: number): { leader: string, term: number | null } | null {
  const votes = new Map<string, { leader: string, term: number | null, n: number }>()
  for (const s of latestAnswers(samples, atMs).values()) {
    if (s.leader === null) continue
    const key = `${s.leader}/${s.term ?? '?'}`
    const v = votes.get(key) ?? { leader: s.leader, term: s.term, n: 0 }
    v.n++
    votes.set(key, v)
  }
  const best = [...votes.values()].sort((a, b) => b.n - a.n || (b.term ?? -1) - (a.term ?? -1))[0]
  return best === undefined ? null : { leader: best.leader, term: best.term }
}

/** The leader most answering hosts named at or just before `atMs` (see leaderNamedAt). */
export function leaderAt (samples: readonly LeaderSample[], atMs: number): string | null {
  return leaderNamedAt(samples, atMs)?.leader ?? null
}

/** What the nodes logged about leadership, in the run's time (ms since its start). */
export interface LeadershipLog {
  dispatches: ReadonlyArray<{ atMs: number, host: string, term: number }>
  leaderChanges: ReadonlyArray<{ atMs: number, host: string, leader: string | null, term: number | null }>
  /** A host marked another (`member`) suspect or dead. */
  memberLost: ReadonlyArray<{ atMs: number, host: string, member: string }>
}

export interface LeaderFault {
  fault: string
  atMs: number
  /** How it touched the leader: its target, or a partition with the leader in its minority. */
  how: string
  leader: string
  term: number | null
  /** Until a host not cut off by the fault logged that it lost that leader (no leader, another one, a new term, or the leader suspect or dead). */
  detectionMs: number | null
  /** Until a host not cut off by the fault (any host, once the fault was undone) logged that it dispatches as leader in a term above `term`. */
  recoveryMs: number | null
}

/**
 * Every fault that touched the leader in office (as its target, or with the
 * leader inside a partition's minority), with detection and recovery times.
 * Detection must come within `failureTimeoutMs` + DETECTION_SLACK_MS of the
 * fault's end (a leader that was not lost by then kept office: a short pause
 * or cut that the failure detector rightly forgave), and recovery after it.
 */
export function leaderFaults (faults: readonly ObservedFault[], samples: readonly LeaderSample[], log: LeadershipLog, opts: { failureTimeoutMs: number, endOf: (f: ObservedFault) => number }): LeaderFault[] {
  const out: LeaderFault[] = []
  for (const f of faults) {
    const before = leaderNamedAt(samples, f.atMs)
    if (before === null) continue
    const how = f.host === before.leader ? `${f.kind} of the leader` : f.kind === 'partition' && f.minority.includes(before.leader) ? 'partition with the leader in the minority' : null
    if (how === null) continue
    const cutOff = f.kind === 'partition' ? f.minority : [f.host]
    const outside = (host: string): boolean => !cutOff.includes(host)
    const lostBy = opts.endOf(f) + opts.failureTimeoutMs + DETECTION_SLACK_MS
    const lost = (c: LeadershipLog['leaderChanges'][number]): boolean => c.leader !== before.leader || (before.term !== null && c.term !== null && c.term > before.term)
    const detectedAt = [
      ...log.leaderChanges.filter(c => outside(c.host) && c.atMs >= f.atMs && lost(c)).map(c => c.atMs),
      ...log.memberLost.filter(m => outside(m.host) && m.member === before.leader && m.atMs >= f.atMs).map(m => m.atMs)
    ].filter(t => t <= lostBy).sort((a, b) => a - b)[0]
    // A leader still in office, in its term, once the fault's effects are over was kept (a pause or cut the
    // failure detector forgave, however suspect it looked): a later dispatch in a higher term is another fault's.
    const after = leaderNamedAt(samples, lostBy)
    const kept = after !== null && after.leader === before.leader && after.term === before.term
    // Once the fault is undone a host it cut off may lead again (the old leader re-elected after a heal).
    const dispatched = detectedAt === undefined || kept ? undefined : log.dispatches.find(x => x.atMs >= f.atMs && (outside(x.host) || x.atMs >= opts.endOf(f)) && (before.term === null || x.term > before.term))
    out.push({
      fault: `${f.kind} ${f.host}`,
      atMs: f.atMs,
      how,
      leader: before.leader,
      term: before.term,
      detectionMs: detectedAt === undefined ? null : detectedAt - f.atMs,
      recoveryMs: dispatched === undefined ? null : dispatched.atMs - f.atMs
    })
  }
  return out
}

/** Room after the failure timeout for a heartbeat's delivery and the log line. */
const DETECTION_SLACK_MS = 1_000
