/**
 * The drain scenario (`--only drain`): what a routine stop (SIGTERM, as
 * systemd, Kubernetes or a deploy sends it) costs a cluster under load, with
 * the default drainTimeoutMs. Three nodes, 4 slots each, running the chaos
 * workload's recording handler (each finished execution logged, so a task
 * run twice shows):
 * - a busy worker (not the leader) is sent SIGTERM while it runs at least
 *   two attempts of 1 s: time from the signal to its exit and its exit code,
 *   tasks that did not succeed (cancelled or failed by the stop; target 0),
 *   tasks run twice and tasks that needed a second attempt;
 * - the leader is sent SIGTERM with 300 tasks of 50 ms in flight: time until
 *   the survivors name one new leader and until it logs that it dispatches,
 *   the old leader's time to exit, tasks lost (not succeeded; target 0) and
 *   tasks run twice.
 * Each repetition on a fresh cluster.
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { DEFAULTS } from '../../src/config.ts'
import { ROOT, http } from '../lib/lan-nodes.ts'
import type { ClusterView, LanNode } from '../lib/lan-nodes.ts'
import { fig } from './figures.ts'
import type { Scenario } from './figures.ts'
import { waitBulk } from './result-clients.ts'

/** What the scenario needs from the benchmark's driver (scripts/bench/inner.ts). */
export interface DrainBench {
  quick: boolean
  work: string
  say: (msg: string) => void
  cluster: (count: number, config: Record<string, unknown>, env: Record<string, string>) => Promise<{ nodes: LanNode[], stop: () => Promise<void> }>
  leaderOf: (nodes: readonly LanNode[]) => Promise<LanNode>
}

const RECORD_HANDLER = join(ROOT, 'scripts/chaos/record-handler.js')
const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

