import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { DependencyGate, MAX_PARENTS, findCycle, planBatch } from '../../src/core/dependencies.ts'
import { Scheduler } from '../../src/core/scheduler.ts'
import { mergeUpdate, newRecord, retryOf } from '../../src/core/tasks.ts'
import type { TaskRecord, TaskSpec } from '../../src/core/tasks.ts'

function spec (id: string, over: Partial<TaskSpec> = {}): TaskSpec {
  return { id, type: 'echo', payload: null, priority: 0, timeoutMs: 5_000, maxAttempts: 3, idempotencyKey: null, createdAt: 0, origin: 'o', replicas: ['r'], ...over }
}

const ok = { status: 'succeeded' as const, error: null }

describe('planBatch: the dependency graph of one batch', () => {
  it('maps refs of the batch to item indexes and leaves other names as existing task ids, in any order of the items', () => {
    const plan = planBatch([
      { ref: 'c', dependsOn: ['b', 'a'] },
      { ref: 'a' },
      { ref: 'b', dependsOn: ['a', 'task-123', 'a'] }
    ])
    expect(plan).toEqual({ ok: true, items: [{ local: [2, 1], ids: [] }, { local: [], ids: [] }, { local: [1], ids: ['task-123'] }] })
  })

  it('refuses a cycle, naming it by its refs', () => {
    const plan = planBatch([{ ref: 'a', dependsOn: ['c'] }, { ref: 'b', dependsOn: ['a'] }, { ref: 'c', dependsOn: ['b'] }, { ref: 'd', dependsOn: ['a'] }])
    expect(plan.ok).toBe(false)
    if (!plan.ok) expect(plan.message).toMatch(/^dependsOn forms a cycle: (a -> c -> b -> a|c -> b -> a -> c|b -> a -> c -> b)$/)
  })

  it('refuses a task depending on itself, a ref used twice and too many parents', () => {
    const msg = (items: Parameters<typeof planBatch>[0]): string => { const p = planBatch(items); if (p.ok) throw new Error('accepted'); return p.message }
    expect(msg([{ ref: 'a', dependsOn: ['a'] }])).toBe('tasks[0] (ref "a") depends on itself')
    expect(msg([{ ref: 'a' }, { ref: 'a' }])).toMatch(/ref "a" is used by tasks\[0\] and tasks\[1\]/)
    expect(msg([{ dependsOn: Array.from({ length: MAX_PARENTS + 1 }, (_, i) => `t${i}`) }])).toMatch(/at most 100/)
  })

  it('findCycle agrees with a naive reference (a graph is acyclic iff repeatedly removing nodes without open edges empties it)', () => {
    fc.assert(fc.property(fc.integer({ min: 1, max: 8 }).chain(n => fc.array(fc.array(fc.integer({ min: 0, max: n - 1 }), { maxLength: 3 }), { minLength: n, maxLength: n })), edges => {
      const cycle = findCycle(edges)
      const left = new Set(edges.keys())
      for (let changed = true; changed;) {
        changed = false
        for (const n of left) if (edges[n]!.every(m => !left.has(m))) { left.delete(n); changed = true }
      }
      expect(cycle === null).toBe(left.size === 0)
      // A cycle found is one: each node depends on the next, the last on the first.
      if (cycle !== null) cycle.forEach((n, i) => { expect(edges[n]).toContain(cycle[(i + 1) % cycle.length]) })
    }), { seed: 17, numRuns: 500 })
  })
})

