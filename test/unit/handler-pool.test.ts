import { afterAll, describe, expect, it } from 'vitest'
import { HandlerPool } from '../../src/exec/handler-pool.ts'

const pool = new HandlerPool(2, { hang: './test/fixtures/hang-handler.js', crash: './test/fixtures/crash-handler.js', bad: './test/fixtures/bad-result-handler.js' }, process.cwd())
afterAll(async () => { await pool.close() })

function attempt (type: string, payload: unknown, opts: { timeoutMs?: number, signal?: AbortSignal, onProgress?: (p: unknown) => void } = {}) {
  const progress: unknown[] = []
  return pool.run({ taskId: 't', attempt: 1, type, payload, timeoutMs: opts.timeoutMs ?? 10_000, signal: opts.signal ?? new AbortController().signal, onProgress: p => { progress.push(p); opts.onProgress?.(p) } })
    .then(outcome => ({ outcome, progress }))
}

describe('HandlerPool (worker threads)', () => {
  it('runs the built-ins', async () => {
    expect((await attempt('echo', { a: [1, 'x'] })).outcome).toEqual({ ok: true, result: { a: [1, 'x'] } })
    expect((await attempt('hash', { data: 'abc', rounds: 1 })).outcome).toEqual({ ok: true, result: { hex: 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad' } })
    expect((await attempt('fail', { message: 'boom' })).outcome).toEqual({ ok: false, error: 'boom' })
    const slept = await attempt('sleep', { ms: 300 })
    expect(slept.outcome).toEqual({ ok: true, result: { sleptMs: 300 } })
    expect(slept.progress.at(-1)).toBe(1)
  })

  it('cancels a running task through its signal', async () => {
    const ac = new AbortController()
    // Cancelled once it shows it runs (its first progress report, after 200 ms of its 2 s).
    expect((await attempt('sleep', { ms: 2_000 }, { signal: ac.signal, onProgress: () => { ac.abort() } })).outcome).toEqual({ ok: false, error: 'cancelled by request', cancelled: true })
  })

  it('times out a handler that ignores its signal by terminating its thread, and keeps working', async () => {
    const { outcome } = await attempt('hang', null, { timeoutMs: 200 })
    expect(outcome).toEqual({ ok: false, error: 'timed out after 200 ms', cancelled: false })
    expect((await attempt('echo', 1)).outcome).toEqual({ ok: true, result: 1 })
  })

  it('fails only the attempt whose handler crashes its thread', async () => {
    const { outcome } = await attempt('crash', null)
    expect(outcome.ok).toBe(false)
    expect((await attempt('echo', 2)).outcome).toEqual({ ok: true, result: 2 })
  })

  it('fails an attempt whose result is not JSON, and drops progress that is not JSON', async () => {
    const { outcome, progress } = await attempt('bad', null)
    expect(outcome).toEqual({ ok: false, error: expect.stringContaining('refused: Do not know how to serialize a BigInt') })
    expect(progress).toEqual([])
  })

  it('runs echo, sleep and fail on the event loop, with their timeout, and no thread', async () => {
    const own = new HandlerPool(2, {}, process.cwd())
    try {
      const run = (type: string, payload: unknown, timeoutMs = 10_000) => own.run({ taskId: 't', attempt: 1, type, payload, timeoutMs, signal: new AbortController().signal, onProgress: () => {} })
      expect(await run('echo', { x: 1 })).toEqual({ ok: true, result: { x: 1 } })
      expect(await run('fail', {})).toEqual({ ok: false, error: 'failed on purpose' })
      expect(await run('sleep', { ms: 10_000 }, 150)).toEqual({ ok: false, error: 'timed out after 150 ms', cancelled: false })
      expect(own.threadCount()).toBe(0)
      expect(await run('hash', { data: 'abc', rounds: 1 })).toMatchObject({ ok: true })
      expect(own.threadCount()).toBe(1)
    } finally {
      await own.close()
    }
  })

  it('runs at most capacity attempts at once, on the event loop or on threads; the rest wait, and a cancel while waiting drops one', async () => {
    const own = new HandlerPool(1, {}, process.cwd())
    try {
      const events: string[] = []
      const run = (name: string, type: string, payload: unknown, signal = new AbortController().signal) => own.run({
        taskId: name, attempt: 1, type, payload, timeoutMs: 10_000, signal, onProgress: () => {}, onStarted: () => { events.push(`start ${name}`) }
      }).then(outcome => { events.push(`end ${name}`); return outcome })
      const dropped = new AbortController()
      const runs = [run('a', 'sleep', { ms: 200 }), run('b', 'hash', { data: 'x', rounds: 1 }), run('c', 'sleep', { ms: 100 }, dropped.signal), run('d', 'echo', 1)]
      dropped.abort()
      const outcomes = await Promise.all(runs)
      expect(outcomes[2]).toEqual({ ok: false, error: 'cancelled by request', cancelled: true })
      expect(events).toEqual(['start a', 'end c', 'end a', 'start b', 'end b', 'start d', 'end d'])
    } finally {
      await own.close()
    }
  })

  it('fails an attempt of an unknown type or bad payload without throwing', async () => {
    expect((await attempt('nope', null)).outcome).toMatchObject({ ok: false })
    expect((await attempt('hash', { data: 5 })).outcome).toEqual({ ok: false, error: 'payload.data is missing or has the wrong type' })
  })

  describe('lanes: a thread runs attempt after attempt, and takes a short one ahead', () => {
    // Runs count as short however long the machine takes to answer (it is shared), so a lane always takes one ahead; recalled after 100 ms
    // without a word from its thread; a lane's first attempt or a quiet spell never makes another thread start.
    const lanePool = (capacity: number, abortGraceMs = 100): HandlerPool => new HandlerPool(capacity, { hang: './test/fixtures/hang-handler.js', user: './test/fixtures/echo-handler.js', wait: './test/fixtures/wait-handler.js' }, process.cwd(), Infinity, abortGraceMs, { shortRunMs: 60_000, recallMs: 100, quietMs: 60_000 })
    const run = (p: HandlerPool, type: string, payload: unknown, opts: { timeoutMs?: number, signal?: AbortSignal, onStarted?: () => void } = {}) =>
      p.run({ taskId: 't', attempt: 1, type, payload, timeoutMs: opts.timeoutMs ?? 10_000, signal: opts.signal ?? new AbortController().signal, onProgress: () => {}, onStarted: opts.onStarted })

    it('gives every attempt its own outcome when many short ones run back to back', async () => {
      const p = lanePool(2)
      try {
        let started = 0
        const outcomes = await Promise.all(Array.from({ length: 2_000 }, async (_, i) => await run(p, 'user', { i }, { onStarted: () => { started++ } })))
        expect(outcomes).toEqual(Array.from({ length: 2_000 }, (_, i) => ({ ok: true, result: { i } })))
        expect(started).toBe(2_000)
        expect(p.threadCount()).toBeLessThanOrEqual(2)
        expect(p.takenAhead).toBeGreaterThan(0)
      } finally {
        await p.close()
      }
    })

    it('runs short attempts on one thread, sent ahead, rather than start a thread for each slot', async () => {
      const p = lanePool(4)
      try {
        // As a worker's assignment window feeds its pool: 32 in flight at a time.
        let next = 0
        const outcomes: unknown[] = []
        await Promise.all(Array.from({ length: 32 }, async () => {
          while (next < 1_000) { const i = next++; outcomes[i] = await run(p, 'user', { i }) }
        }))
        expect(outcomes).toEqual(Array.from({ length: 1_000 }, (_, i) => ({ ok: true, result: { i } })))
        expect(p.threadCount()).toBe(1)
        expect(p.takenAhead).toBeGreaterThan(900)
      } finally {
        await p.close()
      }
    })

    it('starts a thread per slot at once for a handler whose attempts have run long', async () => {
      const p = new HandlerPool(3, { wait: './test/fixtures/wait-handler.js' }, process.cwd(), Infinity, 100, { shortRunMs: 20, recallMs: 20, quietMs: 60_000 })
      try {
        // The first attempt shows that this handler runs long (200 ms > shortRunMs)...
        expect(await run(p, 'wait', { ms: 200 })).toEqual({ ok: true, result: { waitedMs: 200 } })
        // ...so three at once run side by side, on three threads, without waiting for a first run on each.
        const started = performance.now()
        const outcomes = await Promise.all([1, 2, 3].map(async () => await run(p, 'wait', { ms: 300 })))
        expect(outcomes).toEqual([1, 2, 3].map(() => ({ ok: true, result: { waitedMs: 300 } })))
        expect(p.threadCount()).toBe(3)
        // One after another they would take 900 ms; side by side about 300 ms plus two threads' start (well under 600 ms even on a loaded machine).
        expect(performance.now() - started).toBeLessThan(900)
      } finally {
        await p.close()
      }
    })

    it('runs an attempt taken ahead of a hung one on another thread, once the hung one is stopped', async () => {
      const p = lanePool(1)
      try {
        // A run first: the lane has shown how long its attempts run, so it takes one ahead.
        for (let i = 0; i < 3; i++) expect(await run(p, 'user', 0)).toEqual({ ok: true, result: 0 })
        const starts: string[] = []
        const ahead0 = p.takenAhead
        const hung = run(p, 'hang', null, { timeoutMs: 200, onStarted: () => { starts.push('hang') } })
        const behind = run(p, 'user', 1, { onStarted: () => { starts.push('behind') } })
        expect(await hung).toEqual({ ok: false, error: 'timed out after 200 ms', cancelled: false })
        expect(await behind).toEqual({ ok: true, result: 1 })
        expect(starts).toEqual(['hang', 'behind'])
        expect(p.takenAhead).toBe(ahead0 + 1)
      } finally {
        await p.close()
      }
    })

    it('drops an attempt taken ahead that is cancelled before it begins: its handler never runs', async () => {
      const p = lanePool(1)
      try {
        for (let i = 0; i < 3; i++) expect(await run(p, 'user', 0)).toEqual({ ok: true, result: 0 })
        const ac = new AbortController()
        let began = false
        const ahead0 = p.takenAhead
        const first = run(p, 'hash', { data: 'x', rounds: 100_000 })
        const ahead = run(p, 'user', 1, { signal: ac.signal, onStarted: () => { began = true } })
        ac.abort()
        expect(await ahead).toEqual({ ok: false, error: 'cancelled by request', cancelled: true })
        expect((await first).ok).toBe(true)
        expect(began).toBe(false)
        expect(p.takenAhead).toBe(ahead0 + 1)
      } finally {
        await p.close()
      }
    })
  
    // (A handler that blocks its thread cannot be asked for one back: what it was sent ahead waits for it, or runs elsewhere once it is stopped.)
    it('recalls the attempts taken ahead of one that turns out long, and runs them on another thread once the lane has been quiet for quietMs', async () => {
      const p = new HandlerPool(2, { user: './test/fixtures/echo-handler.js', wait: './test/fixtures/wait-handler.js' }, process.cwd(), Infinity, 100, { shortRunMs: 60_000, recallMs: 100, quietMs: 300 })
      try {
        // One lane, warm and short (short attempts keep to one thread).
        for (let i = 0; i < 3; i++) await Promise.all([run(p, 'user', 0), run(p, 'user', 0)])
        expect(p.threadCount()).toBe(1)
        const ahead0 = p.takenAhead
        const ends: string[] = []
        // 2 s: the second thread starts after 300 ms of quiet, however slow the machine is to start it.
        const long = run(p, 'wait', { ms: 2_000 }).then(o => { ends.push('long'); return o })
        const short = run(p, 'user', 'short').then(o => { ends.push('short'); return o })
        const behind = run(p, 'user', 'behind').then(o => { ends.push('behind'); return o })
        expect(await Promise.all([long, short, behind])).toEqual([{ ok: true, result: expect.anything() }, { ok: true, result: 'short' }, { ok: true, result: 'behind' }])
        // Both were taken ahead behind the long one, then came back and ran on a second thread before the long one ended.
        expect(p.takenAhead).toBe(ahead0 + 2)
        expect(p.threadCount()).toBe(2)
        expect(ends).toEqual(['short', 'behind', 'long'])
      } finally {
        await p.close()
      }
    })
  })
})
