import { describe, expect, it } from 'vitest'
import { nodesPerTest, agreedLeader, holdsFor, waitFor } from '../support/nodes.ts'

const FAILURE_TIMEOUT_MS = 1500 // the default, see src/config.ts

describe('a cluster of real nodes (libp2p, mDNS, gossipsub) in one network namespace', () => {
  const set = nodesPerTest()

  async function threeNodes () {
    const a1 = await set.start({ name: 'a1' })
    const a2 = await set.start({ name: 'a2' })
    const a3 = await set.start({ name: 'a3' })
    const lastStart = Date.now()
    const leader = await waitFor(async () => await agreedLeader([a1, a2, a3], 3), 3_000, 'three nodes to agree on a leader')
    return { nodes: [a1, a2, a3], leader, tookMs: Date.now() - lastStart }
  }

  it('three nodes find each other and agree on the oldest as leader within 3 s of the last start', async () => {
    const { nodes, leader } = await threeNodes()
    expect(leader.id).toBe(nodes[0]!.id)
    const view = await nodes[2]!.cluster()
    expect(view.self).toEqual({ id: nodes[2]!.id, name: 'a3' })
    expect(view.leader).toEqual({ id: nodes[0]!.id, name: 'a1', term: leader.term })
    expect(view.members.map(m => m.name).sort()).toEqual(['a1', 'a2', 'a3'])
    for (const m of view.members) {
      expect(Object.keys(m).sort()).toEqual(['capacity', 'http', 'id', 'lastSeenMs', 'load', 'name', 'queued', 'running', 'status'])
      expect(m.http).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/)
      expect(m.capacity).toBeGreaterThan(0)
    }
  })

  it('after SIGKILL of the leader the other two agree on a new leader with a higher term within 2 s', async () => {
    const { nodes, leader } = await threeNodes()
    const [old, ...rest] = nodes
    expect(leader.id).toBe(old!.id)
    old!.signal('SIGKILL')
    const killedAt = Date.now()
    const next = await waitFor(async () => await agreedLeader(rest, 2), 2_000, 'a new leader after SIGKILL')
    expect(next.id).toBe(rest[0]!.id)
    expect(next.term).toBeGreaterThan(leader.term)
    const view = await rest[1]!.cluster()
    expect(view.members.find(m => m.id === old!.id)?.status).toBe('dead')
    expect(Date.now() - killedAt).toBeLessThan(2_000 + 500)
  })

  it('with mDNS off, two nodes bootstrapped to the first (one by /p2p/ multiaddr, one by host:port): after SIGKILL of the first, the other two agree on a new leader within 2 s', async () => {
    const noMdns = { env: { TASKMESH_MDNS: 'false' } }
    const b1 = await set.start({ name: 'b1', ...noMdns })
    const started = JSON.parse(b1.output().split('\n').find(l => l.includes('"node started"'))!) as { addresses: string[] }
    const full = started.addresses.find(a => a.startsWith('/ip4/127.0.0.1/tcp/'))!
    const port = /\/tcp\/(\d+)\//.exec(full)![1]!
    const b2 = await set.start({ name: 'b2', ...noMdns, args: ['--bootstrap', full] })
    // A name, not an address: the resolver gives localhost's addresses (127.0.0.1, and ::1 where listed).
    const b3 = await set.start({ name: 'b3', ...noMdns, args: ['--bootstrap', `localhost:${port}`] })
    const nodes = [b1, b2, b3]
    const leader = await waitFor(async () => await agreedLeader(nodes, 3), 5_000, 'three nodes to agree on a leader')
    expect(leader.id).toBe(b1.id)
    b1.signal('SIGKILL')
    const killedAt = Date.now()
    // b2 and b3 only heard of each other through b1: unless they dialled each other directly, each sees the other die.
    const next = await waitFor(async () => await agreedLeader([b2, b3], 2), 2_000, 'b2 and b3 to agree on a new leader after SIGKILL of b1')
    expect(next.term).toBeGreaterThan(leader.term)
    expect(Date.now() - killedAt).toBeLessThan(2_000 + 500)
    for (const n of [b2, b3]) expect((await n.cluster()).members.find(m => m.id === b1.id)?.status).toBe('dead')
  })

  it('after SIGSTOP of the leader a new leader is agreed within failureTimeoutMs + 1 s; resumed, the old leader follows', async () => {
    const { nodes, leader } = await threeNodes()
    const [old, ...rest] = nodes
    old!.signal('SIGSTOP')
    const next = await waitFor(async () => await agreedLeader(rest, 2), FAILURE_TIMEOUT_MS + 1_000, 'a new leader after SIGSTOP')
    expect(next.term).toBeGreaterThan(leader.term)
    old!.signal('SIGCONT')
    const healed = await waitFor(async () => await agreedLeader(nodes, 3), 5_000, 'the resumed node to rejoin')
    expect(healed).toEqual(next)
  })

  it('a node started later never becomes leader while the first leader lives', async () => {
    const a1 = await set.start({ name: 'a1' })
    const a2 = await set.start({ name: 'a2' })
    const first = await waitFor(async () => await agreedLeader([a1, a2], 2), 5_000, 'two nodes to agree')
    const late = await set.start({ name: 'late' })
    // The late node's join window is one failure timeout (1.5 s by default); 3 s covers it twice over, so a
    // late node that would take over shows it within the bound.
    await holdsFor(async () => {
      for (const n of [a1, a2, late]) {
        const v = await n.cluster()
        if (v.leader !== null) expect(`${v.leader.id}@${v.leader.term}`, n.name).toBe(`${first.id}@${first.term}`)
      }
    }, 3_000)
    expect(await agreedLeader([a1, a2, late], 3)).toEqual(first)
  })

  it('two clusters with different names in one namespace never list each other\'s members', async () => {
    const red = [await set.start({ name: 'red1', cluster: 'red' }), await set.start({ name: 'red2', cluster: 'red' })]
    const blue = [await set.start({ name: 'blue1', cluster: 'blue' }), await set.start({ name: 'blue2', cluster: 'blue' })]
    await waitFor(async () => await agreedLeader(red, 2), 5_000, 'red to converge')
    await waitFor(async () => await agreedLeader(blue, 2), 5_000, 'blue to converge')
    // Each cluster converged, so mDNS queries and answers already went round in the shared namespace; a node of
    // the other cluster, had it been dialled, would be listed after its first heartbeat (250 ms): 1.5 s is six.
    await holdsFor(async () => {
      for (const n of red) expect((await n.cluster()).members.map(m => m.name).sort()).toEqual(['red1', 'red2'])
      for (const n of blue) expect((await n.cluster()).members.map(m => m.name).sort()).toEqual(['blue1', 'blue2'])
    }, 1_500, 250)
  })
})
