/**
 * The invariant checker of a chaos run. It reads what the nodes stored (each
 * host's task database, opened after the nodes stopped), what they logged
 * (leader changes, dispatching as leader) and what the recording handler
 * logged (every finished execution), and checks:
 * - every accepted task is stored somewhere, terminal on every holder, with
 *   one and the same record on all of them, and the right outcome and value;
 * - executions per task (duplicates, each with the fault that explains it);
 * - at most one leader dispatching per term (with a majority quorum);
 * - no node dispatching as leader from the minority side of a partition
 *   (with a quorum), once its failure detector had time to notice.
 * It also derives the figures of the report (failover times, throughput).
 */
import { isTerminal } from '../../src/core/tasks.ts'
import type { TaskRecord } from '../../src/core/tasks.ts'
import { TaskStore } from '../../src/store/task-store.ts'
import type { FaultKind, PlannedFault, Role } from './schedule.ts'
import { leaderAt, leaderFaults } from './fault-timing.ts'
import type { LeaderSample } from './fault-timing.ts'

export { leaderAt }
export type { LeaderSample }

export interface Accepted { id: string, type: string, payload: unknown, origin: string, atMs: number }
export interface ObservedFault { atMs: number, kind: FaultKind, role: Role, host: string, holdMs: number, minority: string[], endMs: number | null }
export interface HostRecord { host: string, dataDir: string, log: string, executions: string }

export interface RunData {
  seed: number
  hosts: string[]
  quorum: number
  failureTimeoutMs: number
  /** Epoch ms the run's clock counts from. */
  startedAt: number
  loadStartMs: number
  loadEndMs: number
  settledAfterMs: number | null
  schedule: PlannedFault[]
  observed: ObservedFault[]
  accepted: Accepted[]
  refused: number
  leaderSamples: LeaderSample[]
  records: HostRecord[]
  expected: (a: Accepted) => { status: 'succeeded' | 'failed', result?: unknown }
}

export interface Violation { kind: string, detail: string }
export interface Failover { fault: string, atMs: number, detectionMs: number | null, recoveryMs: number | null }
export interface Duplicate { id: string, executions: number, hosts: string[], cause: string }

export interface CheckResult {
  violations: Violation[]
  counts: { accepted: number, refused: number, succeeded: number, failed: number, cancelled: number, lost: number, doubleRecorded: number, executions: number, duplicates: number }
  duplicates: Duplicate[]
  failovers: Failover[]
  dispatches: Array<{ atMs: number, host: string, term: number }>
  leaderChanges: Array<{ atMs: number, host: string, leader: string | null, term: number | null }>
  /** A host logged another (`member`) suspect or dead (`to`). */
  memberLost: Array<{ atMs: number, host: string, member: string, to: 'suspect' | 'dead' }>
  /** Tasks ended per second of the run. */
  throughput: Array<{ second: number, ended: number }>
  /** Each accepted task's final record (as its holders agree on it). */
  finals: Map<string, TaskRecord>
  summary: string
}

interface LogLine { time: number, msg: string, [k: string]: unknown }

function parseLog (text: string): LogLine[] {
  const out: LogLine[] = []
  for (const line of text.split('\n')) {
    if (!line.startsWith('{')) continue
    try { out.push(JSON.parse(line) as LogLine) } catch { /* a torn last line of a killed process */ }
  }
  return out
}

