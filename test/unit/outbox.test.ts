import { describe, expect, it } from 'vitest'
import type { TaskUpdate } from '../../src/core/tasks.ts'
import type { RpcReply, RpcRequest } from '../../src/protocol/rpc.ts'
import { Outbox } from '../../src/runtime/outbox.ts'
import type { ClusterTransport } from '../../src/runtime/transport.ts'
import { ManualClock } from '../support/manual-clock.ts'

/** A transport whose first `failFirst` requests fail (fault injection); it records what got through. */
function flakyTransport (failFirst: number): ClusterTransport & { delivered: TaskUpdate[][], calls: number } {
  const t = {
    id: 'me',
    delivered: [] as TaskUpdate[][],
    calls: 0,
    addresses: () => [],
    publishHeartbeat: async () => {},
    onHeartbeat: () => {},
    onPeerDisconnected: () => {},
    keepConnected: () => {},
    onRequest: () => {},
    stop: async () => {},
    request: async (_to: string, msg: RpcRequest): Promise<RpcReply> => {
      t.calls++
      if (t.calls <= failFirst) throw new Error('link down')
      if (msg.kind === 'updates') t.delivered.push(msg.updates)
      return { kind: 'ok' }
    }
  }
  return t
}

const u = (id: string, status: TaskUpdate['status'], attempts = 1): TaskUpdate => ({ id, status, attempts, worker: 'w', progress: null, result: null, error: null, startedAt: null, finishedAt: null })

describe('Outbox', () => {
  it('sends one batch per turn, keeping only the newest update of each task', async () => {
    const clock = new ManualClock()
    const t = flakyTransport(0)
    const box = new Outbox(t, clock, 1_000, 1 << 20, () => {}, () => true)
    box.push('h', [u('a', 'assigned'), u('a', 'running'), u('b', 'assigned')])
    box.push('h', [u('a', 'succeeded'), u('a', 'running')])
    expect(t.calls).toBe(0)
    const flushed = box.flush()
    await clock.advance(0)
    await flushed
    expect(t.delivered).toEqual([[u('a', 'succeeded'), u('b', 'assigned')]])
  })

  it('retries a failed batch with doubling backoff while the holder lives', async () => {
    const clock = new ManualClock()
    const errors: number[] = []
    const live = flakyTransport(2)
    const box = new Outbox(live, clock, 1_000, 1 << 20, (_to, _err, failures) => { errors.push(failures) }, () => true)
    box.push('h', [u('a', 'succeeded')])
    await clock.advance(0)
    expect(live.calls).toBe(1)
    await clock.advance(249)
    expect(live.calls).toBe(1)
    await clock.advance(1)
    expect(live.calls).toBe(2)
    await clock.advance(499)
    expect(live.calls).toBe(2)
    await clock.advance(1)
    expect(live.calls).toBe(3)
    expect(errors).toEqual([1, 2])
    expect(live.delivered).toEqual([[u('a', 'succeeded')]])
    await box.flush()
    expect(clock.pending).toBe(0)
  })

  it('drops a failed batch once its holder is dead, and tells its owner what was dropped', async () => {
    const clock = new ManualClock()
    const dead = flakyTransport(1)
    const dropped: TaskUpdate[][] = []
    const box = new Outbox(dead, clock, 1_000, 1 << 20, () => {}, () => false, (_peer, updates) => { dropped.push(updates) })
    box.push('h', [u('a', 'succeeded')])
    await clock.advance(0)
    await box.flush()
    expect(dropped).toEqual([[u('a', 'succeeded')]])
    await clock.advance(60_000)
    expect(dead.calls).toBe(1)
    expect(dead.delivered).toEqual([])
  })
})
