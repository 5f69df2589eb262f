import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { MembershipView, hintConfirmMs, suspectAfterMs } from '../../src/core/membership.ts'
import { Scheduler } from '../../src/core/scheduler.ts'
import type { TaskSpec } from '../../src/core/tasks.ts'
import type { Heartbeat, Leaving } from '../../src/core/types.ts'
import { ClusterSim, SIM_CONFIG } from '../sim/cluster-sim.ts'

const { failureTimeoutMs, heartbeatIntervalMs, deadRetentionMs } = SIM_CONFIG
/** Scale the number of random schedules: TASKMESH_SIM_RUNS=10 runs ten times as many. */
const scale = Number(process.env.TASKMESH_SIM_RUNS ?? '1')

const view = (): MembershipView => new MembershipView({ heartbeatIntervalMs: 100, failureTimeoutMs: 1000, deadRetentionMs: 5000 })
const fd = { heartbeatIntervalMs: 100, failureTimeoutMs: 1000, deadRetentionMs: 5000 }

function hb (id: string, seq: number, leaving?: Leaving, incarnation = 1): Heartbeat {
  return { id, name: id, incarnation, seq, http: 'http://x', capacity: 2, running: 0, queued: 0, load: { cpu: 0, memory: 0 }, types: [], leader: null, term: 0, dead: [], joining: false, ...(leaving === undefined ? {} : { leaving }) }
}

/** Three nodes that agree on n1 (the oldest) as leader of term 1. */
function agreedTrio (seed: number): ClusterSim {
  const sim = new ClusterSim({ seed })
  for (const id of ['n1', 'n2', 'n3']) { sim.addNode(id); sim.run(5) }
  expect(sim.runUntilAgreed(5_000)).not.toBeNull()
  sim.run(500)
  expect(sim.agreedLeader()).toEqual({ id: 'n1', term: 1 })
  return sim
}

const statusIn = (sim: ClusterSim, observer: string, member: string): string | undefined =>
  sim.nodes.get(observer)!.core.snapshot(sim.nowMs).members.find(m => m.id === member)?.status

describe('MembershipView: draining and left members', () => {
  it('a draining member stays live (reads, reports and inventories still reach it) and is shown as draining', () => {
    const v = view()
    v.admit(hb('a', 1), 0)
    expect(v.admit(hb('a', 2, 'draining'), 100)).toEqual([expect.objectContaining({ type: 'member-status', from: 'alive', to: 'draining' })])
    expect(v.get('a')?.status).toBe('draining')
    expect(v.live().map(m => m.id)).toEqual(['a'])
  })

  it('a draining member is never merely suspect: silence or a closed connection declare it dead, as for any member', () => {
    const v = view()
    v.admit(hb('a', 1, 'draining'), 0)
    v.admit(hb('b', 1, 'draining'), 0)
    expect(v.tick(suspectAfterMs(fd))).toEqual([])
    expect(v.hintDisconnected('b', suspectAfterMs(fd))).toEqual([])
    expect(v.get('b')?.status).toBe('draining')
    expect(v.tick(suspectAfterMs(fd) + hintConfirmMs(fd))).toEqual([expect.objectContaining({ id: 'b', to: 'dead' })])
    expect(v.tick(fd.failureTimeoutMs)).toEqual([expect.objectContaining({ id: 'a', from: 'draining', to: 'dead' })])
  })

  it('a member that left is gone at once: not live, not in the dead list (nothing to refute), forgotten after the retention', () => {
    const v = view()
    v.admit(hb('a', 1), 0)
    v.admit(hb('a', 2, 'draining'), 10)
    expect(v.admit(hb('a', 3, 'left'), 20)).toEqual([expect.objectContaining({ type: 'member-status', from: 'draining', to: 'left', reason: 'left the cluster' })])
    expect(v.live()).toEqual([])
    expect(v.deadList()).toEqual([])
    // Its connection closes right after: no news, and no failure timeout to wait for.
    expect(v.hintDisconnected('a', 30)).toEqual([])
    expect(v.tick(20 + fd.failureTimeoutMs)).toEqual([])
    expect(v.tick(20 + fd.deadRetentionMs)).toEqual([expect.objectContaining({ type: 'member-removed', id: 'a' })])
  })

  it('a member that left stays left for the rest of that incarnation; a restart (new incarnation) joins as alive', () => {
    const v = view()
    v.admit(hb('a', 5, 'left'), 0)
    expect(v.admit(hb('a', 6), 10)).toEqual([])
    expect(v.get('a')?.status).toBe('left')
    expect(v.admit(hb('a', 1, undefined, 2), 20)).toEqual([expect.objectContaining({ type: 'member-joined', id: 'a', incarnation: 2 })])
    expect(v.get('a')?.status).toBe('alive')
  })
})

