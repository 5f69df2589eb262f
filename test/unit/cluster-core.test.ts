import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { ClusterSim, SIM_CONFIG } from '../sim/cluster-sim.ts'

const { failureTimeoutMs, joinWindowMs, heartbeatIntervalMs } = SIM_CONFIG
/** Scale the number of random schedules: TASKMESH_SIM_RUNS=10 runs ten times as many. */
const scale = Number(process.env.TASKMESH_SIM_RUNS ?? '1')

function startCluster (seed: number, ids: string[], gapMs = 0): ClusterSim {
  const sim = new ClusterSim({ seed })
  for (const id of ids) { sim.addNode(id); if (gapMs > 0) sim.run(gapMs) }
  return sim
}

describe('ClusterCore: election by simulation', () => {
  it('three nodes started together agree on the oldest as leader, term 1', () => {
    const sim = startCluster(1, ['n1', 'n2', 'n3'], 5)
    const took = sim.runUntilAgreed(joinWindowMs + 10 * heartbeatIntervalMs)
    expect(took).not.toBeNull()
    expect(sim.agreedLeader()).toEqual({ id: 'n1', term: 1 })
    for (const n of sim.upNodes()) {
      const snap = n.core.snapshot(sim.nowMs)
      expect(snap.members.map(m => [m.id, m.status])).toEqual([['n1', 'alive'], ['n2', 'alive'], ['n3', 'alive']])
    }
  })

  it('elects a new leader with a higher term after the leader crashes, fast thanks to the disconnect hint', () => {
    const sim = startCluster(2, ['n1', 'n2', 'n3'], 5)
    sim.runUntilAgreed(5_000)
    sim.run(500)
    sim.crash('n1')
    const took = sim.runUntilAgreed(5_000)
    expect(took).not.toBeNull()
    expect(took!).toBeLessThan(failureTimeoutMs)
    expect(sim.agreedLeader()).toEqual({ id: 'n2', term: 2 })
  })

  it('a paused leader is replaced within the failure timeout and, resumed, does not take leadership back', () => {
    const sim = startCluster(3, ['n1', 'n2', 'n3'], 5)
    sim.runUntilAgreed(5_000)
    sim.run(500)
    sim.pause('n1')
    const took = sim.runUntilAgreed(5_000)
    expect(took).not.toBeNull()
    expect(took!).toBeLessThanOrEqual(failureTimeoutMs + 2 * heartbeatIntervalMs)
    expect(sim.agreedLeader()).toEqual({ id: 'n2', term: 2 })
    sim.run(1_000)
    sim.resume('n1')
    sim.run(2_000)
    expect(sim.agreedLeader()).toEqual({ id: 'n2', term: 2 })
    const n1 = sim.nodes.get('n1')!
    expect(n1.core.isLeader()).toBe(false)
    expect(n1.core.snapshot(sim.nowMs).members.filter(m => m.status === 'alive')).toHaveLength(3)
  })

  it('a successor paused before it noticed the crash comes back as a follower of the leader elected meanwhile', () => {
    const sim = startCluster(6, ['n1', 'n2', 'n3'], 5)
    sim.runUntilAgreed(5_000)
    sim.run(500)
    sim.crash('n1')
    sim.run(50)
    sim.pause('n2') // next in line, paused before its failure detector fired
    expect(sim.runUntilAgreed(5_000)).not.toBeNull()
    expect(sim.agreedLeader()).toEqual({ id: 'n3', term: 2 })
    sim.run(200)
    sim.resume('n2')
    sim.run(3_000)
    expect(sim.agreedLeader()).toEqual({ id: 'n3', term: 2 })
    expect(sim.nodes.get('n3')!.leadership).toHaveLength(1)
  })

  it('two nodes that each claimed leadership before hearing each other settle on the older one, at once', () => {
    const sim = new ClusterSim({ seed: 7 })
    sim.partition([['n1'], ['n3']])
    sim.addNode('n1')
    sim.run(50)
    sim.addNode('n3')
    sim.run(joinWindowMs + 500)
    expect(sim.nodes.get('n1')!.core.isLeader()).toBe(true)
    expect(sim.nodes.get('n3')!.core.isLeader()).toBe(true)
    sim.heal()
    expect(sim.runUntilAgreed(2_000)).not.toBeNull()
    sim.run(2_000)
    expect(sim.agreedLeader()?.id).toBe('n1')
    expect(sim.log.filter(l => / n3 reincarnated /.test(l)).length).toBeLessThanOrEqual(1)
    expect(sim.log.filter(l => / n1 reincarnated /.test(l))).toEqual([])
  })

  it('a node whose clock runs behind still joins as the youngest and does not steal leadership', () => {
    const sim = startCluster(4, ['n1', 'n2'], 5)
    sim.runUntilAgreed(5_000)
    sim.run(1_000)
    sim.addNode('n0', -10_000) // the newcomer's clock reads an earlier time
    sim.run(3_000)
    expect(sim.agreedLeader()).toEqual({ id: 'n1', term: 1 })
  })

  it('converges on one leader after a partition heals', () => {
    const sim = startCluster(5, ['n1', 'n2', 'n3', 'n4', 'n5'], 5)
    sim.runUntilAgreed(5_000)
    sim.partition([['n1', 'n2'], ['n3', 'n4', 'n5']])
    sim.run(3_000)
    const majority = sim.agreedLeaderOf(['n3', 'n4', 'n5'])
    expect(majority).not.toBeNull()
    sim.heal()
    expect(sim.runUntilAgreed(5_000)).not.toBeNull()
    // The returning members follow the majority's leader as soon as they hear its claim; every member
    // sees every other alive again once their refutations have travelled (a few heartbeats).
    const allAlive = (): boolean => sim.upNodes().every(n => n.core.snapshot(sim.nowMs).members.filter(m => m.status === 'alive').length === 5)
    for (let t = 0; t < 3_000 && !allAlive(); t += 10) sim.run(10)
    expect(allAlive()).toBe(true)
    // ...and the leader the majority side elected during the partition still leads (sticky leadership).
    expect(sim.agreedLeader()).toEqual(majority)
  })
})

