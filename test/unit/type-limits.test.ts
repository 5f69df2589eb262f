import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { Scheduler } from '../../src/core/scheduler.ts'
import type { WorkerSlots } from '../../src/core/scheduler.ts'
import { TypeLimiter, newerLimit } from '../../src/core/type-limits.ts'
import type { TaskSpec } from '../../src/core/tasks.ts'

const config = { maxQueuedTasks: 10_000, retryBaseMs: 100, retryMaxMs: 1_000, resultGraceMs: 1_000, outstandingPerSlot: 1 }

function spec (id: string, type = 'resize'): TaskSpec {
  return { id, type, payload: null, priority: 0, timeoutMs: 5_000, maxAttempts: 3, idempotencyKey: null, createdAt: 0, origin: 'o', replicas: [] }
}

const workers: WorkerSlots[] = [{ id: 'a', capacity: 8, types: ['resize', 'echo'] }, { id: 'b', capacity: 8, types: ['resize', 'echo'] }]

function placed (s: Scheduler, now: number): Array<{ id: string, worker: string, attempt: number }> {
  return [...s.dispatch(workers, now).assignments].flatMap(([worker, batch]) => batch.map(a => ({ id: a.spec.id, worker, attempt: a.attempt })))
}

describe('TypeLimiter', () => {
  it('admits at most maxConcurrent at once, and again when one ends', () => {
    const l = new TypeLimiter()
    l.set('resize', { maxConcurrent: 2 })
    expect(l.admits('resize', 0)).toBe(true)
    l.take('resize', 0)
    l.take('resize', 0)
    expect(l.admits('resize', 0)).toBe(false)
    expect(l.admits('echo', 0)).toBe(true)
    l.release('resize')
    expect(l.admits('resize', 0)).toBe(true)
  })

  it('admits perSecond starts a second (a second\'s worth at once), and says when the next token comes', () => {
    const l = new TypeLimiter()
    l.set('mail', { perSecond: 4 })
    for (let i = 0; i < 4; i++) { expect(l.admits('mail', 0)).toBe(true); l.take('mail', 0); l.release('mail') }
    expect(l.admits('mail', 0)).toBe(false)
    expect(l.nextTokenMs('mail', 0)).toBe(250)
    expect(l.admits('mail', 249)).toBe(false)
    expect(l.admits('mail', 250)).toBe(true)
  })

  it('never starts more than perSecond x (seconds + 1) over any run of dispatch times', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 20 }), fc.array(fc.integer({ min: 0, max: 400 }), { minLength: 1, maxLength: 200 }), (rate, gaps) => {
      const l = new TypeLimiter()
      l.set('t', { perSecond: rate })
      let now = 0
      let started = 0
      for (const g of gaps) {
        now += g
        while (l.admits('t', now)) { l.take('t', now); l.release('t'); started++ }
      }
      expect(started).toBeLessThanOrEqual(rate * (now / 1000 + 1) + 1e-9)
    }))
  })

  it('orders settings by when they were set, then by who set them', () => {
    expect(newerLimit({ version: 2, by: 'a' }, { version: 1, by: 'z' })).toBe(true)
    expect(newerLimit({ version: 1, by: 'b' }, { version: 1, by: 'a' })).toBe(true)
    expect(newerLimit({ version: 1, by: 'a' }, { version: 1, by: 'a' })).toBe(false)
  })
})

describe('Scheduler with per-type limits', () => {
  it('never has more than maxConcurrent attempts of a type out, whatever ends when, and other types pass by', () => {
    fc.assert(fc.property(fc.array(fc.integer({ min: 0, max: 9 }), { minLength: 1, maxLength: 120 }), ends => {
      const s = new Scheduler(config)
      s.limiter.set('resize', { maxConcurrent: 2 })
      for (let i = 0; i < 30; i++) s.enqueue(spec(`r${i}`), 0, 0)
      for (let i = 0; i < 5; i++) s.enqueue(spec(`e${i}`, 'echo'), 0, 0)
      const out = new Map<string, { worker: string, attempt: number }>()
      let now = 0
      const step = (): void => {
        for (const p of placed(s, now)) out.set(p.id, p)
        const resizing = [...out.keys()].filter(id => id.startsWith('r')).length
        expect(resizing).toBeLessThanOrEqual(2)
        expect(s.limiter.running('resize')).toBe(resizing)
      }
      step()
      expect([...out.keys()].filter(id => id.startsWith('e'))).toHaveLength(5)
      for (const k of ends) {
        const ids = [...out.keys()]
        const id = ids[k % Math.max(1, ids.length)]
        if (id !== undefined) {
          const a = out.get(id)!
          out.delete(id)
          s.onResult(id, a.worker, a.attempt, k % 3 === 0 ? { ok: false, error: 'x' } : { ok: true, result: null }, now)
        }
        now += 200
        s.tick(now)
        step()
      }
    }))
  })

  it('holds back a rate-limited type until its next token, and says when that is', () => {
    const s = new Scheduler(config)
    s.limiter.set('resize', { perSecond: 2 })
    for (let i = 0; i < 5; i++) s.enqueue(spec(`r${i}`), 0, 0)
    expect(placed(s, 0).map(p => p.id)).toEqual(['r0', 'r1'])
    expect(s.nextDueMs(0)).toBe(500)
    expect(s.typeCounts(0).get('resize')).toEqual({ queued: 3, running: 2, limited: 3 })
    expect(placed(s, 499)).toEqual([])
    expect(placed(s, 500).map(p => p.id)).toEqual(['r2'])
    expect(placed(s, 1_000).map(p => p.id)).toEqual(['r3'])
  })

  it('counts adopted attempts against maxConcurrent', () => {
    const s = new Scheduler(config)
    s.limiter.set('resize', { maxConcurrent: 1 })
    s.adopt(spec('old'), 'a', 1, 0, 0)
    s.enqueue(spec('new'), 0, 0)
    expect(placed(s, 0)).toEqual([])
    s.onResult('old', 'a', 1, { ok: true, result: null }, 10)
    expect(placed(s, 10).map(p => p.id)).toEqual(['new'])
  })
})