describe('ClusterCore: drain and leave, by simulation', () => {
  it('a draining leader hands leadership to the next oldest at once, and follows it', () => {
    const sim = agreedTrio(11)
    sim.drain('n1')
    expect(sim.nodes.get('n1')!.core.isLeader()).toBe(false)
    const took = sim.runUntilAgreed(5_000)
    // One heartbeat's trip and the successor's next tick: far below the failure timeout.
    expect(took).not.toBeNull()
    expect(took!).toBeLessThanOrEqual(2 * heartbeatIntervalMs)
    expect(sim.agreedLeader()).toEqual({ id: 'n2', term: 2 })
    for (const id of ['n2', 'n3']) expect(statusIn(sim, id, 'n1')).toBe('draining')
    expect(statusIn(sim, 'n1', 'n1')).toBe('draining')
    // It stays a member while it drains, and never leads again.
    sim.run(3 * failureTimeoutMs)
    expect(sim.agreedLeader()).toEqual({ id: 'n2', term: 2 })
    expect(sim.nodes.get('n1')!.leadership.filter(l => l.term > 1)).toEqual([])
  })

  it('a draining member is not elected even when it is the oldest left after the leader crashes', () => {
    const sim = agreedTrio(12)
    sim.drain('n2')
    sim.run(300)
    sim.crash('n1')
    expect(sim.runUntilAgreed(5_000)).not.toBeNull()
    expect(sim.agreedLeader()).toEqual({ id: 'n3', term: 2 })
    expect(sim.nodes.get('n2')!.leadership).toEqual([])
  })

  it('a node that leaves is counted gone at once: left, never dead, and a leader that leaves is replaced without the failure timeout', () => {
    const sim = agreedTrio(13)
    sim.drain('n3')
    sim.run(300)
    sim.leave('n3')
    sim.run(2 * heartbeatIntervalMs)
    for (const id of ['n1', 'n2']) expect(statusIn(sim, id, 'n3')).toBe('left')
    sim.run(2 * failureTimeoutMs)
    for (const id of ['n1', 'n2']) expect(statusIn(sim, id, 'n3')).toBe('left')
    expect(sim.log.some(l => l.includes('"id":"n3"') && l.includes('"to":"dead"'))).toBe(false)
    // The leader leaves (without draining first, as after a drain timeout): the other takes over at once.
    sim.leave('n1')
    const took = sim.runUntilAgreed(5_000)
    expect(took).not.toBeNull()
    expect(took!).toBeLessThan(hintConfirmMs(SIM_CONFIG))
    expect(sim.agreedLeader()).toEqual({ id: 'n2', term: 2 })
    // Forgotten once the retention has passed (members are swept on their next tick).
    sim.run(deadRetentionMs + 2 * heartbeatIntervalMs)
    expect(sim.nodes.get('n2')!.core.snapshot(sim.nowMs).members.map(m => m.id)).toEqual(['n2'])
  })

  it('a node that left and starts again joins as the youngest member and takes no leadership', () => {
    const sim = agreedTrio(14)
    sim.drain('n1')
    sim.run(300)
    sim.leave('n1')
    expect(sim.runUntilAgreed(5_000)).not.toBeNull()
    const leader = sim.agreedLeader()
    sim.run(500)
    sim.restart('n1')
    sim.run(5 * failureTimeoutMs)
    expect(sim.agreedLeader()).toEqual(leader)
    for (const id of ['n2', 'n3']) expect(statusIn(sim, id, 'n1')).toBe('alive')
  })

  it('under random drains and leaves among crashes and partitions, the rest agree on one leader that never drained, and terms never go down', () => {
    const seeds = fc.integer({ min: 0, max: 2 ** 31 - 1 })
    fc.assert(fc.property(seeds, fc.integer({ min: 3, max: 7 }), (seed, size) => {
      const sim = new ClusterSim({ seed, dropRate: 0.05, maxDelayMs: 60 })
      const ids = Array.from({ length: size }, (_, i) => `n${i}`)
      for (const id of ids) { sim.addNode(id); sim.run(Math.floor(sim.rng() * 200)) }
      sim.run(2_000)
      const draining = new Set<string>()
      for (let step = 0; step < 10; step++) {
        const id = ids[Math.floor(sim.rng() * ids.length)]!
        const node = sim.nodes.get(id)!
        const r = sim.rng()
        if (node.state === 'crashed') sim.restart(id)
        else if (node.state === 'left') { if (r < 0.5) { sim.restart(id); draining.delete(id) } }
        else if (draining.has(id)) sim.leave(id)
        else if (r < 0.3) { sim.drain(id); draining.add(id) }
        else if (r < 0.5) sim.crash(id)
        else if (r < 0.7) {
          const cut = ids.filter(() => sim.rng() < 0.5)
          sim.partition([cut, ids.filter(x => !cut.includes(x))])
        } else sim.heal()
        sim.run(Math.floor(sim.rng() * 2 * failureTimeoutMs))
      }
      // Faults stop: heal, let the draining nodes leave, restart the crashed ones.
      sim.heal()
      for (const id of draining) if (sim.nodes.get(id)!.state === 'up') sim.leave(id)
      for (const n of sim.nodes.values()) if (n.state === 'crashed') sim.restart(n.id)
      const members = [...sim.nodes.values()].filter(n => n.state === 'up')
      if (members.length === 0) return
      const took = sim.runUntilAgreed(10 * failureTimeoutMs)
      expect(took, `seed ${seed}: no agreement\n${sim.log.slice(-40).join('\n')}`).not.toBeNull()
      sim.run(3 * failureTimeoutMs)
      const leader = sim.agreedLeader()
      expect(leader, `seed ${seed}: agreement did not hold\n${sim.log.slice(-40).join('\n')}`).not.toBeNull()
      expect(draining.has(leader!.id) && sim.nodes.get(leader!.id)!.core.leaving !== null, `seed ${seed}: a leaving node leads`).toBe(false)
      for (const n of sim.nodes.values()) {
        const terms = n.terms
        expect(terms.every((t, i) => i === 0 || t >= terms[i - 1]!), `seed ${seed}: ${n.id} terms ${terms.join(',')}`).toBe(true)
      }
    }), { numRuns: 150 * scale })
  }, 60_000 * scale)
})

