/**
 * What a user task's hop to a handler thread costs, measured on the handler
 * pool alone (no node, no network, no store): 10,000 attempts of the
 * benchmark's user module (`scripts/bench/user-echo-handler.js`, it returns
 * its payload), fed as a worker feeds its pool (32 in flight, the next one
 * sent as one ends), capacity 4, default lane timings. Five runs; the median
 * attempts per second and CPU time per attempt (the whole process: the
 * node's thread and the handler threads), and the messages each way between
 * the node and its threads when the checkout counts them.
 *
 *   node scripts/bench/pool-cost.ts [--root DIR] [--out DIR]
 *
 * `--root` measures another checkout's pool (its src/exec/handler-pool.ts),
 * for a before-and-after pair; `--out` also writes the figures to
 * DIR/<time>-pool-cost.md.
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'

const { values } = parseArgs({ options: { root: { type: 'string' }, out: { type: 'string' } } })
const root = resolve(values.root ?? join(import.meta.dirname, '../..'))
const { HandlerPool } = await import(join(root, 'src/exec/handler-pool.ts')) as typeof import('../../src/exec/handler-pool.ts')
const ATTEMPTS = 10_000
const IN_FLIGHT = 32
const RUNS = 5
const handler = join(import.meta.dirname, 'user-echo-handler.js')

const rates: number[] = []
const cpuPerAttempt: number[] = []
let messages = ''
/** Handler threads alive at the end of each run (short attempts keep to one unless it cannot keep up). */
const threads: number[] = []
for (let run = 0; run < RUNS; run++) {
  const pool = new HandlerPool(4, { user: handler }, process.cwd())
  const signal = new AbortController().signal
  const one = async (i: number): Promise<void> => {
    const outcome = await pool.run({ taskId: `t${i}`, attempt: 1, type: 'user', payload: { i }, timeoutMs: 30_000, signal, onProgress: () => {} })
    if (!outcome.ok) throw new Error(`attempt ${i} failed: ${outcome.error}`)
  }
  // The thread starts and loads the module outside the measured part.
  await one(-1)
  const counted = (pool as { laneMessages?: { toThreads: number, fromThreads: number } }).laneMessages
  const before = counted === undefined ? undefined : { ...counted }
  const cpu = process.cpuUsage()
  const t0 = performance.now()
  let next = 0
  await Promise.all(Array.from({ length: IN_FLIGHT }, async () => { while (next < ATTEMPTS) await one(next++) }))
  const ms = performance.now() - t0
  const used = process.cpuUsage(cpu)
  rates.push(ATTEMPTS / ms * 1000)
  cpuPerAttempt.push((used.user + used.system) / ATTEMPTS)
  const after = (pool as { laneMessages?: { toThreads: number, fromThreads: number } }).laneMessages
  if (before !== undefined && after !== undefined) messages = `; messages per attempt (last run): ${((after.toThreads - before.toThreads) / ATTEMPTS).toFixed(3)} to threads, ${((after.fromThreads - before.fromThreads) / ATTEMPTS).toFixed(3)} back`
  threads.push(pool.threadCount())
  await pool.close()
}
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!
let commit = 'unknown'
try { commit = execFileSync('git', ['-C', root, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim() } catch {}
const line = `pool of ${commit} (${root}), load ${os.loadavg()[0]!.toFixed(2)}: ${median(rates).toFixed(0)} attempts/s and ${median(cpuPerAttempt).toFixed(1)} µs of CPU per attempt (all threads), medians of ${RUNS} runs of ${ATTEMPTS.toLocaleString('en')} (attempts/s ${rates.map(x => x.toFixed(0)).join(', ')}; µs ${cpuPerAttempt.map(x => x.toFixed(1)).join(', ')}); handler threads at the end of each run ${threads.join(', ')}${messages}`
console.log(line)
if (values.out !== undefined) {
  mkdirSync(values.out, { recursive: true })
  const file = join(values.out, `${new Date().toISOString().replace(/[:.]/g, '-')}-pool-cost.md`)
  writeFileSync(file, `# Handler pool cost per attempt, ${new Date().toISOString()}\n\nMachine: ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), Node ${process.version}. Command: \`node scripts/bench/pool-cost.ts --root ${values.root ?? '.'}\`.\n\n${line}\n`)
  console.log(`written: ${file}`)
}
