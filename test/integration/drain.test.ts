import { spawnSync } from 'node:child_process'
import { resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { agreedLeader, nodesPerTest, waitFor } from '../support/nodes.ts'
import type { TestNode } from '../support/nodes.ts'
import { dispatchingAt, executions, freshlyRunningOn, recordingCluster, task } from '../support/recording.ts'

const CLI = resolve(import.meta.dirname, '../../src/bin.ts')

/** How `observer` sees `member` now (undefined once forgotten). */
async function statusOf (observer: TestNode, member: TestNode): Promise<string | undefined> {
  return (await observer.cluster()).members.find(m => m.id === member.id)?.status
}

describe('drain: a node stopped with SIGTERM finishes its work and leaves (real nodes)', () => {
  const set = nodesPerTest()

  /** `perNode` record tasks of `ms` submitted to each node. */
  async function submitAcross (nodes: TestNode[], perNode: number, ms: number): Promise<string[]> {
    const ids: string[] = []
    for (const n of nodes) {
      const res = await fetch(`${n.url}/v1/tasks/batch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ tasks: Array.from({ length: perNode }, (_, i) => ({ type: 'record', payload: { ms, i } })) }) })
      expect(res.status).toBe(202)
      ids.push(...(await res.json() as { ids: string[] }).ids)
    }
    return ids
  }

  /**
   * A recording cluster (`extra` args to its third node) and its worker to stop: the third node, or the
   * second when the third leads; `perNode` tasks of `ms` submitted to each node, and the worker running
   * at least two of them that began less than `freshMs` ago.
   */
  async function busyWorker (prefix: string, extra: string[], perNode: number, ms: number, freshMs: number) {
    const cluster = await recordingCluster(set, prefix, extra)
    const { nodes, leader } = cluster
    const worker = nodes[2] !== leader ? nodes[2]! : nodes[1]!
    const ids = await submitAcross(nodes, perNode, ms)
    const onWorker = await freshlyRunningOn(leader, worker, ids, freshMs)
    return { ...cluster, worker, survivors: nodes.filter(n => n !== worker), ids, onWorker }
  }

  it('SIGTERM to a busy worker: it shows as draining, finishes what it runs, exits 0 within the drain time and shows as left; every task succeeds once, none cancelled, none retried', async () => {
    const drainTimeoutMs = 10_000
    // 36 tasks of 1.5 s on 6 slots (2 outstanding per slot): the worker runs two and holds two more, not begun, when the signal lands.
    const { record, nodes, leader, worker, survivors, ids, onWorker } = await busyWorker('d', ['--drain-timeout-ms', String(drainTimeoutMs)], 12, 1_500, 700)
    const signalledAt = Date.now()
    worker.signal('SIGTERM')
    // Its attempts still have at least 800 ms to run, and /v1/cluster polls take a few ms: it is seen draining.
    await waitFor(async () => await statusOf(leader, worker) === 'draining', 2_000, 'the leader to see the worker draining')
    // Its API still answers, but it takes no new task: the submit is refused before anything is stored.
    const refused = await fetch(`${worker.url}/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ type: 'echo', payload: 1 }) })
    expect(refused.status).toBe(503)
    expect((await refused.json() as { error: { code: string } }).error.code).toBe('DRAINING')
    expect(await worker.exited).toBe(0)
    const exitedMs = Date.now() - signalledAt
    expect(exitedMs).toBeLessThan(drainTimeoutMs + 1_000)
    expect(worker.output()).toContain('"drained: every attempt finished"')
    // It said it left: the others do not wait for the failure detector to call it dead.
    const after = await waitFor(async () => { const s = await statusOf(leader, worker); return s === 'left' || s === 'dead' ? s : undefined }, 3_000, 'the leader to see the worker gone')
    expect(after).toBe('left')
    const done = await Promise.all(ids.map(async id => await task(survivors[0]!, id, 60_000)))
    for (const t of done) expect(t.status, JSON.stringify(t)).toBe('succeeded')
    // What it ran finished there; what it held unbegun went elsewhere without costing an attempt.
    for (const id of onWorker) expect(done.find(t => t.id === id)!.worker, id).toBe(worker.id)
    for (const t of done) expect(t.attempts, t.id).toBe(1)
    const runs = executions(record)
    expect(runs.map(r => r.id).sort()).toEqual([...ids].sort())
    console.log(`busy worker SIGTERM: exited 0 after ${exitedMs} ms; ${onWorker.length} running attempts finished there`)
  })

  it('SIGTERM to the leader under load: a new leader dispatches at once, the old one exits 0 after its attempts; no task lost, none run twice', async () => {
    const { record, nodes, leader } = await recordingCluster(set, 'l')
    const survivors = nodes.filter(n => n !== leader)
    // 60 tasks of 400 ms on 6 slots: work remains queued on the leader when it is signalled.
    const ids = await submitAcross(nodes, 20, 400)
    await waitFor(() => executions(record).length >= 15 || undefined, 30_000, 'a quarter of the tasks to finish')
    const signalledAt = Date.now()
    leader.signal('SIGTERM')
    const dispatched = await waitFor(() => dispatchingAt(survivors, signalledAt), 5_000, 'a new leader to dispatch')
    expect(await leader.exited).toBe(0)
    const next = await waitFor(async () => await agreedLeader(survivors, 2), 5_000, 'the survivors to agree on a new leader')
    expect(next.id).not.toBe(leader.id)
    expect(await statusOf(survivors[0]!, leader)).toBe('left')
    const done = await Promise.all(ids.map(async id => await task(survivors[0]!, id, 60_000)))
    for (const t of done) expect(t.status, JSON.stringify(t)).toBe('succeeded')
    // Nothing ran twice: the old leader finished what it ran, and the new one adopted those attempts.
    const runs = executions(record)
    expect(runs.map(r => r.id).sort()).toEqual([...ids].sort())
    console.log(`leader SIGTERM: new leader dispatching ${dispatched - signalledAt} ms after the signal`)
    // A hand-over, not a failure detection: well under the 1.5 s failure timeout.
    expect(dispatched - signalledAt).toBeLessThan(1_000)
  })

  it('a drain that times out: the node exits 0 soon after, and what it still ran is retried elsewhere at once, never cancelled', async () => {
    const drainTimeoutMs = 1_000
    // Tasks of 5 s: those running on the worker cannot finish within its 1 s drain.
    const { record, nodes, leader, worker, survivors, ids, onWorker } = await busyWorker('t', ['--drain-timeout-ms', String(drainTimeoutMs)], 4, 5_000, 2_000)
    const signalledAt = Date.now()
    worker.signal('SIGTERM')
    expect(await worker.exited).toBe(0)
    expect(Date.now() - signalledAt).toBeLessThan(drainTimeoutMs + 1_500)
    expect(worker.output()).toContain('"drain cut short: the attempts still running stop here and run again elsewhere"')
    expect(await waitFor(async () => { const s = await statusOf(leader, worker); return s === 'left' || s === 'dead' ? s : undefined }, 3_000, 'the leader to see the worker gone')).toBe('left')
    const done = await Promise.all(ids.map(async id => await task(survivors[0]!, id, 60_000)))
    for (const t of done) expect(t.status, JSON.stringify(t)).toBe('succeeded')
    for (const id of onWorker) {
      const t = done.find(d => d.id === id)!
      expect(survivors.map(n => n.id), `${id} ended on ${t.worker ?? '-'}`).toContain(t.worker)
      expect(t.attempts).toBe(2)
    }
    // The stopped attempts never reached their end on the worker.
    expect(executions(record).filter(r => r.pid === worker.proc.pid)).toEqual([])
  })

  it('a second signal stops at once: running attempts are retried elsewhere, not cancelled', async () => {
    const { nodes, leader, worker, survivors, ids, onWorker } = await busyWorker('s', [], 4, 5_000, 2_000)
    const signalledAt = Date.now()
    worker.signal('SIGTERM')
    await waitFor(() => worker.output().includes('"draining: finishing running attempts, taking no new work"'), 2_000, 'the worker to drain')
    worker.signal('SIGINT')
    expect(await worker.exited).toBe(0)
    // Far below the 30 s default drain time: the attempts it ran (5 s each) were not waited for.
    expect(Date.now() - signalledAt).toBeLessThan(2_500)
    const done = await Promise.all(ids.map(async id => await task(survivors[0]!, id, 60_000)))
    for (const t of done) expect(t.status, JSON.stringify(t)).toBe('succeeded')
    for (const id of onWorker) expect(done.find(d => d.id === id)!.attempts).toBe(2)
  })

  it('`taskmesh drain --node URL` drains that node: it leaves, exits 0 and shows as left in `taskmesh status`', async () => {
    const { nodes, leader } = await recordingCluster(set, 'c')
    const target = nodes.find(n => n !== leader)!
    const other = nodes.find(n => n !== leader && n !== target)!
    const cli = spawnSync(process.execPath, [CLI, 'drain', '--node', target.url], { encoding: 'utf8', timeout: 30_000 })
    expect(cli.status, cli.stderr).toBe(0)
    expect(cli.stdout).toMatch(/is draining: it stops within 30000 ms/)
    expect(await target.exited).toBe(0)
    expect(await waitFor(async () => { const s = await statusOf(other, target); return s === 'left' || s === 'dead' ? s : undefined }, 3_000, 'the member to be gone')).toBe('left')
    // The status table shows the departed member as left.
    const status = spawnSync(process.execPath, [CLI, 'status', '--node', other.url], { encoding: 'utf8', timeout: 30_000 })
    expect(status.stdout).toMatch(new RegExp(`${target.name}\\s+\\S+\\s+left`))
    expect(status.stdout).toMatch(/1 left/)
  })
})