export function checkRun (d: RunData): CheckResult {
  const violations: Violation[] = []
  const rel = (epochMs: number): number => epochMs - d.startedAt

  // What each host stored.
  const stores = d.records.map(r => {
    let store: TaskStore | null = null
    try { store = new TaskStore(r.dataDir) } catch (err) { violations.push({ kind: 'store-unreadable', detail: `${r.host}: ${(err as Error).message}` }) }
    return { host: r.host, store }
  })
  const counts = { accepted: d.accepted.length, refused: d.refused, succeeded: 0, failed: 0, cancelled: 0, lost: 0, doubleRecorded: 0, executions: 0, duplicates: 0 }
  const finals = new Map<string, TaskRecord>()
  for (const a of d.accepted) {
    const copies = stores.flatMap(s => {
      const rec = s.store?.get(a.id)
      return rec === undefined ? [] : [{ host: s.host, rec }]
    })
    if (copies.length === 0) { counts.lost++; violations.push({ kind: 'lost', detail: `${a.id} (${a.type}, accepted by ${a.origin} at ${fmt(a.atMs)}) is stored nowhere` }); continue }
    const unfinished = copies.filter(c => !isTerminal(c.rec.status))
    if (unfinished.length > 0) { violations.push({ kind: 'not-terminal', detail: `${a.id}: ${copies.map(c => `${c.host}=${c.rec.status}`).join(' ')}` }); continue }
    const key = (r: TaskRecord): string => JSON.stringify([r.status, r.attempts, r.worker, r.result, r.error])
    if (copies.some(c => key(c.rec) !== key(copies[0]!.rec))) {
      counts.doubleRecorded++
      violations.push({ kind: 'two-terminal-records', detail: `${a.id}: ${copies.map(c => `${c.host}=${c.rec.status}/${c.rec.attempts}`).join(' ')}` })
    }
    const rec = copies[0]!.rec
    finals.set(a.id, rec)
    if (rec.status === 'succeeded') counts.succeeded++
    else if (rec.status === 'failed') counts.failed++
    else counts.cancelled++
    const want = d.expected(a)
    if (rec.status !== want.status) violations.push({ kind: 'wrong-outcome', detail: `${a.id} (${a.type}) ended ${rec.status}${rec.error !== null ? ` (${rec.error})` : ''}, expected ${want.status}` })
    else if (want.status === 'succeeded' && JSON.stringify(rec.result) !== JSON.stringify(want.result)) violations.push({ kind: 'wrong-result', detail: `${a.id} (${a.type}): ${JSON.stringify(rec.result)} != ${JSON.stringify(want.result)}` })
  }
  for (const s of stores) s.store?.close()

  // Executions of the recording handler, per task.
  const runs = new Map<string, Array<{ host: string, startedAt: number, finishedAt: number }>>()
  for (const r of d.records) {
    for (const line of r.executions.split('\n')) {
      if (line === '') continue
      try {
        const e = JSON.parse(line) as { id: string, startedAt: number, finishedAt: number }
        const list = runs.get(e.id) ?? []
        list.push({ host: r.host, startedAt: rel(e.startedAt), finishedAt: rel(e.finishedAt) })
        runs.set(e.id, list)
        counts.executions++
      } catch { /* torn line */ }
    }
  }
  const duplicates: Duplicate[] = []
  for (const a of d.accepted.filter(x => x.type === 'record')) {
    const list = (runs.get(a.id) ?? []).sort((x, y) => x.startedAt - y.startedAt)
    if (list.length === 0 && finals.get(a.id)?.status === 'succeeded') violations.push({ kind: 'result-without-execution', detail: `${a.id} succeeded but the handler never finished it` })
    if (list.length < 2) continue
    const first = list[0]!
    const last = list.at(-1)!
    const cause = d.observed.filter(f => f.atMs <= last.startedAt && f.atMs >= first.startedAt - 30_000 && (f.host === first.host || f.minority.includes(first.host) || f.kind === 'partition')).at(-1)
      ?? d.observed.filter(f => f.atMs <= last.startedAt).at(-1)
    duplicates.push({ id: a.id, executions: list.length, hosts: list.map(x => x.host), cause: cause === undefined ? 'no fault before it' : `${cause.kind} ${cause.host} at ${fmt(cause.atMs)}` })
  }
  counts.duplicates = duplicates.length

  // Leadership, from the nodes' own logs (complete even while a node was cut off).
  const dispatches: CheckResult['dispatches'] = []
  const leaderChanges: CheckResult['leaderChanges'] = []
  const memberLost: CheckResult['memberLost'] = []
  for (const r of d.records) {
    for (const l of parseLog(r.log)) {
      if (l.msg === 'dispatching as leader') dispatches.push({ atMs: rel(l.time), host: r.host, term: Number(l.term) })
      else if (l.msg === 'leader changed' || l.msg === 'no leader') leaderChanges.push({ atMs: rel(l.time), host: r.host, leader: typeof l.leader === 'string' ? l.leader : null, term: typeof l.term === 'number' ? l.term : null })
      else if (l.msg === 'member dead' || l.msg === 'member suspect') memberLost.push({ atMs: rel(l.time), host: r.host, member: String(l.member), to: l.msg === 'member dead' ? 'dead' : 'suspect' })
    }
  }
  dispatches.sort((a, b) => a.atMs - b.atMs)
  leaderChanges.sort((a, b) => a.atMs - b.atMs)
  const byTerm = new Map<number, Set<string>>()
  for (const x of dispatches) byTerm.set(x.term, (byTerm.get(x.term) ?? new Set()).add(x.host))
  for (const [term, hosts] of byTerm) {
    if (hosts.size > 1 && d.quorum > d.hosts.length / 2) violations.push({ kind: 'two-leaders-one-term', detail: `term ${term} dispatched by ${[...hosts].join(', ')}` })
  }
  // With a quorum, no one dispatches as leader on the minority side of a split once it has noticed.
  if (d.quorum > 0) {
    const graceMs = d.failureTimeoutMs + 1_000
    for (const f of d.observed.filter(o => o.kind === 'partition')) {
      if (f.minority.length >= d.quorum) continue
      const end = f.endMs ?? d.loadEndMs
      for (const x of dispatches) {
        if (f.minority.includes(x.host) && x.atMs >= f.atMs + graceMs && x.atMs <= end) {
          violations.push({ kind: 'minority-dispatch', detail: `${x.host} began dispatching (term ${x.term}) at ${fmt(x.atMs)}, cut off in a minority of ${f.minority.length} since ${fmt(f.atMs)}` })
        }
      }
    }
  }

  // Failovers: faults aimed at the leader, and how long the others took to notice and to dispatch again (see fault-timing.ts).
  memberLost.sort((a, b) => a.atMs - b.atMs)
  const endOf = (f: ObservedFault): number => f.endMs ?? (f.kind === 'kill' ? f.atMs : Math.min(d.loadEndMs, f.atMs + f.holdMs))
  const failovers: Failover[] = leaderFaults(d.observed, d.leaderSamples, { dispatches, leaderChanges, memberLost }, { failureTimeoutMs: d.failureTimeoutMs, endOf })
    .filter(f => f.how.endsWith('of the leader'))
    .map(f => ({ fault: f.fault, atMs: f.atMs, detectionMs: f.detectionMs, recoveryMs: f.recoveryMs }))

  const throughput: CheckResult['throughput'] = []
  for (const rec of finals.values()) {
    if (rec.finishedAt === null) continue
    const second = Math.floor(rel(rec.finishedAt) / 1_000)
    if (second < 0) continue
    while (throughput.length <= second) throughput.push({ second: throughput.length, ended: 0 })
    throughput[second]!.ended++
  }

  const med = (xs: Array<number | null>): string => {
    const v = xs.filter((x): x is number => x !== null).sort((a, b) => a - b)
    return v.length === 0 ? '-' : `${v[Math.floor(v.length / 2)]} ms`
  }
  const summary = [
    `seed ${d.seed}: ${counts.accepted} tasks accepted (${counts.refused} refused), ${counts.succeeded} succeeded, ${counts.failed} failed, ${counts.cancelled} cancelled`,
    `lost ${counts.lost}, double-recorded ${counts.doubleRecorded}, ${counts.executions} recorded executions, ${counts.duplicates} tasks executed twice`,
    `${d.observed.length} faults injected; ${failovers.length} hit the leader: detection median ${med(failovers.map(f => f.detectionMs))}, new leader dispatching median ${med(failovers.map(f => f.recoveryMs))}`,
    `settled ${d.settledAfterMs === null ? 'NEVER' : `${(d.settledAfterMs / 1000).toFixed(1)} s`} after the faults stopped; ${byTerm.size} terms dispatched`,
    violations.length === 0 ? 'invariants: all hold' : `INVARIANTS BROKEN: ${violations.length}\n${violations.slice(0, 20).map(v => `  ${v.kind}: ${v.detail}`).join('\n')}`
  ].join('\n')
  return { violations, counts, duplicates, failovers, dispatches, leaderChanges, memberLost, throughput, finals, summary }
}

function fmt (ms: number): string {
  return `+${(ms / 1000).toFixed(1)}s`
}
