/**
 * One connection per pair of members (src/net/pair-dial.ts), on real libp2p
 * nodes found by mDNS on loopback (the test runs in its own network
 * namespace, see scripts/isolated.sh): every answer is multicast to all, so
 * both members of a pair hear of each other at once, and before this rule
 * both dialled (two connections per pair).
 */
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { Libp2pTransport } from '../../src/net/libp2p-transport.ts'
import { PAIR_YIELD_MS } from '../../src/net/pair-dial.ts'
import { waitFor } from '../support/nodes.ts'

const dirs: string[] = []
const started: Libp2pTransport[] = []
afterEach(async () => {
  await Promise.all(started.splice(0).map(async t => { await t.stop() }))
  await Promise.all(dirs.splice(0).map(async d => { await rm(d, { recursive: true, force: true }) }))
})

describe('one connection per pair of members', () => {
  it('five nodes started together by mDNS end with exactly one connection between each pair', async () => {
    const cluster = `pairs-${process.pid}`
    const nodes = await Promise.all(Array.from({ length: 5 }, async () => {
      const dir = await mkdtemp(join(os.tmpdir(), 'taskmesh-pairs-'))
      dirs.push(dir)
      const t = await Libp2pTransport.create({ cluster, listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], mdns: true, dataDir: dir, maxFrameBytes: 1024 * 1024, maxFramesPerSecond: 10_000, clusterKey: null })
      started.push(t)
      return t
    }))
    const everyone = (): boolean => nodes.every(t => nodes.every(o => o === t || (t.connectionsPerPeer().get(o.id) ?? 0) > 0))
    await waitFor(everyone, 15_000, 'every node to be connected to every other')
    // A deferred dial (the larger id's) fires PAIR_YIELD_MS after the answer, and only if still unconnected:
    // past that bound (plus a second for a dial under way) no further connection can come from discovery.
    await new Promise(resolve => setTimeout(resolve, PAIR_YIELD_MS + 1_000))
    for (const t of nodes) {
      const counts = t.connectionsPerPeer()
      expect([...counts.keys()].sort()).toEqual(nodes.filter(o => o !== t).map(o => o.id).sort())
      expect([...counts.values()]).toEqual(nodes.slice(1).map(() => 1))
    }
  }, 30_000)
})
