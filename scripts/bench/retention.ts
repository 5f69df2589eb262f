/**
 * The long-run retention scenario (`--only retention`): one node runs short
 * `echo` tasks without a pause, batches of 1,000 with a few in flight and
 * results learnt by bulk waits, and at each checkpoint the benchmark reads
 * its memory (VmRSS and VmHWM from /proc/<pid>/status) and the size of its
 * data folder, and how many finished records it holds. Full size:
 * checkpoints at 100,000, 300,000 and 1,000,000 tasks with the default
 * retention (100,000 finished records); quick: 10,000, 20,000 and 50,000
 * with retainFinishedCount 10,000, the same shape at a tenth of the size.
 */
import { readdirSync, readFileSync, statSync, writeFileSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { DEFAULTS } from '../../src/config.ts'
import type { Lan } from '../lan/lan.ts'
import { LAN_TOKEN, http, lanNode, startNode, stopNode, waitForAgreement } from '../lib/lan-nodes.ts'
import { fig } from './figures.ts'
import type { Figure, Scenario } from './figures.ts'
import { waitBulk } from './result-clients.ts'

const BATCH = 1_000
/** Batches in flight at once (each learns its results with bulk waits). */
const IN_FLIGHT = 4

function dirBytes (dir: string): number {
  let total = 0
  for (const e of readdirSync(dir, { withFileTypes: true })) total += e.isDirectory() ? dirBytes(join(dir, e.name)) : statSync(join(dir, e.name)).size
  return total
}

/** VmRSS and VmHWM (peak) of a process, in MB. */
function memory (pid: number): { rss: number, hwm: number } {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8')
  const kb = (key: string): number => Number(/(\d+) kB/.exec(status.split('\n').find(l => l.startsWith(key)) ?? '')?.[1] ?? NaN)
  return { rss: kb('VmRSS:') / 1024, hwm: kb('VmHWM:') / 1024 }
}

/** Finished records the node holds, from its metrics. */
async function finishedHeld (url: string): Promise<number> {
  const res = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${LAN_TOKEN}` }, signal: AbortSignal.timeout(10_000) })
  let n = 0
  for (const line of (await res.text()).split('\n')) {
    const m = /^taskmesh_tasks\{[^}]*state="(succeeded|failed|cancelled)"[^}]*\} (\d+)/.exec(line)
    if (m !== null) n += Number(m[2])
  }
  return n
}

/**
 * V8 flags that bound the heap of a long-running node: a small young
 * generation (less garbage promoted, so the old generation grows less under
 * load) and a cap on the old one. The second run of the scenario uses them.
 */
export const LEAN_NODE_OPTIONS = '--max-semi-space-size=2 --max-old-space-size=128'

export async function retentionScenario (opts: { lan: Lan, quick: boolean, work: string, say: (msg: string) => void }): Promise<Scenario[]> {
  const out: Scenario[] = []
  for (const [label, env] of [['default', {}], [`NODE_OPTIONS="${LEAN_NODE_OPTIONS}"`, { NODE_OPTIONS: LEAN_NODE_OPTIONS }]] as const) {
    out.push(await oneRun(opts, label, env))
  }
  return out
}

async function oneRun (opts: { lan: Lan, quick: boolean, work: string, say: (msg: string) => void }, label: string, env: Record<string, string>): Promise<Scenario> {
  const checkpoints = opts.quick ? [10_000, 20_000, 50_000] : [100_000, 300_000, 1_000_000]
  const retainFinishedCount = opts.quick ? 10_000 : DEFAULTS.retainFinishedCount
  const dir = join(opts.work, `retention-${label === 'default' ? 'default' : 'lean'}`)
  mkdirSync(dir, { recursive: true })
  const config = join(dir, 'cluster.config.json')
  writeFileSync(config, JSON.stringify({ cluster: `bench-retention-${process.pid}`, capacity: 4, retainFinishedCount }))
  const node = lanNode(opts.lan.hosts[0]!, join(dir, 'h0'))
  startNode(node, { config, env })
  try {
    if (await waitForAgreement([node], 60_000, 50) === null) throw new Error('the node did not start')
    const pid = node.proc!.pid!
    await new Promise(resolve => setTimeout(resolve, 2_000))
    const idle = memory(pid)
    const rows: Array<{ tasks: number, rss: number, hwm: number, diskMB: number, held: number, secs: number }> = []
    const t0 = performance.now()
    let submitted = 0
    for (const target of checkpoints) {
      await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
        while (submitted < target) {
          submitted += BATCH
          const res = await http<{ ids: string[] }>(`${node.url}/v1/tasks/batch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ tasks: Array.from({ length: BATCH }, (_, i) => ({ type: 'echo', payload: { i } })) }) }, 60_000)
          if (res.status !== 202) throw new Error(`retention: batch refused with ${res.status}`)
          const waited = await waitBulk(node, res.body.ids)
          if (waited.ended.some(e => e.status !== 'succeeded')) throw new Error('retention: a task did not succeed')
        }
      }))
      // Let the sweeper catch up (it runs a step a second while idle, at once while behind).
      const deadline = Date.now() + 30_000
      let held = await finishedHeld(node.url)
      while (held > retainFinishedCount && Date.now() < deadline) {
        await new Promise(resolve => setTimeout(resolve, 500))
        held = await finishedHeld(node.url)
      }
      const m = memory(pid)
      const row = { tasks: submitted, rss: m.rss, hwm: m.hwm, diskMB: dirBytes(join(node.dir, 'data')) / 1e6, held, secs: (performance.now() - t0) / 1000 }
      rows.push(row)
      opts.say(`retention (${label}): ${row.tasks.toLocaleString('en')} tasks in ${row.secs.toFixed(0)} s: VmRSS ${row.rss.toFixed(0)} MB, VmHWM ${row.hwm.toFixed(0)} MB, data folder ${row.diskMB.toFixed(1)} MB, ${row.held.toLocaleString('en')} finished records held`)
    }
    const figures: Figure[] = [fig('VmRSS of the idle node before the run', [idle.rss], 'MB')]
    for (const r of rows) {
      const at = `after ${r.tasks.toLocaleString('en')} tasks`
      const last = r === rows.at(-1)
      figures.push(fig(`VmRSS ${at}`, [r.rss], 'MB', last ? { target: '<= 200 MB (at 1,000,000 tasks)' } : {}))
      figures.push(fig(`VmHWM (peak RSS) ${at}`, [r.hwm], 'MB'))
      figures.push(fig(`data folder ${at}`, [r.diskMB], 'MB', last ? { target: 'bounded (no growth once retainFinishedCount records are held)' } : {}))
      figures.push(fig(`finished records held ${at}`, [r.held], 'records'))
    }
    const full = rows.find(r => r.held >= retainFinishedCount) ?? rows.at(-1)!
    figures.push(fig('data folder per finished record held (at the first checkpoint holding the full count)', [full.diskMB * 1e6 / Math.max(1, full.held)], 'bytes'))
    figures.push(fig('tasks/s over the whole run', [rows.at(-1)!.tasks / rows.at(-1)!.secs], 'tasks/s'))
    return {
      name: label === 'default' ? 'retention' : `retention, ${label}`,
      config: { nodes: 1, nodeOptions: env.NODE_OPTIONS ?? '',  capacity: 4, retainFinishedCount, retainFinishedMs: DEFAULTS.retainFinishedMs, checkpoints, batch: BATCH, batchesInFlight: IN_FLIGHT, task: 'echo {i}' },
      figures,
      notes: ['the data folder holds tasks.db and its WAL, the identity key and term files; records past the count are swept in steps of 500']
    }
  } finally {
    await stopNode(node, 10_000)
  }
}
