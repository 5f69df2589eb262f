import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { resolveRunAt } from '../../src/core/delay.ts'
import { DueHeap } from '../../src/core/due-heap.ts'
import { classifyHandOver } from '../../src/core/hand-over.ts'
import { Scheduler } from '../../src/core/scheduler.ts'
import type { WorkerSlots } from '../../src/core/scheduler.ts'
import { mergeUpdate, newRecord, newestUpdate, retryOf, terminalBeats } from '../../src/core/tasks.ts'
import type { TaskRecord, TaskSpec, TaskUpdate } from '../../src/core/tasks.ts'

const config = { maxQueuedTasks: 100, retryBaseMs: 100, retryMaxMs: 1_000, resultGraceMs: 1_000, outstandingPerSlot: 1 }

function spec (id: string, over: Partial<TaskSpec> = {}): TaskSpec {
  return { id, type: 'echo', payload: null, priority: 0, timeoutMs: 5_000, maxAttempts: 3, idempotencyKey: null, createdAt: 0, origin: 'o', replicas: ['r'], ...over }
}

const w = (id: string, capacity = 1_000): WorkerSlots => ({ id, capacity, types: ['echo'] })

function ids (s: Scheduler, now: number): string[] {
  return [...s.dispatch([w('a')], now).assignments.values()].flat().map(a => a.spec.id)
}

describe('resolveRunAt', () => {
  it('turns delayMs into a runAt on the origin\'s clock, and runs at once without either, with a delay of 0 or a runAt already past', () => {
    expect(resolveRunAt({ delayMs: 1_500 }, 10_000, 60_000)).toEqual({ ok: true, runAt: 11_500 })
    expect(resolveRunAt({ runAt: 20_000 }, 10_000, 60_000)).toEqual({ ok: true, runAt: 20_000 })
    expect(resolveRunAt({}, 10_000, 60_000)).toEqual({ ok: true, runAt: undefined })
    expect(resolveRunAt({ delayMs: 0 }, 10_000, 60_000)).toEqual({ ok: true, runAt: undefined })
    expect(resolveRunAt({ runAt: 9_000 }, 10_000, 60_000)).toEqual({ ok: true, runAt: undefined })
  })

  it('refuses both at once, a negative or fractional delay, and a delay beyond the longest, each with a message naming the field', () => {
    const refused = (input: { runAt?: number, delayMs?: number }): string => {
      const v = resolveRunAt(input, 10_000, 60_000)
      if (v.ok) throw new Error('accepted')
      return v.message
    }
    expect(refused({ runAt: 20_000, delayMs: 5 })).toMatch(/runAt .*delayMs, not both/)
    expect(refused({ delayMs: -1 })).toMatch(/delayMs must be .* 0 or more/)
    expect(refused({ delayMs: 1.5 })).toMatch(/delayMs/)
    expect(refused({ delayMs: 60_001 })).toMatch(/longest delay/)
    expect(refused({ runAt: 70_001 })).toMatch(/runAt .* ahead/)
  })
})

describe('DueHeap', () => {
  it('pops due times in order, ties in push order', () => {
    fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 50 }), { maxLength: 200 }), times => {
      const h = new DueHeap()
      times.forEach((t, i) => { h.push({ atMs: t, id: String(i) }) })
      const out: Array<[number, number]> = []
      for (let d = h.pop(); d !== undefined; d = h.pop()) out.push([d.atMs, Number(d.id)])
      const expected = times.map((t, i) => [t, i] as [number, number]).sort((a, b) => a[0] - b[0] || a[1] - b[1])
      expect(out).toEqual(expected)
    }))
  })
})