describe('DependencyGate: the leader\'s waiting tasks', () => {
  it('releases a task once its last parent succeeded, with every parent\'s result by id, in dependsOn order', () => {
    const gate = new DependencyGate()
    expect(gate.add(spec('c', { dependsOn: ['a', 'b'] }), 0)).toBe(true)
    expect(gate.openParents().sort()).toEqual(['a', 'b'])
    expect(gate.parentEnded({ id: 'b', ...ok, result: 2 }, 10)).toEqual({ released: [], failed: [] })
    const d = gate.parentEnded({ id: 'a', ...ok, result: { one: 1 } }, 20)
    expect(d.failed).toEqual([])
    expect(d.released).toHaveLength(1)
    expect(d.released[0]!.spec.parents).toEqual({ a: { one: 1 }, b: 2 })
    expect(Object.keys(d.released[0]!.spec.parents!)).toEqual(['a', 'b'])
    expect(d.released[0]!.update).toMatchObject({ id: 'c', status: 'queued', attempts: 0 })
    expect(gate.size).toBe(0)
    expect(gate.openParents()).toEqual([])
    // A released spec carries its parents: the gate no longer holds it.
    expect(DependencyGate.gates(d.released[0]!.spec)).toBe(false)
  })

  it('fails a task, naming the parent, when a parent fails or is cancelled; an unfinished parent status changes nothing', () => {
    const gate = new DependencyGate()
    gate.add(spec('x', { dependsOn: ['p'] }), 0)
    gate.add(spec('y', { dependsOn: ['q', 'p'] }), 0)
    expect(gate.parentEnded({ id: 'p', status: 'running', result: null, error: null }, 5)).toEqual({ released: [], failed: [] })
    const failed = gate.parentEnded({ id: 'p', status: 'failed', result: null, error: 'boom' }, 7)
    expect(failed.released).toEqual([])
    expect(failed.failed.map(u => [u.id, u.status, u.error, u.finishedAt])).toEqual([
      ['x', 'failed', 'parent task "p" failed: boom', 7],
      ['y', 'failed', 'parent task "p" failed: boom', 7]
    ])
    // y no longer waits for q either.
    expect(gate.openParents()).toEqual([])
    gate.add(spec('z', { dependsOn: ['q'] }), 0)
    expect(gate.parentEnded({ id: 'q', status: 'cancelled', result: null, error: 'cancelled by request' }, 9).failed[0]!.error).toBe('parent task "q" was cancelled')
  })

  it('cancels a waiting task, which then waits for nothing', () => {
    const gate = new DependencyGate()
    gate.add(spec('c', { dependsOn: ['a'] }), 0)
    expect(gate.cancel('c', 3)).toMatchObject({ id: 'c', status: 'cancelled', error: 'cancelled by request', finishedAt: 3 })
    expect(gate.cancel('c', 4)).toBeNull()
    expect(gate.parentEnded({ id: 'a', ...ok, result: 1 }, 5)).toEqual({ released: [], failed: [] })
  })

  it('keeps one entry per task: the same generation again is ignored, a newer one (a user\'s retry) replaces it', () => {
    const gate = new DependencyGate()
    expect(gate.add(spec('c', { dependsOn: ['a'] }), 0)).toBe(true)
    expect(gate.add(spec('c', { dependsOn: ['a'] }), 0)).toBe(false)
    expect(gate.add(spec('c', { dependsOn: ['a'], retries: 1, maxAttempts: 4 }), 3)).toBe(true)
    expect(gate.size).toBe(1)
    const d = gate.parentEnded({ id: 'a', ...ok, result: 'r' }, 1)
    expect(d.released[0]!.update).toMatchObject({ id: 'c', attempts: 3, retries: 1, maxAttempts: 4 })
  })

  it('releases a delayed task with parents as scheduled when its runAt is still ahead; the Scheduler then holds it until then', () => {
    const gate = new DependencyGate()
    gate.add(spec('c', { dependsOn: ['a'], runAt: 1_000 }), 0)
    const { released } = gate.parentEnded({ id: 'a', ...ok, result: null }, 500)
    expect(released[0]!.update.status).toBe('scheduled')
    const s = new Scheduler({ maxQueuedTasks: 10, retryBaseMs: 10, retryMaxMs: 100, resultGraceMs: 100, outstandingPerSlot: 1 })
    expect(s.enqueue(released[0]!.spec, 0, 500)).toBe('queued')
    expect(s.status('c')).toBe('scheduled')
    // The assignment carries the parents' results to the worker.
    s.tick(1_000)
    const a = [...s.dispatch([{ id: 'w', capacity: 1, types: ['echo'] }], 1_000).assignments.values()].flat()
    expect(a.map(x => x.spec.parents)).toEqual([{ a: null }])
  })

  it('fails no child for a cancel or a failure the leader decided until a holder\'s record confirms it: a success its worker sent the holders directly beats it there (seed 1 of the dependency simulation)', () => {
    const gate = new DependencyGate()
    gate.add(spec('c1', { dependsOn: ['p'] }), 0)
    gate.add(spec('c2', { dependsOn: ['p', 'q'] }), 0)
    // The leader lost track of p's attempt (the assignment's reply was lost: it counts the attempt as
    // failed and waits to retry it), while the worker ran it and sent its success to p's holders.
    // A user's cancel then reaches the leader, which ends p as cancelled.
    const holder = { ...newRecord(spec('p')), status: 'succeeded' as const, attempts: 1, worker: 'w', result: 7, finishedAt: 10 }
    const cancel = { id: 'p', status: 'cancelled' as const, attempts: 1, worker: 'w', progress: null, result: null, error: 'cancelled by request', startedAt: null, finishedAt: 20 }
    expect(gate.decided(cancel, 20)).toEqual({ released: [], failed: [], confirm: true })
    expect(gate.size).toBe(2)
    // The holders keep the success (a result beats a cancel), and that record is what the children see.
    expect(mergeUpdate(holder, cancel)).toBeNull()
    const d = gate.parentEnded(holder, 30)
    expect(d.failed).toEqual([])
    expect(d.released.map(r => [r.spec.id, r.spec.parents])).toEqual([['c1', { p: 7 }]])
    expect(gate.openParents()).toEqual(['q'])
    // A cancel of q that its record confirms: c2 fails for it.
    expect(gate.decided({ ...cancel, id: 'q' }, 40).confirm).toBe(true)
    expect(gate.parentEnded({ ...cancel, id: 'q' }, 50).failed.map(u => [u.id, u.error])).toEqual([['c2', 'parent task "q" was cancelled']])
    expect(gate.size).toBe(0)
  })

  it('acts at once on a success the leader decided; a decided ending no waiting task names asks for nothing', () => {
    const gate = new DependencyGate()
    gate.add(spec('c', { dependsOn: ['a'] }), 0)
    expect(gate.decided({ id: 'b', status: 'failed', result: null, error: 'boom' }, 1)).toEqual({ released: [], failed: [], confirm: false })
    expect(gate.decided({ id: 'a', status: 'running', result: null, error: null }, 1).confirm).toBe(false)
    const d = gate.decided({ id: 'a', ...ok, result: 'r' }, 2)
    expect(d.confirm).toBe(false)
    expect(d.released.map(r => [r.spec.id, r.spec.parents])).toEqual([['c', { a: 'r' }]])
  })

  it('a three-task chain: each released only when the one before succeeded, with its result', () => {
    const gate = new DependencyGate()
    gate.add(spec('b', { dependsOn: ['a'] }), 0)
    gate.add(spec('c', { dependsOn: ['b'] }), 0)
    const first = gate.parentEnded({ id: 'a', ...ok, result: 1 }, 1)
    expect(first.released.map(r => r.spec.id)).toEqual(['b'])
    expect(gate.parentEnded({ id: 'b', ...ok, result: 2 }, 2).released.map(r => [r.spec.id, r.spec.parents])).toEqual([['c', { b: 2 }]])
  })
})

