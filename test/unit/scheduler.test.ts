import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { RunTimes, SHORT_RUN_MS, WIDE_WINDOW } from '../../src/core/run-times.ts'
import { Scheduler } from '../../src/core/scheduler.ts'
import type { WorkerSlots } from '../../src/core/scheduler.ts'
import { mergeUpdate, retryDelayMs } from '../../src/core/tasks.ts'
import type { TaskProgress, TaskSpec } from '../../src/core/tasks.ts'

const config = { maxQueuedTasks: 100, retryBaseMs: 100, retryMaxMs: 1_000, resultGraceMs: 1_000, outstandingPerSlot: 1 }

function spec (id: string, over: Partial<TaskSpec> = {}): TaskSpec {
  return { id, type: 'echo', payload: null, priority: 0, timeoutMs: 5_000, maxAttempts: 3, idempotencyKey: null, createdAt: 0, origin: 'o', replicas: [], ...over }
}

const w = (id: string, capacity = 1, types = ['echo', 'hash']): WorkerSlots => ({ id, capacity, types })

function assigned (s: Scheduler, workers: WorkerSlots[], now = 0): Array<[string, string, number]> {
  const d = s.dispatch(workers, now)
  return [...d.assignments].flatMap(([worker, batch]) => batch.map(a => [a.spec.id, worker, a.attempt] as [string, string, number]))
}

