import { describe, expect, it } from 'vitest'
import { describeRequirement, matchesLabels, someMemberCanRun } from '../../src/core/labels.ts'
import { Placement } from '../../src/core/placement.ts'
import type { PlacementLoad, PlacementWorker } from '../../src/core/placement.ts'
import { Scheduler } from '../../src/core/scheduler.ts'
import type { TaskSpec } from '../../src/core/tasks.ts'

const w = (id: string, capacity = 2, labels?: Record<string, string>, types = ['echo']): PlacementWorker => ({ id, capacity, types, ...(labels === undefined ? {} : { labels }) })

/** Attempts placed per worker, counted as the scheduler would (window 1: a worker holds at most its capacity). */
function loadOf (running: Map<string, number>): PlacementLoad {
  return { running: id => running.get(id) ?? 0, window: () => 1 }
}

/** Places `n` tasks one after another, each taking a slot, and returns the workers chosen in order. */
function placeMany (p: Placement, workers: PlacementWorker[], n: number, spec: Partial<TaskSpec> = {}, start = new Map<string, number>()): string[] {
  const running = new Map(start)
  const out: string[] = []
  for (let i = 0; i < n; i++) {
    const chosen = p.place(workers, { type: 'echo', origin: 'nobody', ...spec }, loadOf(running))
    out.push(chosen?.id ?? '-')
    if (chosen !== null) running.set(chosen.id, (running.get(chosen.id) ?? 0) + 1)
  }
  return out
}

describe('labels', () => {
  it('matches a required key with any value for *, else exactly', () => {
    expect(matchesLabels({ gpu: 'a100', zone: 'rack2' }, { gpu: '*' })).toBe(true)
    expect(matchesLabels({ gpu: 'a100', zone: 'rack2' }, { gpu: 'a100', zone: 'rack2' })).toBe(true)
    expect(matchesLabels({ gpu: 'a100' }, { gpu: 'h100' })).toBe(false)
    expect(matchesLabels({ zone: 'rack2' }, { gpu: '*' })).toBe(false)
    expect(matchesLabels(undefined, { gpu: '*' })).toBe(false)
    expect(matchesLabels(undefined, undefined)).toBe(true)
    expect(matchesLabels({ gpu: '*' }, { gpu: 'a100' })).toBe(false)
  })

  it('says whether some member runs the type with the labels, and names the requirement', () => {
    const members = [{ types: ['echo'], labels: { gpu: 'a100' } }, { types: ['hash'] }]
    expect(someMemberCanRun(members, 'echo', { gpu: '*' })).toBe(true)
    expect(someMemberCanRun(members, 'hash', { gpu: '*' })).toBe(false)
    expect(someMemberCanRun(members, 'hash', undefined)).toBe(true)
    expect(describeRequirement({ gpu: '*', zone: 'rack2' })).toBe('gpu=*, zone=rack2')
  })
})