describe('task records with parents', () => {
  it('start as waiting, and waiting ranks below every other status of the same attempt', () => {
    const rec = newRecord(spec('c', { dependsOn: ['a'] }))
    expect(rec.status).toBe('waiting')
    expect(newRecord(spec('d', { dependsOn: ['a'], runAt: 100 })).status).toBe('waiting')
    expect(mergeUpdate(rec, { ...rec, status: 'scheduled' })?.status).toBe('scheduled')
    expect(mergeUpdate(rec, { ...rec, status: 'queued' })?.status).toBe('queued')
    expect(mergeUpdate({ ...rec, status: 'queued' }, { ...rec, status: 'waiting' })).toBeNull()
  })

  it('keep the parents\' results the release set, whatever later updates of the same generation carry; a newer generation drops them', () => {
    const rec = newRecord(spec('c', { dependsOn: ['a'] }))
    const released = mergeUpdate(rec, { ...rec, status: 'queued', parents: { a: 1 } })!
    expect(released.parents).toEqual({ a: 1 })
    const running = mergeUpdate(released, { ...rec, status: 'running', attempts: 1, worker: 'w', startedAt: 5 })!
    expect(running.parents).toEqual({ a: 1 })
    const done = mergeUpdate(running, { ...rec, status: 'succeeded', attempts: 1, worker: 'w', result: 'r', finishedAt: 9 })!
    expect(done).toMatchObject({ status: 'succeeded', parents: { a: 1 } })
    // The release reaching a holder after the ending (the worker's update came first): it adds them, nothing else.
    const late = mergeUpdate({ ...done, parents: undefined }, { ...rec, status: 'queued', parents: { a: 1 } })!
    expect(late).toMatchObject({ status: 'succeeded', result: 'r', parents: { a: 1 } })
    expect(mergeUpdate(done, { ...rec, status: 'queued', parents: { a: 1 } })).toBeNull()
    // A user's retry (generation 1) waits again: no results of generation 0.
    expect(mergeUpdate(done, { ...rec, status: 'waiting', retries: 1, maxAttempts: 4 })?.parents).toBeUndefined()
  })

  it('a user\'s retry of a task with parents waits for them again, without the old parents\' results', () => {
    const rec: TaskRecord = { ...newRecord(spec('c', { dependsOn: ['a'], parents: { a: 1 } })), status: 'failed', attempts: 0, error: 'parent task "a" failed' }
    const v = retryOf(rec, undefined, 100, 0)
    if (!v.ok) throw new Error(v.message)
    expect(v.update.status).toBe('waiting')
    expect(v.spec.parents).toBeUndefined()
    expect(DependencyGate.gates(v.spec)).toBe(true)
  })
})