describe('Scheduler', () => {
  it('runs higher priorities first and FIFO within a priority', () => {
    const s = new Scheduler(config)
    s.enqueue(spec('low1', { priority: 0 }), 0, 0)
    s.enqueue(spec('high1', { priority: 5 }), 0, 0)
    s.enqueue(spec('low2', { priority: 0 }), 0, 0)
    s.enqueue(spec('high2', { priority: 5 }), 0, 0)
    expect(assigned(s, [w('a', 3)]).map(x => x[0])).toEqual(['high1', 'high2', 'low1'])
    expect(s.waiting).toBe(1)
  })

  it('places on the least-loaded worker that supports the type and has a free slot, batching per worker', () => {
    const s = new Scheduler(config)
    for (let i = 0; i < 6; i++) s.enqueue(spec(`t${i}`), 0, 0)
    s.enqueue(spec('h', { type: 'resize' }), 0, 0)
    const out = assigned(s, [w('a', 4), w('b', 2), w('c', 2, ['resize'])])
    const per = (x: string): number => out.filter(o => o[1] === x).length
    expect(per('a')).toBe(4)
    expect(per('b')).toBe(2)
    expect(out.find(o => o[0] === 'h')?.[1]).toBe('c')
    expect(s.running('a') / 4).toBe(s.running('b') / 2)
  })

  it('keeps a task no worker can take at the front of the queue, without blocking others', () => {
    const s = new Scheduler(config)
    s.enqueue(spec('needs-gpu', { type: 'gpu' }), 0, 0)
    s.enqueue(spec('plain'), 0, 0)
    expect(assigned(s, [w('a', 1)])).toEqual([['plain', 'a', 1]])
    expect(assigned(s, [w('a', 1), w('g', 1, ['gpu'])])).toEqual([['needs-gpu', 'g', 1]])
  })

  it('retries a failed attempt after an exponential backoff, then fails it after maxAttempts', () => {
    const s = new Scheduler(config)
    s.enqueue(spec('f', { maxAttempts: 3 }), 0, 0)
    let now = 0
    for (let attempt = 1; attempt <= 3; attempt++) {
      expect(assigned(s, [w('a')], now)).toEqual([['f', 'a', attempt]])
      const [u] = s.onResult('f', 'a', attempt, { ok: false, error: 'boom' }, now)
      if (attempt < 3) {
        expect(u).toMatchObject({ status: 'retrying', attempts: attempt, error: 'boom' })
        expect(assigned(s, [w('a')], now)).toEqual([])
        now += retryDelayMs(attempt, config.retryBaseMs, config.retryMaxMs)
        expect(s.tick(now)).toEqual([expect.objectContaining({ status: 'queued' })])
      } else {
        expect(u).toMatchObject({ status: 'failed', attempts: 3, error: 'boom', finishedAt: now })
      }
    }
    expect(s.active).toBe(0)
  })

  it('ignores stale reports: another worker, another attempt, or after the end', () => {
    const s = new Scheduler(config)
    s.enqueue(spec('t'), 0, 0)
    assigned(s, [w('a')])
    expect(s.onResult('t', 'b', 1, { ok: true, result: 1 }, 1)).toEqual([])
    expect(s.onResult('t', 'a', 2, { ok: true, result: 1 }, 1)).toEqual([])
    expect(s.onResult('t', 'a', 1, { ok: true, result: 1 }, 1)).toEqual([expect.objectContaining({ status: 'succeeded', result: 1 })])
    expect(s.onResult('t', 'a', 1, { ok: true, result: 2 }, 2)).toEqual([])
  })

  it('accepts a late success of an attempt it gave up on, recording that attempt and its worker, and naming the newer attempt to abort', () => {
    const s = new Scheduler(config)
    s.enqueue(spec('t', { timeoutMs: 100 }), 0, 0)
    assigned(s, [w('a')])
    s.tick(100 + 2 * config.resultGraceMs)
    s.tick(100 + 2 * config.resultGraceMs + config.retryBaseMs)
    expect(assigned(s, [w('b')], 3_000)).toEqual([['t', 'b', 2]])
    // The same record the worker sends the holders itself: attempt 1, on a.
    expect(s.lateSuccess('t', 'a', 1, 'done', null, 50, 3_100)).toEqual({ updates: [expect.objectContaining({ status: 'succeeded', attempts: 1, worker: 'a', startedAt: 50, result: 'done' })], abortOn: 'b' })
    expect(s.running('b')).toBe(0)
    expect(s.active).toBe(0)
  })

  it('ends a task when the success of an attempt it gave up on arrives during the backoff', () => {
    const s = new Scheduler(config)
    s.enqueue(spec('t', { timeoutMs: 100 }), 0, 0)
    assigned(s, [w('a')])
    expect(s.tick(100 + 2 * config.resultGraceMs)).toEqual([expect.objectContaining({ status: 'retrying' })])
    expect(s.onResult('t', 'a', 1, { ok: true, result: 'late' }, 2_200)).toEqual([])
    expect(s.lateSuccess('t', 'a', 1, 'late', null, 10, 2_200)).toEqual({ updates: [expect.objectContaining({ status: 'succeeded', attempts: 1, worker: 'a', result: 'late' })], abortOn: null })
    expect(s.waiting).toBe(0)
  })

  it('ends as cancelled, not retried, a task whose running attempt fails after a cancel', () => {
    const s = new Scheduler(config)
    s.enqueue(spec('t'), 0, 0)
    assigned(s, [w('a')])
    expect(s.cancel('t', 1)?.abortOn).toBe('a')
    expect(s.onWorkerLost('a', 2)).toEqual([expect.objectContaining({ status: 'cancelled' })])
  })

  it('takes over from inventories: adopts live attempts, queues the rest with the most attempts seen, fails exhausted ones', () => {
    const s = new Scheduler(config)
    const run = spec('run')
    const wait = spec('wait')
    const spent = spec('spent', { maxAttempts: 2 })
    const orphan = spec('orphan')
    const t = s.takeOver([
      { from: 'w1', running: [{ spec: run, attempt: 1, startedAt: 5 }], held: [{ spec: run, attempts: 1 }, { spec: wait, attempts: 0 }] },
      { from: 'w2', running: [], held: [{ spec: wait, attempts: 1 }, { spec: spent, attempts: 2 }] },
      { from: 'gone', running: [{ spec: orphan, attempt: 1, startedAt: 5 }], held: [{ spec: orphan, attempts: 1 }] }
    ], new Set(['w1', 'w2']), 100)
    expect(t.adopted).toBe(1)
    expect(t.queued).toBe(2)
    expect(t.updates).toEqual([expect.objectContaining({ id: 'spent', status: 'failed' })])
    expect(s.status('run')).toBe('running')
    expect(s.running('w1')).toBe(1)
    expect(assigned(s, [w('w2', 2)], 100)).toEqual([['wait', 'w2', 2], ['orphan', 'w2', 2]])
  })

  it('requeues the attempts of a lost worker with the next attempt number', () => {
    const s = new Scheduler(config)
    s.enqueue(spec('t'), 0, 0)
    assigned(s, [w('a')])
    expect(s.onWorkerLost('a', 10)).toEqual([expect.objectContaining({ status: 'retrying', attempts: 1 })])
    s.tick(10 + config.retryBaseMs)
    expect(assigned(s, [w('b')], 200)).toEqual([['t', 'b', 2]])
  })

  it('gives up on an attempt whose worker never reports, after its timeout and a grace period', () => {
    const s = new Scheduler(config)
    s.enqueue(spec('t', { timeoutMs: 100 }), 0, 0)
    assigned(s, [w('a')])
    expect(s.tick(100 + config.resultGraceMs - 1)).toEqual([])
    expect(s.tick(100 + config.resultGraceMs)).toEqual([expect.objectContaining({ status: 'retrying', error: expect.stringContaining('no result') })])
    expect(s.running('a')).toBe(0)
  })

  it('keeps outstandingPerSlot attempts per slot on a worker; the watchdog counts from the start of a held attempt', () => {
    const s = new Scheduler({ ...config, outstandingPerSlot: 2 })
    for (let i = 0; i < 5; i++) s.enqueue(spec(`t${i}`, { timeoutMs: 100 }), 0, 0)
    expect(assigned(s, [w('a', 2)]).map(x => x[0])).toEqual(['t0', 't1', 't2', 't3'])
    // t2 waits behind t0 on the worker, then starts late: its deadline runs from its start.
    s.onStarted('t2', 'a', 1, 250, 250)
    expect(s.tick(250 + 100 + config.resultGraceMs - 1).filter(u => u.id === 't2')).toEqual([])
    expect(s.tick(250 + 100 + config.resultGraceMs).filter(u => u.id === 't2')).toHaveLength(1)
  })

  it('widens the window of a type whose attempts run short, and keeps a long type at outstandingPerSlot', () => {
    const s = new Scheduler({ ...config, outstandingPerSlot: 2 })
    const workers = [w('a', 2, ['echo', 'hash'])]
    // One short echo (5 ms on the worker's clock) and one long hash (5 s) have run.
    s.enqueue(spec('e0'), 0, 0)
    s.enqueue(spec('h0', { type: 'hash' }), 0, 0)
    assigned(s, workers)
    s.onResult('e0', 'a', 1, { ok: true, result: null }, 105, null, 100)
    s.onResult('h0', 'a', 1, { ok: true, result: null }, 5_100, null, 100)
    // Long tasks: 2 per slot, as configured.
    for (let i = 1; i <= 6; i++) s.enqueue(spec(`h${i}`, { type: 'hash' }), 0, 0)
    expect(assigned(s, workers, 6_000)).toHaveLength(4)
    // Short tasks: up to WIDE_WINDOW (8) per slot, counting what the worker already holds.
    for (let i = 1; i <= 20; i++) s.enqueue(spec(`e${i}`), 0, 0)
    expect(assigned(s, workers, 6_000)).toHaveLength(2 * WIDE_WINDOW - 4)
    expect(s.running('a')).toBe(2 * WIDE_WINDOW)
    // A held short attempt's watchdog allows for the whole window ahead of it.
    expect(s.tick(6_000 + WIDE_WINDOW * 5_000 + config.resultGraceMs - 1).filter(u => u.id.startsWith('e'))).toEqual([])
  })

  it('RunTimes: a moving mean per type; the wide window only below SHORT_RUN_MS', () => {
    const r = new RunTimes()
    expect(r.window('x', 2)).toBe(2)
    expect(r.widest(2)).toBe(2)
    r.observe('x', 1)
    expect(r.window('x', 2)).toBe(WIDE_WINDOW)
    expect(r.widest(2)).toBe(WIDE_WINDOW)
    // A type that becomes slow narrows again as its mean passes SHORT_RUN_MS.
    for (let i = 0; i < 10; i++) r.observe('x', 10 * SHORT_RUN_MS)
    expect(r.window('x', 2)).toBe(2)
    // A configured window wider than the wide one is kept.
    r.observe('y', 0)
    expect(r.window('y', 12)).toBe(12)
    // Clock skew between workers can give a negative or absurd time: ignored.
    r.observe('z', -5)
    r.observe('z', Number.NaN)
    expect(r.window('z', 2)).toBe(2)
  })

  it('cancels a waiting task at once, and names the worker of a running one', () => {
    const s = new Scheduler(config)
    s.enqueue(spec('run'), 0, 0)
    s.enqueue(spec('wait'), 0, 0)
    assigned(s, [w('a')])
    expect(s.cancel('wait', 5)).toEqual({ updates: [expect.objectContaining({ status: 'cancelled' })], abortOn: null })
    expect(s.cancel('run', 5)).toEqual({ updates: [], abortOn: 'a' })
    expect(s.onResult('run', 'a', 1, { ok: false, error: 'cancelled by request', cancelled: true }, 6)).toEqual([expect.objectContaining({ status: 'cancelled' })])
    expect(s.cancel('nope', 5)).toBeNull()
  })

  it('names the worker whose unanswered assignment may still run a waiting task when it is cancelled', () => {
    const s = new Scheduler(config)
    s.enqueue(spec('lost'), 0, 0)
    s.enqueue(spec('refused'), 0, 0)
    expect(assigned(s, [w('a', 2)]).map(x => x[0])).toEqual(['lost', 'refused'])
    // The reply to one assignment never came (it may have been taken); the other was refused outright.
    expect(s.onResult('lost', 'a', 1, { ok: false, error: 'assignment not accepted: timed out', unacknowledged: true }, 1)).toEqual([expect.objectContaining({ status: 'retrying' })])
    expect(s.onResult('refused', 'a', 1, { ok: false, error: 'assignment not accepted: REFUSED' }, 1)).toEqual([expect.objectContaining({ status: 'retrying' })])
    expect(s.cancel('lost', 2)).toEqual({ updates: [expect.objectContaining({ status: 'cancelled' })], abortOn: 'a' })
    expect(s.cancel('refused', 2)).toEqual({ updates: [expect.objectContaining({ status: 'cancelled' })], abortOn: null })
  })

  it('refuses new tasks past maxQueuedTasks and never counts a task twice', () => {
    const s = new Scheduler({ ...config, maxQueuedTasks: 2 })
    expect(s.enqueue(spec('a'), 0, 0)).toBe('queued')
    expect(s.enqueue(spec('a'), 0, 0)).toBe('known')
    expect(s.enqueue(spec('b'), 0, 0)).toBe('queued')
    expect(s.enqueue(spec('c'), 0, 0)).toBe('full')
  })

  it('under any schedule of results, never exceeds a worker\'s capacity and ends every task exactly once', () => {
    fc.assert(fc.property(fc.array(fc.record({ ok: fc.boolean(), worker: fc.integer({ min: 0, max: 2 }) }), { minLength: 1, maxLength: 200 }), fc.integer({ min: 1, max: 40 }), (events, n) => {
      const s = new Scheduler({ ...config, retryBaseMs: 0 })
      const workers = [w('a', 2), w('b', 1), w('c', 3)]
      for (let i = 0; i < n; i++) s.enqueue(spec(`t${i}`, { maxAttempts: 2 }), 0, 0)
      const running = new Map<string, [string, number]>()
      const ended = new Map<string, number>()
      let now = 0
      const apply = (us: ReturnType<Scheduler['tick']>): void => {
        for (const u of us) if (u.status === 'succeeded' || u.status === 'failed') ended.set(u.id, (ended.get(u.id) ?? 0) + 1)
      }
      for (const ev of [...events, ...Array.from({ length: 200 }, () => ({ ok: true, worker: 0 }))]) {
        now += 1
        apply(s.tick(now))
        const d = s.dispatch(workers, now)
        for (const [worker, batch] of d.assignments) for (const a of batch) running.set(a.spec.id, [worker, a.attempt])
        for (const wk of workers) expect(s.running(wk.id)).toBeLessThanOrEqual(wk.capacity)
        const victim = [...running.entries()].find(([, [worker]]) => worker === workers[ev.worker]!.id) ?? [...running.entries()][0]
        if (victim === undefined) continue
        running.delete(victim[0])
        apply(s.onResult(victim[0], victim[1][0], victim[1][1], ev.ok ? { ok: true, result: null } : { ok: false, error: 'x' }, now))
      }
      expect(ended.size).toBe(n)
      expect([...ended.values()].every(c => c === 1)).toBe(true)
    }), { numRuns: 200 })
  })
})

