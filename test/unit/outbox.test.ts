import { describe, expect, it } from 'vitest'
import type { TaskUpdate } from '../../src/core/tasks.ts'
import type { RpcReply, RpcRequest } from '../../src/protocol/rpc.ts'
import { systemClock } from '../../src/runtime/clock.ts'
import { Outbox } from '../../src/runtime/outbox.ts'
import type { ClusterTransport } from '../../src/runtime/transport.ts'

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
    const t = flakyTransport(0)
    const box = new Outbox(t, systemClock, 1_000, 1 << 20, () => {}, () => true)
    box.push('h', [u('a', 'assigned'), u('a', 'running'), u('b', 'assigned')])
    box.push('h', [u('a', 'succeeded'), u('a', 'running')])
    await box.flush()
    expect(t.delivered).toEqual([[u('a', 'succeeded'), u('b', 'assigned')]])
  })

  it('retries a failed batch while the holder lives, and drops it once the holder is dead', async () => {
    const live = flakyTransport(2)
    const box = new Outbox(live, systemClock, 1_000, 1 << 20, () => {}, () => true)
    box.push('h', [u('a', 'succeeded')])
    await box.flush()
    expect(live.calls).toBe(3)
    expect(live.delivered).toEqual([[u('a', 'succeeded')]])

    const dead = flakyTransport(1)
    const box2 = new Outbox(dead, systemClock, 1_000, 1 << 20, () => {}, () => false)
    box2.push('h', [u('a', 'succeeded')])
    await box2.flush()
    expect(dead.calls).toBe(1)
    expect(dead.delivered).toEqual([])
  })
})