describe('Scheduler: attempts a draining worker gives back', () => {
  const config = { maxQueuedTasks: 100, retryBaseMs: 100, retryMaxMs: 1_000, resultGraceMs: 1_000, outstandingPerSlot: 1 }
  const spec = (id: string, over: Partial<TaskSpec> = {}): TaskSpec => ({ id, type: 'echo', payload: null, priority: 0, timeoutMs: 5_000, maxAttempts: 1, idempotencyKey: null, createdAt: 0, origin: 'o', replicas: [], ...over })
  const w = (id: string, capacity = 1) => ({ id, capacity, types: ['echo'] })
  const placed = (s: Scheduler, workers: Array<ReturnType<typeof w>>, now = 0): Array<[string, string, number]> =>
    [...s.dispatch(workers, now).assignments].flatMap(([worker, batch]) => batch.map(a => [a.spec.id, worker, a.attempt] as [string, string, number]))

  it('places a given-back attempt elsewhere first in line, without counting an attempt (a one-attempt task still runs)', () => {
    const s = new Scheduler(config)
    s.enqueue(spec('t1'), 0, 0)
    s.enqueue(spec('t2'), 0, 0)
    expect(placed(s, [w('a')])).toEqual([['t1', 'a', 1]])
    expect(s.giveBack('t1', 'a', 1, 10)).toEqual([])
    expect(s.running('a')).toBe(0)
    expect(s.waiting).toBe(2)
    expect(placed(s, [w('b')], 20)).toEqual([['t1', 'b', 1]])
    expect(s.onResult('t1', 'b', 1, { ok: true, result: 1 }, 30)).toEqual([expect.objectContaining({ status: 'succeeded', attempts: 1, worker: 'b' })])
  })

  it('ignores a give-back that does not match the current attempt: another worker, another attempt, or after the end', () => {
    const s = new Scheduler(config)
    s.enqueue(spec('t', { maxAttempts: 3 }), 0, 0)
    placed(s, [w('a')])
    expect(s.giveBack('t', 'b', 1, 5)).toEqual([])
    expect(s.giveBack('t', 'a', 2, 5)).toEqual([])
    expect(s.status('t')).toBe('assigned')
    s.onResult('t', 'a', 1, { ok: true, result: null }, 10)
    expect(s.giveBack('t', 'a', 1, 20)).toEqual([])
    expect(s.has('t')).toBe(false)
  })

  it('ends as cancelled a task cancelled while its given-back attempt was on the way', () => {
    const s = new Scheduler(config)
    s.enqueue(spec('t'), 0, 0)
    placed(s, [w('a')])
    expect(s.cancel('t', 5)).toEqual({ updates: [], abortOn: 'a' })
    expect(s.giveBack('t', 'a', 1, 10)).toEqual([expect.objectContaining({ status: 'cancelled' })])
    expect(s.waiting).toBe(0)
  })
})