async function submit (node: LanNode, n: number, ms: number): Promise<string[]> {
  const res = await http<{ ids: string[] }>(`${node.url}/v1/tasks/batch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ tasks: Array.from({ length: n }, (_, i) => ({ type: 'record', payload: { ms, i } })) }) }, 30_000)
  if (res.status !== 202) throw new Error(`drain: batch refused with ${res.status}`)
  return res.body.ids
}

/** Resolves with the exit code (null after a signal) and the epoch ms when the process ended. */
function exitOf (node: LanNode): Promise<{ code: number | null, at: number }> {
  const proc = node.proc
  if (proc === null) return Promise.resolve({ code: null, at: Date.now() })
  return new Promise(resolve => proc.once('exit', code => { resolve({ code, at: Date.now() }) }))
}

/** Task ids the recording handler logged more than once. */
function runTwice (file: string): number {
  const counts = new Map<string, number>()
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (line === '') continue
    const id = (JSON.parse(line) as { id: string }).id
    counts.set(id, (counts.get(id) ?? 0) + 1)
  }
  return [...counts.values()].filter(c => c > 1).length
}

/** Epoch ms at which one of `nodes` logged that it dispatches as leader, at or after `sinceMs`. */
function dispatchingAt (nodes: readonly LanNode[], sinceMs: number): number | undefined {
  const lines = nodes.flatMap(n => readFileSync(join(n.dir, 'node.log'), 'utf8').split('\n').filter(l => l.includes('"dispatching as leader"')))
  return lines.map(l => (JSON.parse(l) as { time: number }).time).filter(t => t >= sinceMs).sort((a, b) => a - b)[0]
}

async function view (node: LanNode): Promise<ClusterView | null> {
  return await http<ClusterView>(`${node.url}/v1/cluster`, {}, 1_000).then(r => r.status === 200 ? r.body : null, () => null)
}

export async function drainScenario (b: DrainBench): Promise<Scenario> {
  const reps = b.quick ? 2 : 5
  const worker = { exitMs: [] as number[], exitCodes: [] as number[], notSucceeded: 0, twice: 0, retried: 0, running: [] as number[] }
  for (let r = 0; r < reps; r++) {
    const record = join(b.work, `drain-worker-${r}.jsonl`)
    writeFileSync(record, '')
    const c = await b.cluster(3, { capacity: 4, handlers: { record: RECORD_HANDLER } }, { TASKMESH_RECORD_FILE: record })
    try {
      const leader = await b.leaderOf(c.nodes)
      const target = c.nodes.find(n => n !== leader)!
      // 40 tasks of 1 s per node on 12 slots: every node runs some when the signal lands, and more wait.
      const batches = await Promise.all(c.nodes.map(async n => ({ node: n, ids: await submit(n, 40, 1_000) })))
      // Signal once the worker runs two attempts or more, as the leader sees it.
      const deadline = Date.now() + 20_000
      let running = 0
      while (running < 2 && Date.now() < deadline) {
        running = (await view(leader))?.members.find(m => m.name === target.name)?.running ?? 0
        if (running < 2) await sleep(20)
      }
      const exited = exitOf(target)
      const at = Date.now()
      target.proc!.kill('SIGTERM')
      const { code, at: exitAt } = await exited
      worker.exitMs.push(exitAt - at)
      worker.exitCodes.push(code ?? -1)
      worker.running.push(running)
      // The stopped node's batch is read from a survivor (its tasks have a second holder).
      const ended = (await Promise.all(batches.map(async x => await waitBulk(x.node === target ? leader : x.node, x.ids)))).flatMap(w => w.ended)
      worker.notSucceeded += ended.filter(e => e.status !== 'succeeded').length
      worker.retried += ended.filter(e => e.attempts > 1).length
      worker.twice += runTwice(record)
      b.say(`drain: busy worker SIGTERM ${r + 1}/${reps}: running ${running}, exited ${code} after ${exitAt - at} ms; ${ended.filter(e => e.status !== 'succeeded').length} of ${ended.length} not succeeded`)
    } finally {
      await c.stop()
    }
  }
  const lead = { agreedMs: [] as number[], dispatchMs: [] as number[], exitMs: [] as number[], exitCodes: [] as number[], lost: 0, twice: 0 }
  for (let r = 0; r < reps; r++) {
    const record = join(b.work, `drain-leader-${r}.jsonl`)
    writeFileSync(record, '')
    const c = await b.cluster(3, { capacity: 4, handlers: { record: RECORD_HANDLER } }, { TASKMESH_RECORD_FILE: record })
    try {
      const leader = await b.leaderOf(c.nodes)
      const others = c.nodes.filter(n => n !== leader)
      const origin = others[0]!
      const ids = await submit(origin, 300, 50)
      await sleep(500)
      const exited = exitOf(leader)
      const at = Date.now()
      leader.proc!.kill('SIGTERM')
      let agreedAt: number | null = null
      while (Date.now() - at < 10_000) {
        const names = new Set((await Promise.all(others.map(view))).map(v => v?.leader?.name ?? null))
        if (names.size === 1 && !names.has(null) && !names.has(leader.name)) { agreedAt = Date.now(); break }
        await sleep(10)
      }
      const ended = (await waitBulk(origin, ids)).ended
      const { code, at: exitAt } = await exited
      const dispatchedAt = dispatchingAt(others, at)
      if (agreedAt !== null) lead.agreedMs.push(agreedAt - at)
      if (dispatchedAt !== undefined) lead.dispatchMs.push(dispatchedAt - at)
      lead.exitMs.push(exitAt - at)
      lead.exitCodes.push(code ?? -1)
      lead.lost += ended.filter(e => e.status !== 'succeeded').length
      lead.twice += runTwice(record)
      b.say(`drain: leader SIGTERM ${r + 1}/${reps}: agreed after ${agreedAt === null ? '-' : agreedAt - at} ms, dispatching after ${dispatchedAt === undefined ? '-' : dispatchedAt - at} ms, old leader exited ${code} after ${exitAt - at} ms`)
    } finally {
      await c.stop()
    }
  }
  const drainTarget = `<= drainTimeoutMs + 1,000 = ${(DEFAULTS.drainTimeoutMs + 1_000).toLocaleString('en')} ms`
  return {
    name: 'drain',
    config: { nodes: 3, capacity: 4, drainTimeoutMs: DEFAULTS.drainTimeoutMs, failureTimeoutMs: DEFAULTS.failureTimeoutMs, repetitions: reps, worker: 'SIGTERM to a non-leader running 2+ attempts; 40 tasks of 1 s submitted to each node', leader: 'SIGTERM to the leader 500 ms after 300 tasks of 50 ms were submitted to another node' },
    figures: [
      fig('busy worker SIGTERM: signal to exit', worker.exitMs, 'ms', { target: drainTarget }),
      fig('busy worker SIGTERM: exit code', worker.exitCodes, '', { target: '0' }),
      fig('busy worker SIGTERM: attempts running on it at the signal', worker.running, 'attempts'),
      fig('busy worker SIGTERM: tasks cancelled or failed (all repetitions)', [worker.notSucceeded], 'tasks', { target: '0' }),
      fig('busy worker SIGTERM: tasks run twice (all repetitions)', [worker.twice], 'tasks', { target: '0' }),
      fig('busy worker SIGTERM: tasks that needed a second attempt (all repetitions)', [worker.retried], 'tasks'),
      fig('leader SIGTERM: survivors agree on a new leader', lead.agreedMs, 'ms'),
      fig('leader SIGTERM: new leader dispatching', lead.dispatchMs, 'ms', { target: `< failureTimeoutMs = ${DEFAULTS.failureTimeoutMs.toLocaleString('en')} ms (a hand-over, not a failure detection)` }),
      fig('leader SIGTERM: old leader signal to exit', lead.exitMs, 'ms', { target: drainTarget }),
      fig('leader SIGTERM: exit code', lead.exitCodes, '', { target: '0' }),
      fig('leader SIGTERM: tasks lost (all repetitions)', [lead.lost], 'tasks', { target: '0' }),
      fig('leader SIGTERM: tasks run twice (all repetitions)', [lead.twice], 'tasks', { target: '0' })
    ],
    notes: ['agreement is polled every 10 ms from the controller; dispatching is the new leader\'s own log line; runs list every repetition']
  }
}
