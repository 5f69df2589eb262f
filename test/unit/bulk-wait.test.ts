/**
 * Bulk waits (src/runtime/tasks/bulk-reads.ts) on real task runtimes over the
 * seeded simulator's perfect network and clock: answers come at simulated
 * instants, so "as soon as one ended" is checked exactly.
 */
import { afterEach, describe, expect, it } from 'vitest'
import { TaskSim } from '../sim/task-sim.ts'

let sims: TaskSim[] = []
afterEach(() => {
  for (const s of sims) for (const n of s.nodes) n.store.close()
  sims = []
})

/** Runs the simulation until `p` settles (at most `maxMs` of simulated time); returns its value and when it settled. */
async function drive<T> (sim: TaskSim, p: Promise<T>, maxMs: number): Promise<{ value: T, atMs: number }> {
  let out: { value: T, atMs: number } | undefined
  let failed: unknown
  p.then(value => { out = { value, atMs: sim.now } }, err => { failed = err ?? new Error('rejected') })
  const until = sim.now + maxMs
  while (out === undefined && failed === undefined && sim.now < until) await sim.runUntil(sim.now + 10, () => out !== undefined || failed !== undefined)
  if (failed !== undefined) throw failed
  if (out === undefined) throw new Error(`did not settle within ${maxMs} simulated ms`)
  return out
}

/** Three nodes that agree on a leader, tasks of the given lengths submitted to the first, then a fourth node that holds none of them. */
async function setUp (lengthsMs: number[], pad = ''): Promise<{ sim: TaskSim, ids: string[], t0: number }> {
  const sim = new TaskSim({ seed: 11, nodes: 4, quorum: 0, network: 'perfect' })
  sims.push(sim)
  const [a, b, c, d] = sim.nodes
  for (const n of [a!, b!, c!]) sim.start(n)
  await sim.runUntil(sim.now + 5_000)
  expect([a!, b!, c!].every(n => n.cluster?.leader() !== null)).toBe(true)
  const t0 = sim.now
  const { value: ids } = await drive(sim, a!.tasks!.submit(lengthsMs.map(ms => ({ type: 'echo', payload: pad === '' ? { ms } : { ms, pad } }))), 2_000)
  sim.start(d!)
  await sim.runUntil(sim.now + 3_000)
  expect(d!.cluster?.leader()?.id).toBe(a!.cluster?.leader()?.id)
  expect(ids.filter(id => d!.store.get(id) !== undefined)).toEqual([])
  return { sim, ids, t0 }
}

describe('bulk waits across nodes (simulated network and clock)', () => {
  it('a node that holds none of the tasks answers as soon as the shortest ends, with it alone; unknown ids are listed as missing', async () => {
    const { sim, ids, t0 } = await setUp([8_000, 16_000, 18_000])
    const d = sim.nodes[3]!
    const first = await drive(sim, d.tasks!.waitAny([...ids, 'no-such-task'], 30_000), 30_000)
    expect(first.value.ended.map(r => r.id)).toEqual([ids[0]])
    expect(first.value.ended[0]).toMatchObject({ status: 'succeeded', result: { ms: 8_000 } })
    expect(first.value.pending).toEqual([ids[1], ids[2]])
    expect(first.value.missing).toEqual(['no-such-task'])
    // It answered when the task ended (plus the hops of its ending), not at the end of the wait.
    expect(first.atMs - t0).toBeGreaterThanOrEqual(8_000)
    expect(first.atMs - t0).toBeLessThan(9_000)

    // The client loops on what is left.
    const second = await drive(sim, d.tasks!.waitAny(first.value.pending, 30_000), 30_000)
    expect(second.value.ended.map(r => r.id)).toEqual([ids[1]])
    expect(second.value.pending).toEqual([ids[2]])
    const third = await drive(sim, d.tasks!.waitAny(second.value.pending, 30_000), 30_000)
    expect(third.value).toMatchObject({ pending: [], missing: [] })
    expect(third.value.ended.map(r => r.id)).toEqual([ids[2]])
  }, 60_000)

  it('waits no longer than asked: with nothing ended, the answer comes when the wait expires and lists every id as pending', async () => {
    const { sim, ids } = await setUp([20_000, 20_000])
    const d = sim.nodes[3]!
    const asked = sim.now
    const r = await drive(sim, d.tasks!.waitAny(ids, 2_500), 10_000)
    expect(r.value).toEqual({ ended: [], pending: ids, missing: [] })
    expect(r.atMs - asked).toBeGreaterThanOrEqual(2_500)
    expect(r.atMs - asked).toBeLessThan(2_500 + 2_100)
    // Without a wait it answers at once.
    const now = await drive(sim, d.tasks!.waitAny(ids, 0), 1_000)
    expect(now.value.pending).toEqual(ids)
  }, 60_000)

  it('waitAll on the origin answers once every task ended, with all of them in order', async () => {
    const { sim, ids, t0 } = await setUp([6_000, 9_000, 7_000])
    const a = sim.nodes[0]!
    const r = await drive(sim, a.tasks!.waitAll(ids, 30_000), 30_000)
    expect(r.value.ended.map(x => x.id)).toEqual(ids)
    expect(r.value.ended.every(x => x.status === 'succeeded')).toBe(true)
    expect(r.atMs - t0).toBeGreaterThanOrEqual(9_000)
    expect(r.atMs - t0).toBeLessThan(10_000)
  }, 60_000)

  it('a member answers with as many ended records as fit a quarter of a frame and lists the rest as held; the asker reports them pending, then gets them', async () => {
    // 24 records of ~120 KB (a 60 KB payload, echoed as the result): ~2.9 MB, over the simulator's 2 MB quarter frame.
    const { sim, ids } = await setUp(Array.from({ length: 24 }, () => 50), 'x'.repeat(60_000))
    const d = sim.nodes[3]!
    const first = await drive(sim, d.tasks!.waitAny(ids, 10_000), 10_000)
    expect(first.value.missing).toEqual([])
    expect(first.value.ended.length).toBeGreaterThan(0)
    expect(first.value.ended.length).toBeLessThan(24)
    expect(first.value.ended.every(r => r.status === 'succeeded')).toBe(true)
    expect([...first.value.ended.map(r => r.id), ...first.value.pending].sort()).toEqual([...ids].sort())
    const second = await drive(sim, d.tasks!.waitAny(first.value.pending, 10_000), 10_000)
    expect(second.value.ended.map(r => r.id)).toEqual(first.value.pending)
    expect(second.value.pending).toEqual([])
  }, 60_000)
})