describe('mergeUpdate', () => {
  const base: TaskProgress = { status: 'queued', attempts: 0, worker: null, progress: null, result: null, error: null, startedAt: null, finishedAt: null }
  const at = (status: TaskProgress['status'], attempts: number, extra: Partial<TaskProgress> = {}): TaskProgress => ({ ...base, status, attempts, ...extra })

  it('ends a task with its first terminal record; a later one replaces it only if it ranks first (a result over a failure, the earlier attempt)', () => {
    const done = at('succeeded', 1, { result: 1, worker: 'a' })
    expect(mergeUpdate(done, at('failed', 2))).toBeNull()
    expect(mergeUpdate(done, at('running', 3))).toBeNull()
    expect(mergeUpdate(at('running', 1), done)).toEqual(done)
    expect(mergeUpdate(at('failed', 1, { error: 'lost' }), done)).toEqual(done)
    expect(mergeUpdate(done, at('succeeded', 2, { result: 1, worker: 'b' }))).toBeNull()
    expect(mergeUpdate(at('succeeded', 2, { result: 1, worker: 'b' }), done)).toEqual(done)
    expect(mergeUpdate(done, { ...done })).toBeNull()
  })

  it('brings holders that saw different terminal records, in any order, to the same one', () => {
    const terminal = fc.record({
      status: fc.constantFrom('succeeded' as const, 'failed' as const, 'cancelled' as const),
      attempts: fc.integer({ min: 1, max: 4 }),
      worker: fc.option(fc.constantFrom('a', 'b', 'c'), { nil: null }),
      progress: fc.constant(null),
      result: fc.option(fc.integer({ min: 0, max: 3 }), { nil: null }),
      error: fc.option(fc.constantFrom('x', 'y'), { nil: null }),
      startedAt: fc.option(fc.integer({ min: 0, max: 3 }), { nil: null }),
      finishedAt: fc.option(fc.integer({ min: 0, max: 3 }), { nil: null })
    })
    fc.assert(fc.property(fc.array(terminal, { minLength: 1, maxLength: 6 }), fc.integer(), (records, shift) => {
      const fold = (list: TaskProgress[]): TaskProgress => list.reduce((rec, u) => mergeUpdate(rec, u) ?? rec, base)
      const rotated = records.map((_, i) => records[(i + Math.abs(shift)) % records.length]!)
      expect(fold(rotated)).toEqual(fold([...records].reverse()))
      expect(fold(records)).toEqual(fold(rotated))
    }))
  })

  it('orders by attempt then phase, whatever order updates arrive in', () => {
    const updates = [at('assigned', 1), at('running', 1), at('retrying', 1), at('assigned', 2), at('running', 2, { progress: 0.5 }), at('succeeded', 2, { result: 'ok' })]
    fc.assert(fc.property(fc.shuffledSubarray(updates, { minLength: updates.length, maxLength: updates.length }), order => {
      let rec: TaskProgress = base
      for (const u of order) rec = mergeUpdate(rec, u) ?? rec
      expect(rec).toEqual(at('succeeded', 2, { result: 'ok' }))
    }))
  })
})
