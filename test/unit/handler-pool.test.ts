import { afterAll, describe, expect, it } from 'vitest'
import { HandlerPool } from '../../src/exec/handler-pool.ts'

const pool = new HandlerPool(2, { hang: './test/fixtures/hang-handler.js', crash: './test/fixtures/crash-handler.js', bad: './test/fixtures/bad-result-handler.js' }, process.cwd())
afterAll(async () => { await pool.close() })

function attempt (type: string, payload: unknown, opts: { timeoutMs?: number, signal?: AbortSignal } = {}) {
  const progress: unknown[] = []
  return pool.run({ taskId: 't', attempt: 1, type, payload, timeoutMs: opts.timeoutMs ?? 10_000, signal: opts.signal ?? new AbortController().signal, onProgress: p => progress.push(p) })
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
    setTimeout(() => { ac.abort() }, 100)
    expect((await attempt('sleep', { ms: 10_000 }, { signal: ac.signal })).outcome).toEqual({ ok: false, error: 'cancelled by request', cancelled: true })
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

  it('runs echo, sleep and fail on the event loop: they finish while every thread is busy, and keep their timeout', async () => {
    const hangs = [attempt('hang', null, { timeoutMs: 1_500 }), attempt('hang', null, { timeoutMs: 1_500 })]
    let threadsFree = false
    void Promise.all(hangs).then(() => { threadsFree = true })
    await new Promise(r => setTimeout(r, 200))
    expect((await attempt('echo', { x: 1 })).outcome).toEqual({ ok: true, result: { x: 1 } })
    expect((await attempt('fail', {})).outcome).toEqual({ ok: false, error: 'failed on purpose' })
    expect((await attempt('sleep', { ms: 10_000 }, { timeoutMs: 150 })).outcome).toEqual({ ok: false, error: 'timed out after 150 ms', cancelled: false })
    expect(threadsFree).toBe(false)
    for (const h of await Promise.all(hangs)) expect(h.outcome).toEqual({ ok: false, error: 'timed out after 1500 ms', cancelled: false })
  })

  it('fails an attempt of an unknown type or bad payload without throwing', async () => {
    expect((await attempt('nope', null)).outcome).toMatchObject({ ok: false })
    expect((await attempt('hash', { data: 5 })).outcome).toEqual({ ok: false, error: 'payload.data is missing or has the wrong type' })
  })
})
