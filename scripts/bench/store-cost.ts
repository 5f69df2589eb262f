/**
 * What a holder's store spends per task, measured on the store alone (no
 * node, no network): 20,000 tasks in batches of 100, each batch stored
 * (fsynced) and then taken through the updates a holder gets for a short
 * task (assigned, running, succeeded), with the runtime's tick (which writes
 * the changes the store holds back) every 20 batches. Five runs; the median
 * CPU time per task, and the row writes per task.
 *
 *   node scripts/bench/store-cost.ts [--root DIR] [--out DIR] [--held N]
 *
 * `--held N` first stores N tasks that ended (not measured), as a holder
 * that keeps N finished records (retainFinishedCount) has them: the size of
 * its b-trees decides how many pages a batch dirties.
 *
 * Task ids are made as that checkout's nodes make them (its
 * src/runtime/tasks/task-ids.ts when it has one, else random UUIDs, as
 * before it): their order decides which b-tree pages a batch dirties.
 *
 * `--root` measures the store of another checkout (its src/store/task-store.ts),
 * for a before-and-after pair; `--out` also writes the figures to
 * DIR/<time>-store-cost.md (bench/results for the figures the README cites).
 */
import { execFileSync } from 'node:child_process'
import { randomUUID } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { join, resolve } from 'node:path'
import { parseArgs } from 'node:util'

const { values } = parseArgs({ options: { root: { type: 'string' }, out: { type: 'string' }, held: { type: 'string' } } })
const HELD = Number(values.held ?? 0)
const root = resolve(values.root ?? join(import.meta.dirname, '../..'))
const { TaskStore } = await import(join(root, 'src/store/task-store.ts')) as typeof import('../../src/store/task-store.ts')
const idsModule = join(root, 'src/runtime/tasks/task-ids.ts')
const newId: () => string = existsSync(idsModule) ? (await import(idsModule) as { newTaskId: () => string }).newTaskId : randomUUID
const idKind = existsSync(idsModule) ? 'task-ids.ts' : 'random UUIDs'
/** Write syscalls of this process so far (the store's log and database writes). */
const writes = (): number => Number(/syscw: (\d+)/.exec(readFileSync('/proc/self/io', 'utf8'))?.[1] ?? NaN)
const TASKS = 20_000
const BATCH = 100
const RUNS = 5

const cpuPerTask: number[] = []
const writesPerTask: number[] = []
for (let run = 0; run < RUNS; run++) {
  const dir = mkdtempSync(join(os.tmpdir(), 'taskmesh-store-cost-'))
  const store = new TaskStore(dir)
  const flush = (store as { flushDeferred?: () => void }).flushDeferred?.bind(store)
  for (let i = 0; i < HELD; i += 1000) {
    const ids = Array.from({ length: Math.min(1000, HELD - i) }, () => newId())
    store.insert(ids.map(id => ({ id, type: 'echo', payload: { n: i }, priority: 0, timeoutMs: 30_000, maxAttempts: 3, idempotencyKey: null, createdAt: 1, origin: 'origin', replicas: ['replica'] })))
    store.applyUpdates(ids.map(id => ({ id, status: 'succeeded' as const, attempts: 1, worker: 'worker', progress: null, result: { n: i }, error: null, startedAt: 2, finishedAt: 3 })))
  }
  const started = process.cpuUsage()
  const writesBefore = writes()
  for (let i = 0; i < TASKS; i += BATCH) {
    const ids = Array.from({ length: BATCH }, () => newId())
    store.insert(ids.map(id => ({ id, type: 'echo', payload: { n: i }, priority: 0, timeoutMs: 30_000, maxAttempts: 3, idempotencyKey: null, createdAt: 1, origin: 'origin', replicas: ['replica'] })))
    const base = { attempts: 1, worker: 'worker', progress: null, result: null, error: null, startedAt: 2, finishedAt: null }
    store.applyUpdates(ids.map(id => ({ id, status: 'assigned' as const, ...base })))
    store.applyUpdates(ids.map(id => ({ id, status: 'running' as const, ...base })))
    store.applyUpdates(ids.map(id => ({ id, status: 'succeeded' as const, ...base, result: { n: i }, finishedAt: 3 })))
    if ((i / BATCH) % 20 === 19) flush?.()
  }
  const used = process.cpuUsage(started)
  cpuPerTask.push((used.user + used.system) / TASKS)
  writesPerTask.push((writes() - writesBefore) / TASKS)
  store.close()
  rmSync(dir, { recursive: true, force: true })
}
const sorted = [...cpuPerTask].sort((a, b) => a - b)
const median = sorted[Math.floor(RUNS / 2)]!
const writesMedian = [...writesPerTask].sort((a, b) => a - b)[Math.floor(RUNS / 2)]!
let commit = 'unknown'
try { commit = execFileSync('git', ['-C', root, 'rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim() } catch {}
const line = `store of ${commit} (${root}), ids from ${idKind}: ${median.toFixed(1)} µs of CPU per task (insert, assigned, running, succeeded), median of ${RUNS} runs of ${TASKS.toLocaleString('en')} tasks${HELD > 0 ? ` (after ${HELD.toLocaleString('en')} ended ones, not measured)` : ''}: ${cpuPerTask.map(x => x.toFixed(1)).join(', ')}; ${writesMedian.toFixed(2)} write calls per task`
console.log(line)
if (values.out !== undefined) {
  mkdirSync(values.out, { recursive: true })
  const file = join(values.out, `${new Date().toISOString().replace(/[:.]/g, '-')}-store-cost.md`)
  writeFileSync(file, `# Store cost per task, ${new Date().toISOString()}\n\nMachine: ${os.cpus().length} cores (${os.cpus()[0]?.model ?? '?'}), Node ${process.version}. Command: \`node scripts/bench/store-cost.ts --root ${values.root ?? '.'}${HELD > 0 ? ` --held ${HELD}` : ''}\`.\n\n${line}\n`)
  console.log(`written: ${file}`)
}
