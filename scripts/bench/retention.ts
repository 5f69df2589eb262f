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
import { LAN_TOKEN, cpuSeconds, http, lanNode, startNode, stopNode, waitForAgreement } from '../lib/lan-nodes.ts'
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

/** From the node's metrics: the finished records it holds, and its V8 heap in use and heap size (MB). */
async function nodeMetrics (url: string): Promise<{ held: number, heapUsed: number, heapTotal: number }> {
  const res = await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${LAN_TOKEN}` }, signal: AbortSignal.timeout(10_000) })
  let held = 0
  let heapUsed = NaN
  let heapTotal = NaN
  for (const line of (await res.text()).split('\n')) {
    const m = /^taskmesh_tasks\{[^}]*state="(succeeded|failed|cancelled)"[^}]*\} (\d+)/.exec(line)
    if (m !== null) held += Number(m[2])
    const h = /^nodejs_heap_size_(used|total)_bytes (\S+)$/.exec(line)
    if (h?.[1] === 'used') heapUsed = Number(h[2]) / 2 ** 20
    if (h?.[1] === 'total') heapTotal = Number(h[2]) / 2 ** 20
  }
  return { held, heapUsed, heapTotal }
}

/** V8's own heap sizing, for comparison: the executable then gives the node no heap flags (bin/taskmesh.js). */
const V8_OWN_HEAP_SIZING = { TASKMESH_HEAP_FLAGS: '0' }

export async function retentionScenario (opts: { lan: Lan, quick: boolean, work: string, say: (msg: string) => void }): Promise<Scenario[]> {
  const checkpoints = opts.quick ? [10_000, 20_000, 50_000] : [100_000, 300_000, 1_000_000]
  const runs: Array<[string, Record<string, string>, number[]]> = [
    // As users start it.
    ['default', {}, checkpoints],
    // The same with V8's own heap sizing; at full size only to the first checkpoint (the growth shows by then).
    ['TASKMESH_HEAP_FLAGS=0 (V8\'s own heap sizing)', V8_OWN_HEAP_SIZING, opts.quick ? checkpoints : checkpoints.slice(0, 1)]
  ]
  const out: Scenario[] = []
  for (const [label, env, at] of runs) {
    // A run that fails is reported as such; the other's figures are kept.
    out.push(await oneRun(opts, label, env, at).catch((err: Error) => ({ name: `retention, ${label}`, config: {}, figures: [], notes: [`FAILED: ${err.message}`] })))
  }
  return out
}

async function oneRun (opts: { lan: Lan, quick: boolean, work: string, say: (msg: string) => void }, label: string, env: Record<string, string>, checkpoints: number[]): Promise<Scenario> {
  const retainFinishedCount = opts.quick ? 10_000 : DEFAULTS.retainFinishedCount
  const dir = join(opts.work, `retention-${label === 'default' ? 'default' : 'node-sizing'}`)
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
    const rows: Array<{ tasks: number, rss: number, hwm: number, heapUsed: number, heapTotal: number, diskMB: number, held: number, secs: number }> = []
    let running = 0 // ms spent running tasks, the waits for the sweeper at the checkpoints left out
    const cpu0 = cpuSeconds(pid)
    let submitted = 0
    for (const target of checkpoints) {
      const t0 = performance.now()
      await Promise.all(Array.from({ length: IN_FLIGHT }, async () => {
        while (submitted < target) {
          submitted += BATCH
          const res = await http<{ ids: string[] }>(`${node.url}/v1/tasks/batch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ tasks: Array.from({ length: BATCH }, (_, i) => ({ type: 'echo', payload: { i } })) }) }, 60_000)
          if (res.status !== 202) throw new Error(`retention: batch refused with ${res.status}`)
          const waited = await waitBulk(node, res.body.ids)
          if (waited.ended.some(e => e.status !== 'succeeded')) throw new Error('retention: a task did not succeed')
        }
      }))
      running += performance.now() - t0
      const secs = running / 1000
      // Let the sweeper catch up (it runs a step a second while idle, at once while behind).
      const deadline = Date.now() + 30_000
      let held = (await nodeMetrics(node.url)).held
      while (held > retainFinishedCount && Date.now() < deadline) {
        await new Promise(resolve => setTimeout(resolve, 500))
        held = (await nodeMetrics(node.url)).held
      }
      const m = memory(pid)
      const heap = await nodeMetrics(node.url)
      const row = { tasks: submitted, rss: m.rss, hwm: m.hwm, heapUsed: heap.heapUsed, heapTotal: heap.heapTotal, diskMB: dirBytes(join(node.dir, 'data')) / 1e6, held: heap.held, secs }
      rows.push(row)
      opts.say(`retention (${label}): ${row.tasks.toLocaleString('en')} tasks in ${row.secs.toFixed(0)} s: VmRSS ${row.rss.toFixed(0)} MB, VmHWM ${row.hwm.toFixed(0)} MB, heap in use ${row.heapUsed.toFixed(0)} MB of ${row.heapTotal.toFixed(0)} MB, data folder ${row.diskMB.toFixed(1)} MB, ${row.held.toLocaleString('en')} finished records held`)
    }
    const figures: Figure[] = [fig('VmRSS of the idle node before the run', [idle.rss], 'MB')]
    for (const r of rows) {
      const at = `after ${r.tasks.toLocaleString('en')} tasks`
      const last = r === rows.at(-1)
      figures.push(fig(`VmRSS ${at}`, [r.rss], 'MB', last ? { target: '<= 200 MB (at 1,000,000 tasks)' } : {}))
      figures.push(fig(`VmHWM (peak RSS) ${at}`, [r.hwm], 'MB', last ? { target: '<= 200 MB (at 1,000,000 tasks)' } : {}))
      figures.push(fig(`V8 heap in use ${at}`, [r.heapUsed], 'MB'))
      figures.push(fig(`V8 heap size (committed) ${at}`, [r.heapTotal], 'MB'))
      figures.push(fig(`data folder ${at}`, [r.diskMB], 'MB', last ? { target: 'bounded (no growth once retainFinishedCount records are held)' } : {}))
      figures.push(fig(`finished records held ${at}`, [r.held], 'records'))
    }
    const full = rows.find(r => r.held >= retainFinishedCount) ?? rows.at(-1)!
    figures.push(fig('data folder per finished record held (at the first checkpoint holding the full count)', [full.diskMB * 1e6 / Math.max(1, full.held)], 'bytes'))
    figures.push(fig('tasks/s over the whole run (sweeper catch-up at the checkpoints excluded)', [rows.at(-1)!.tasks / rows.at(-1)!.secs], 'tasks/s'))
    figures.push(fig('node CPU-seconds per 1,000 tasks over the whole run (all threads, sweeper catch-up included)', [(cpuSeconds(pid) - cpu0) / (rows.at(-1)!.tasks / 1000)], 'CPU-s'))
    return {
      name: label === 'default' ? 'retention' : `retention, ${label}`,
      config: { nodes: 1, env, capacity: 4, retainFinishedCount, retainFinishedMs: DEFAULTS.retainFinishedMs, checkpoints, batch: BATCH, batchesInFlight: IN_FLIGHT, task: 'echo {i}' },
      figures,
      notes: ['the data folder holds tasks.db and its WAL, the identity key and term files; records past the count are swept in steps of 500', 'memory is read once the sweeper has caught up after each checkpoint; the heap figures are from the node\'s /metrics (nodejs_heap_size_used_bytes and _total_bytes)']
    }
  } finally {
    await stopNode(node, 10_000)
  }
}
