import { describe, expect, it } from 'vitest'
import { terminalBeats } from '../../src/core/tasks.ts'
import type { TaskProgress, TaskStatus } from '../../src/core/tasks.ts'

/** terminalBeats as it was written before it skipped keys of equal fields: every key built, in order. */
function reference (a: TaskProgress, b: TaskProgress): boolean {
  if ((a.retries ?? 0) !== (b.retries ?? 0)) return (a.retries ?? 0) > (b.retries ?? 0)
  const rank: Partial<Record<TaskStatus, number>> = { succeeded: 0, cancelled: 1, failed: 2 }
  const ra = rank[a.status] ?? 3
  const rb = rank[b.status] ?? 3
  if (ra !== rb) return ra < rb
  if (a.attempts !== b.attempts) return a.attempts < b.attempts
  const keys: Array<(r: TaskProgress) => string> = [
    r => r.worker ?? '\uffff', r => String(r.finishedAt ?? Number.MAX_SAFE_INTEGER).padStart(20, '0'), r => r.error ?? '',
    r => JSON.stringify(r.result) ?? '', r => String(r.startedAt ?? -1).padStart(20, '0'), r => JSON.stringify(r.progress) ?? ''
  ]
  for (const key of keys) { const x = key(a); const y = key(b); if (x !== y) return x < y }
  return false
}

/** A small seeded generator, so that a failure replays. */
function rng (seed: number): () => number {
  let s = seed >>> 0
  return () => { s = (s * 1664525 + 1013904223) >>> 0; return s / 2 ** 32 }
}

describe('the order of terminal records', () => {
  it('is the same as building every key, over many random pairs (equal fields, nulls, equal results in different objects)', () => {
    const r = rng(14)
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(r() * xs.length)]!
    const ending = (): TaskProgress => ({
      status: pick(['succeeded', 'failed', 'cancelled'] as const),
      attempts: pick([1, 2]),
      worker: pick(['w1', 'w2', null]),
      progress: pick([null, 5, { p: 1 }]),
      result: pick([null, 'x', { n: 1 }, { n: 2 }, [1, 2]]),
      error: pick([null, '', 'boom']),
      startedAt: pick([null, 0, 5, 10]),
      finishedAt: pick([null, 9, 10, 100]),
      ...(r() < 0.1 ? { retries: 1 } : {})
    })
    for (let i = 0; i < 20_000; i++) {
      const a = ending()
      const b = r() < 0.3 ? structuredClone(a) : ending()
      expect(terminalBeats(a, b), JSON.stringify([a, b])).toBe(reference(a, b))
    }
  })
})