describe('Scheduler: delayed tasks', () => {
  it('holds a delayed task as scheduled until its runAt, then queues and places it, never before', () => {
    const s = new Scheduler(config)
    s.enqueue(spec('later', { runAt: 1_000 }), 0, 0)
    s.enqueue(spec('now'), 0, 0)
    expect(s.status('later')).toBe('scheduled')
    expect(s.scheduled).toBe(1)
    expect(s.nextDueMs(0)).toBe(1_000)
    expect(ids(s, 0)).toEqual(['now'])
    expect(s.tick(999)).toEqual([])
    expect(ids(s, 999)).toEqual([])
    const updates = s.tick(1_000)
    expect(updates.map(u => [u.id, u.status, u.attempts])).toEqual([['later', 'queued', 0]])
    expect(s.nextDueMs(1_000)).toBeNull()
    expect(ids(s, 1_000)).toEqual(['later'])
  })

  it('queues at once a delayed task whose runAt has passed when it is taken in (a new leader after the due time)', () => {
    const s = new Scheduler(config)
    s.enqueue(spec('late', { runAt: 1_000 }), 0, 5_000)
    expect(s.status('late')).toBe('queued')
    expect(ids(s, 5_000)).toEqual(['late'])
  })

  it('queues due tasks in due order, priority first among those due together', () => {
    const s = new Scheduler(config)
    s.enqueue(spec('c', { runAt: 300 }), 0, 0)
    s.enqueue(spec('a', { runAt: 100 }), 0, 0)
    s.enqueue(spec('b', { runAt: 200, priority: 5 }), 0, 0)
    expect(s.nextDueMs(0)).toBe(100)
    s.tick(100)
    expect(s.nextDueMs(100)).toBe(200)
    s.tick(300)
    expect(ids(s, 300)).toEqual(['b', 'a', 'c'])
  })

  it('cancels a scheduled task at once, and its due time no longer counts', () => {
    const s = new Scheduler(config)
    s.enqueue(spec('x', { runAt: 1_000 }), 0, 0)
    const r = s.cancel('x', 10)
    expect(r?.updates.map(u => u.status)).toEqual(['cancelled'])
    expect(s.scheduled).toBe(0)
    expect(s.nextDueMs(10)).toBeNull()
    expect(s.tick(2_000)).toEqual([])
  })

  it('counts scheduled tasks against maxQueuedTasks', () => {
    const s = new Scheduler({ ...config, maxQueuedTasks: 2 })
    expect(s.enqueue(spec('a', { runAt: 1_000 }), 0, 0)).toBe('queued')
    expect(s.enqueue(spec('b'), 0, 0)).toBe('queued')
    expect(s.enqueue(spec('c', { runAt: 1_000 }), 0, 0)).toBe('full')
  })

  it('never places a task before its runAt, whatever the order of submits, ticks and dispatches', () => {
    fc.assert(fc.property(
      fc.array(fc.record({ delay: fc.integer({ min: 0, max: 500 }), at: fc.integer({ min: 0, max: 500 }) }), { minLength: 1, maxLength: 40 }),
      fc.array(fc.integer({ min: 1, max: 60 }), { minLength: 1, maxLength: 60 }),
      (tasks, steps) => {
        const s = new Scheduler({ ...config, maxQueuedTasks: 1_000 })
        const runAt = new Map<string, number>()
        const placed = new Map<string, number>()
        let now = 0
        const submitAt = tasks.map((t, i) => ({ ...t, id: `t${i}` })).sort((a, b) => a.at - b.at)
        const step = (): void => {
          for (const t of submitAt) {
            if (t.at > now || runAt.has(t.id)) continue
            runAt.set(t.id, t.at + t.delay)
            s.enqueue(spec(t.id, { createdAt: t.at, ...(t.delay > 0 ? { runAt: t.at + t.delay } : {}) }), 0, now)
          }
          s.tick(now)
          for (const id of ids(s, now)) placed.set(id, now)
        }
        for (const dt of [...steps, 1_000]) { step(); now += dt }
        step()
        for (const [id, at] of placed) expect(at).toBeGreaterThanOrEqual(runAt.get(id)!)
        expect(placed.size).toBe(tasks.length)
      }))
  })
})

function failedRecord (over: Partial<TaskRecord> = {}): TaskRecord {
  return { ...newRecord(spec('f')), status: 'failed', attempts: 3, worker: 'a', error: 'boom', startedAt: 10, finishedAt: 20, ...over }
}