describe('ClusterCore: a term granted to another leader', () => {
  it('the leader claims a term above it, and the others follow the new term', () => {
    const sim = startCluster(3, ['n1', 'n2', 'n3'], 5)
    sim.runUntilAgreed(5_000)
    const leader = sim.nodes.get('n1')!
    const events = leader.core.claimNewTerm(7, sim.nowMs)
    expect(events).toEqual([expect.objectContaining({ type: 'leader-changed', leader: expect.objectContaining({ id: 'n1', term: 8 }) })])
    sim.run(5 * heartbeatIntervalMs)
    expect(sim.agreedLeader()).toEqual({ id: 'n1', term: 8 })
    // A follower has no term of its own to renew.
    expect(sim.nodes.get('n2')!.core.claimNewTerm(9, sim.nowMs)).toEqual([])
  })
})

describe('ClusterCore: quorum', () => {
  it('with quorum 3 of 5, the minority side of a partition has no leader and the majority side has one; healed, one leader', () => {
    const sim = new ClusterSim({ seed: 11, config: { ...SIM_CONFIG, quorum: 3 } })
    for (const id of ['n1', 'n2', 'n3', 'n4', 'n5']) { sim.addNode(id); sim.run(5) }
    expect(sim.runUntilAgreed(5_000)).not.toBeNull()
    expect(sim.agreedLeader()?.id).toBe('n1')
    sim.partition([['n1', 'n2'], ['n3', 'n4', 'n5']])
    sim.run(3 * failureTimeoutMs)
    for (const id of ['n1', 'n2']) expect(sim.nodes.get(id)!.core.leader(), id).toBeNull()
    const majority = ['n3', 'n4', 'n5'].map(id => sim.nodes.get(id)!.core.leader())
    expect(majority.every(l => l !== null && l.id === 'n3')).toBe(true)
    sim.heal()
    expect(sim.runUntilAgreed(5_000)).not.toBeNull()
  })

  it('under random partitions, with a majority quorum no two nodes lead at the same time once views settle', () => {
    fc.assert(fc.property(fc.integer({ min: 0, max: 2 ** 31 - 1 }), seed => {
      const sim = new ClusterSim({ seed, config: { ...SIM_CONFIG, quorum: 3 } })
      const ids = ['n0', 'n1', 'n2', 'n3', 'n4']
      for (const id of ids) { sim.addNode(id); sim.run(Math.floor(sim.rng() * 100)) }
      sim.run(2_000)
      for (let step = 0; step < 6; step++) {
        const cut = ids.filter(() => sim.rng() < 0.5)
        sim.partition([cut, ids.filter(x => !cut.includes(x))])
        // After the failure timeout has passed on both sides, at most one node leads.
        sim.run(failureTimeoutMs + 2 * heartbeatIntervalMs)
        for (let t = 0; t < 10; t++) {
          sim.run(100)
          const leaders = sim.upNodes().filter(n => n.core.isLeader()).map(n => n.id)
          expect(leaders.length, `seed ${seed}: leaders ${leaders.join(',')}`).toBeLessThanOrEqual(1)
        }
        if (sim.rng() < 0.5) sim.heal()
      }
    }), { numRuns: 40 * scale })
  }, 60_000 * scale)
})

