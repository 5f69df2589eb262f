import { describe, expect, it } from 'vitest'
import { nodesPerTest, agreedLeader, waitFor } from '../support/nodes.ts'

/**
 * Slow heartbeats (every 2 s, failure timeout 7 s), so that what these tests
 * observe within a second cannot have come from heartbeats or their timeouts:
 * the joining state sync and the direct probe after a closed connection.
 */
const SLOW = { env: { TASKMESH_MDNS: 'false', TASKMESH_HEARTBEAT_INTERVAL_MS: '2000', TASKMESH_FAILURE_TIMEOUT_MS: '7000' } }

function started (output: string): string {
  const line = JSON.parse(output.split('\n').find(l => l.includes('"node started"'))!) as { addresses: string[] }
  return line.addresses.find(a => a.startsWith('/ip4/127.0.0.1/tcp/'))!
}

describe('membership that scales (real nodes)', () => {
  const set = nodesPerTest()

  it('a joining node gets the whole view from the first member it reaches, in one round trip; a killed member is declared dead when a direct probe is refused', async () => {
    const b1 = await set.start({ name: 'b1', ...SLOW })
    const seed = started(b1.output())
    const b2 = await set.start({ name: 'b2', ...SLOW, args: ['--bootstrap', seed] })
    const b3 = await set.start({ name: 'b3', ...SLOW, args: ['--bootstrap', seed] })
    await waitFor(async () => await agreedLeader([b1, b2, b3], 3), 15_000, 'three nodes to agree')

    const b4 = await set.start({ name: 'b4', ...SLOW, args: ['--bootstrap', seed] })
    // One exchange with the first member it reached gave it every member (that member, b2 and b3,
    // each with its last heartbeat): the log line says how many it got.
    const synced = await waitFor(() => b4.output().split('\n').find(l => l.includes('"membership synced"')), 2_000, 'b4 to sync its view')
    expect((JSON.parse(synced) as { members: number }).members).toBe(3)
    const view = await b4.cluster()
    expect(view.members.filter(m => m.status === 'alive').map(m => m.name).sort()).toEqual(['b1', 'b2', 'b3', 'b4'])
    expect(view.leader?.name).toBe('b1')

    // b3 killed: its connections close, the probes (dials) are refused, and b1 and b2 (connected to b3
    // since before b4 came) see it dead before the 4.1 s a disconnect hint waits for a heartbeat
    // (2 x 2 s + 100 ms), let alone the 7 s failure timeout. b4 joined a moment ago and may not have
    // reached b3 directly yet (it dials members it learns from the sync; on a loaded host that can
    // take longer than the kill below waits): without a connection to close it goes by silence, so it
    // must see b3 dead within the failure timeout, 7 s, plus a second for its checks and our polls.
    b3.signal('SIGKILL')
    const killedAt = Date.now()
    const isDead = async (n: typeof b1): Promise<boolean> => (await n.cluster()).members.find(m => m.name === 'b3')?.status === 'dead'
    await waitFor(async () => (await isDead(b1)) && (await isDead(b2)), 4_000, 'b1 and b2 to see b3 dead')
    expect(Date.now() - killedAt).toBeLessThan(4_100)
    await waitFor(async () => await isDead(b4), 8_000 - (Date.now() - killedAt), 'b4 to see b3 dead')
    expect(b1.output() + b2.output()).toMatch(/"reason":"connection closed and a probe failed"/)
  })
})