describe('retryOf', () => {
  it('queues a failed or cancelled task again in a new generation, attempts continuing, with the previous maxAttempts once more by default', () => {
    const v = retryOf(failedRecord(), undefined, 100, 50)
    expect(v.ok).toBe(true)
    if (!v.ok) return
    expect(v.attempts).toBe(3)
    expect(v.spec.maxAttempts).toBe(6)
    expect(v.spec.retries).toBe(1)
    expect(v.update).toMatchObject({ id: 'f', status: 'queued', attempts: 3, retries: 1, maxAttempts: 6, error: null, finishedAt: null })
    const c = retryOf(failedRecord({ status: 'cancelled', attempts: 0 }), 2, 100, 50)
    expect(c.ok && [c.spec.maxAttempts, c.attempts]).toEqual([2, 0])
  })

  it('lets a delayed task cancelled before its runAt wait for it again, and queues one retried after it at once', () => {
    const delayed = failedRecord({ status: 'cancelled', attempts: 0, createdAt: 0, runAt: 1_000 })
    expect((retryOf(delayed, undefined, 100, 500) as { update: TaskUpdate }).update.status).toBe('scheduled')
    expect((retryOf(delayed, undefined, 100, 1_000) as { update: TaskUpdate }).update.status).toBe('queued')
  })

  it('refuses a task that has not ended as failed or cancelled, and a maxAttempts that leaves no attempt', () => {
    for (const status of ['scheduled', 'queued', 'assigned', 'running', 'retrying', 'succeeded'] as const) {
      const v = retryOf(failedRecord({ status }), undefined, 100, 50)
      expect(!v.ok && v.reason).toBe('not-retryable')
    }
    const v = retryOf(failedRecord(), 3, 100, 50)
    expect(!v.ok && v.reason).toBe('bad-max-attempts')
  })
})

describe('generations in the state machine', () => {
  const rec = failedRecord()
  const retry = (retryOf(rec, undefined, 100, 50) as Extract<ReturnType<typeof retryOf>, { ok: true }>).update
  const oldEnding: TaskUpdate = { id: 'f', status: 'failed', attempts: 3, worker: 'b', progress: null, result: null, error: 'late', startedAt: 1, finishedAt: 30 }

  it('lets a retry reopen an ended record, and no update of the older generation close it again', () => {
    const reopened = mergeUpdate(rec, retry)
    expect(reopened).toMatchObject({ status: 'queued', retries: 1, maxAttempts: 6 })
    expect(mergeUpdate(reopened!, oldEnding)).toBeNull()
    const next: TaskUpdate = { id: 'f', status: 'assigned', attempts: 4, worker: 'a', progress: null, result: null, error: null, startedAt: null, finishedAt: null, retries: 1, maxAttempts: 6 }
    expect(mergeUpdate(reopened!, next)).toMatchObject({ status: 'assigned', attempts: 4 })
  })

  it('ranks an ending of a newer generation before any of an older one', () => {
    const newer = { ...oldEnding, status: 'failed' as const, attempts: 6, retries: 1 }
    expect(terminalBeats(newer, { ...oldEnding, status: 'succeeded' })).toBe(true)
    expect(terminalBeats({ ...oldEnding, status: 'succeeded' }, newer)).toBe(false)
  })

  it('keeps the generation and its maxAttempts when two waiting updates are coalesced', () => {
    const assigned: TaskUpdate = { ...retry, status: 'assigned', attempts: 4, worker: 'a' }
    expect(newestUpdate(retry, assigned)).toMatchObject({ status: 'assigned', retries: 1, maxAttempts: 6 })
    expect(newestUpdate(assigned, oldEnding)).toMatchObject({ status: 'assigned', retries: 1 })
  })
})

describe('take-over of retried tasks', () => {
  it('queues the newest generation any holder has, with its maxAttempts, not an older copy with as many attempts', () => {
    const s = new Scheduler(config)
    const old = spec('r', { maxAttempts: 2 })
    const retried = spec('r', { maxAttempts: 4, retries: 1 })
    const t = s.takeOver([
      { from: 'a', running: [], held: [{ spec: old, attempts: 2 }] },
      { from: 'b', running: [], held: [{ spec: retried, attempts: 2 }] }
    ], new Set(['a', 'b']), 0)
    expect([t.queued, t.updates]).toEqual([1, []])
    const [a] = [...s.dispatch([w('a')], 0).assignments.values()].flat()
    expect([a?.spec.retries, a?.spec.maxAttempts, a?.attempt]).toEqual([1, 4, 3])
  })
})

describe('classifyHandOver of retried tasks', () => {
  it('queues a handed-over copy of a newer generation than the leader\'s own ended copy, and not one of the same generation', () => {
    const here = (): { status: 'failed', attempts: number, retries?: number } => ({ status: 'failed', attempts: 2 })
    const out = classifyHandOver([{ id: 'a', retries: 1 }, { id: 'b' }], [2, 2], id => id, here, () => false)
    expect(out.queue.map(t => t.id)).toEqual(['a'])
    expect(out.endedHere).toEqual(['b'])
  })
})