describe('placement strategies', () => {
  it('least-loaded prefers the origin with a free slot, then the smallest share of slots in use', () => {
    const p = new Placement('least-loaded')
    const workers = [w('a', 4), w('b', 2), w('c', 2)]
    expect(placeMany(p, workers, 2, { origin: 'c' })).toEqual(['c', 'c'])
    // Shares: a 2/4, b 0/2, c 1/2: b is least loaded.
    expect(p.place(workers, { type: 'echo', origin: 'nobody' }, loadOf(new Map([['a', 2], ['c', 1]])))?.id).toBe('b')
    // Spread evenly by share over 8 slots.
    const chosen = placeMany(new Placement(), workers, 8)
    expect(chosen.filter(x => x === 'a')).toHaveLength(4)
    expect(chosen.filter(x => x === 'b')).toHaveLength(2)
    expect(chosen.filter(x => x === 'c')).toHaveLength(2)
  })

  it('round-robin takes each candidate in turn by id, whatever its load and the origin', () => {
    const p = new Placement('round-robin')
    const workers = [w('a', 8), w('b', 8), w('c', 8)]
    expect(placeMany(p, workers, 7, { origin: 'c' }, new Map([['a', 5]]))).toEqual(['a', 'b', 'c', 'a', 'b', 'c', 'a'])
    // A worker that cannot take the task is passed over, and the turn goes on after the one placed on.
    const labelled = [w('a', 8, { gpu: 'x' }), w('b', 8), w('c', 8, { gpu: 'y' })]
    expect(placeMany(new Placement('round-robin'), labelled, 4, { require: { gpu: '*' } })).toEqual(['a', 'c', 'a', 'c'])
    // A full worker is passed over.
    expect(placeMany(new Placement('round-robin'), [w('a', 1), w('b', 3)], 4)).toEqual(['a', 'b', 'b', 'b'])
  })

  it('most-free-slots fills the node with the most slots not in use first', () => {
    const p = new Placement('most-free-slots')
    const workers = [w('small', 2), w('big', 16)]
    // big keeps the most free slots until it is down to 2; then they alternate.
    const chosen = placeMany(p, workers, 16)
    expect(chosen.slice(0, 14)).toEqual(Array(14).fill('big'))
    expect(chosen.slice(14).sort()).toEqual(['big', 'small'])
    // least-loaded would have put the second task on small (share 0 against 1/16).
    expect(placeMany(new Placement('least-loaded'), workers, 2)).toContain('small')
  })

  for (const strategy of ['least-loaded', 'round-robin', 'most-free-slots'] as const) {
    it(`${strategy} places a task only on a worker with its required labels, and nowhere when none has room`, () => {
      const p = new Placement(strategy)
      const workers = [w('a', 1), w('g', 1, { gpu: 'a100' }), w('h', 1, { gpu: 'h100' })]
      expect(placeMany(p, workers, 3, { require: { gpu: 'a100' } })).toEqual(['g', '-', '-'])
      // The origin is no exception.
      expect(new Placement(strategy).place(workers, { type: 'echo', origin: 'a', require: { gpu: '*' } }, loadOf(new Map()))?.id).toMatch(/^[gh]$/)
      expect(new Placement(strategy).place(workers, { type: 'hash', origin: 'g' }, loadOf(new Map()))).toBeNull()
    })
  }
})

describe('Scheduler with required labels', () => {
  const config = { maxQueuedTasks: 100, retryBaseMs: 100, retryMaxMs: 1_000, resultGraceMs: 1_000, outstandingPerSlot: 1 }
  const spec = (id: string, over: Partial<TaskSpec> = {}): TaskSpec => ({ id, type: 'echo', payload: null, priority: 0, timeoutMs: 5_000, maxAttempts: 3, idempotencyKey: null, createdAt: 0, origin: 'a', replicas: [], ...over })

  it('keeps a task whose matching worker is gone waiting, without holding up others, and places it when one is back', () => {
    const s = new Scheduler(config)
    s.enqueue(spec('gpu', { require: { gpu: '*' } }), 0, 0)
    s.enqueue(spec('plain'), 0, 0)
    const first = s.dispatch([w('a', 2)], 0)
    expect([...first.assignments.get('a') ?? []].map(x => x.spec.id)).toEqual(['plain'])
    expect(s.status('gpu')).toBe('queued')
    const later = s.dispatch([w('a', 2), w('g', 1, { gpu: 'a100' })], 10)
    expect([...later.assignments].map(([worker, batch]) => [worker, batch.map(x => x.spec.id)])).toEqual([['g', ['gpu']]])
  })

  it('uses the configured strategy', () => {
    const s = new Scheduler({ ...config, placement: 'round-robin' })
    for (let i = 0; i < 4; i++) s.enqueue(spec(`t${i}`, { origin: 'b' }), 0, 0)
    const d = s.dispatch([w('a', 4), w('b', 4)], 0)
    expect(d.assignments.get('a')?.length).toBe(2)
    expect(d.assignments.get('b')?.length).toBe(2)
  })
})
