/**
 * The fault schedule of a chaos run: a pure function of the seed and the
 * options, so the same seed always injects the same faults at the same times
 * (which host a role such as "leader" resolves to is decided at that moment,
 * and recorded in the report).
 */
import { seededRng } from '../lib/rng.ts'

export const FAULT_KINDS = ['kill', 'pause', 'partition', 'restart'] as const
export type FaultKind = typeof FAULT_KINDS[number]
export type Role = 'leader' | 'worker' | 'origin'

export interface PlannedFault {
  /** Milliseconds after the workload starts. */
  atMs: number
  kind: FaultKind
  /** Whom it hits (partitions: the side the role is on is the minority). */
  role: Role
  /** How long until it is undone (resume, heal, restart); kills last until the end of the faults. */
  holdMs: number
  /** Partitions only: one host cut off, or a minority/majority split. */
  shape?: 'isolate' | 'split'
}

export interface ScheduleOptions {
  seed: number
  durationMs: number
  faults: readonly FaultKind[]
  /** Faults per minute. */
  rate: number
}

/**
 * Faults at exponential intervals of mean 60/rate s, from 5 s into the
 * workload until 10 s before its end (so the last one is undone in time);
 * each of the allowed kinds equally likely.
 */
export function faultSchedule (opts: ScheduleOptions): PlannedFault[] {
  const rng = seededRng(opts.seed)
  const out: PlannedFault[] = []
  if (opts.faults.length === 0 || opts.rate <= 0) return out
  const meanGapMs = 60_000 / opts.rate
  const roles: Role[] = ['leader', 'worker', 'origin']
  for (let t = 5_000 + Math.floor(rng() * meanGapMs); t < opts.durationMs - 10_000; t += Math.max(1_000, Math.floor(-Math.log(1 - rng()) * meanGapMs))) {
    const kind = opts.faults[Math.floor(rng() * opts.faults.length)]!
    const role = roles[Math.floor(rng() * roles.length)]!
    const holdMs = 1_000 + Math.floor(rng() * 5_000)
    const fault: PlannedFault = { atMs: t, kind, role, holdMs }
    if (kind === 'partition') fault.shape = rng() < 0.5 ? 'isolate' : 'split'
    out.push(fault)
  }
  return out
}

export function parseFaults (list: string): FaultKind[] {
  const kinds = list.split(',').map(s => s.trim()).filter(s => s !== '')
  for (const k of kinds) {
    if (!(FAULT_KINDS as readonly string[]).includes(k)) throw new Error(`unknown fault "${k}" (known: ${FAULT_KINDS.join(', ')})`)
  }
  return kinds as FaultKind[]
}