describe('ClusterCore: seeded random schedules', () => {
  const seeds = fc.integer({ min: 0, max: 2 ** 31 - 1 })

  it('a node that joins later never becomes leader while the first leader lives', () => {
    fc.assert(fc.property(seeds, fc.integer({ min: 2, max: 8 }), fc.double({ min: 0, max: 0.2, noNaN: true }), (seed, joiners, dropRate) => {
      const sim = new ClusterSim({ seed, dropRate: Math.min(dropRate, 0.2), maxDelayMs: 40 })
      sim.addNode('first')
      expect(sim.runUntilAgreed(5_000)).not.toBeNull()
      for (let i = 0; i < joiners; i++) {
        sim.run(Math.floor(sim.rng() * 400))
        sim.addNode(`j${i}`)
      }
      sim.run(3_000)
      for (const n of sim.nodes.values()) {
        if (n.id !== 'first') expect(n.leadership, `seed ${seed}: ${n.id} led`).toEqual([])
      }
      expect(sim.agreedLeader(), `seed ${seed}`).toEqual({ id: 'first', term: 1 })
    }), { numRuns: 60 * scale })
  }, 60_000 * scale)

  it('after crashes, pauses, restarts and partitions stop, every up node agrees on one live leader and no term ever went down', () => {
    fc.assert(fc.property(seeds, fc.integer({ min: 3, max: 7 }), (seed, size) => {
      const sim = new ClusterSim({ seed, dropRate: 0.05, maxDelayMs: 60 })
      const ids = Array.from({ length: size }, (_, i) => `n${i}`)
      for (const id of ids) { sim.addNode(id); sim.run(Math.floor(sim.rng() * 200)) }
      sim.run(2_000)
      const paused = new Set<string>()
      for (let step = 0; step < 12; step++) {
        const id = ids[Math.floor(sim.rng() * ids.length)]!
        const node = sim.nodes.get(id)!
        const r = sim.rng()
        if (node.state === 'crashed') sim.restart(id)
        else if (node.state === 'paused') { sim.resume(id); paused.delete(id) }
        else if (r < 0.35) sim.crash(id)
        else if (r < 0.6) { sim.pause(id); paused.add(id) }
        else if (r < 0.8) {
          const cut = ids.filter(() => sim.rng() < 0.5)
          sim.partition([cut, ids.filter(x => !cut.includes(x))])
        } else sim.heal()
        sim.run(Math.floor(sim.rng() * 2 * failureTimeoutMs))
      }
      // Faults stop: heal, resume and restart everything, then let it settle.
      sim.heal()
      for (const id of paused) sim.resume(id)
      for (const n of sim.nodes.values()) if (n.state === 'crashed') sim.restart(n.id)
      const took = sim.runUntilAgreed(10 * failureTimeoutMs)
      expect(took, `seed ${seed}: no agreement\n${sim.log.slice(-40).join('\n')}`).not.toBeNull()
      // Refutations still in flight may move leadership once more; then it must hold.
      sim.run(3 * failureTimeoutMs)
      const leader = sim.agreedLeader()
      expect(leader, `seed ${seed}: agreement did not hold\n${sim.log.slice(-40).join('\n')}`).not.toBeNull()
      sim.run(2_000)
      expect(sim.agreedLeader(), `seed ${seed}: leader changed after settling`).toEqual(leader)
      for (const n of sim.nodes.values()) {
        const terms = n.terms
        expect(terms.every((t, i) => i === 0 || t >= terms[i - 1]!), `seed ${seed}: ${n.id} terms ${terms.join(',')}`).toBe(true)
      }
    }), { numRuns: 300 * scale })
  }, 60_000 * scale)
})
