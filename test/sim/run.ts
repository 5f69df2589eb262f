/**
 * Runs the deterministic task-system simulation over many seeds:
 *   npm run sim -- --seeds 5000 [--from 1] [--jobs N] [--nodes N] [--quorum Q]
 *   npm run sim -- --seed 1234 --verbose        (replays one seed exactly, with its event log)
 * Exits 1 when a seed breaks an invariant, printing the seed, the last
 * events before it and how to replay it.
 */
import os from 'node:os'
import { parseArgs } from 'node:util'
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads'
import { runTaskSim } from './task-sim.ts'
import type { TaskSimReport } from './task-sim.ts'

interface Job { seeds: number[], nodes?: number, quorum?: number, replayMs?: number, kills: boolean, verbose: boolean }
type Message = { kind: 'done', report: Omit<TaskSimReport, 'log'> & { log: string[] } }

const USAGE = `usage: npm run sim -- [--seeds N] [--from S] [--jobs J] [--seed S --verbose] [--nodes N] [--quorum Q] [--replay-ms MS] [--kills]

Runs the real cluster and task runtimes of 3-9 nodes over a simulated network and clock, with
crashes, graceful stops (drains that finish or time out), pauses, restarts and partitions drawn from each seed, and checks the invariants:
at most one leader dispatching per term (with a majority quorum) and no worker running one term's
assignments from two leaders; no accepted task lost; every holder of a task ends with the same
terminal record; every accepted task terminal once faults stop; no stale-term assignment accepted;
results equal to what the handler returned; no term or grant sent before it is on disk; no attempt
of a delayed task begun before its runAt; a task a user retried ends in that generation or a later one,
the same on every holder; no leader change without a fault that forces one (a heal, a resume or a
restart never moves a dispatching leader).
The same seed replays exactly.

  --seeds N    how many seeds (default 200), from --from (default 1)
  --jobs J     worker threads (default: the number of cores)
  --seed S     one seed; with --verbose, prints its whole event log
  --nodes N    cluster size (default: 3-9, drawn from the seed)
  --quorum Q   quorum (default: none or a majority, drawn from the seed)
  --replay-ms MS  at a heal, heartbeats the partition held back from this long ago reach their
               receivers after all, as gossipsub's message cache hands them on (default 3000,
               about gossipsub's reach; 0: none)
  --kills      a third of the crashes last until the faults stop, as the chaos smoke's kills do
               (a holder misses endings for long, and the node that parked them may restart)`

if (isMainThread) await main()
else await work(workerData as Job)

async function work (job: Job): Promise<void> {
  for (const seed of job.seeds) {
    const report = await runTaskSim({ seed, nodes: job.nodes, quorum: job.quorum, replayMs: job.replayMs, kills: job.kills })
    parentPort!.postMessage({ kind: 'done', report: { ...report, log: report.violations.length > 0 || job.verbose ? report.log : [] } } satisfies Message)
  }
}

async function main (): Promise<void> {
  const { values } = parseArgs({
    options: {
      seeds: { type: 'string', default: '200' },
      from: { type: 'string', default: '1' },
      seed: { type: 'string' },
      jobs: { type: 'string' },
      nodes: { type: 'string' },
      quorum: { type: 'string' },
      'replay-ms': { type: 'string' },
      kills: { type: 'boolean', default: false },
      verbose: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false }
    }
  })
  if (values.help) { console.log(USAGE); return }
  const int = (s: string | undefined, name: string): number | undefined => {
    if (s === undefined) return undefined
    const n = Number(s)
    if (!Number.isSafeInteger(n) || n < 0) { console.error(`--${name} must be a non-negative integer, got "${s}"\n\n${USAGE}`); process.exit(2) }
    return n
  }
  const nodes = int(values.nodes, 'nodes')
  const quorum = int(values.quorum, 'quorum')
  const replayMs = int(values['replay-ms'], 'replay-ms')
  const seeds = values.seed !== undefined ? [int(values.seed, 'seed')!] : Array.from({ length: int(values.seeds, 'seeds')! }, (_, i) => int(values.from, 'from')! + i)
  const jobs = Math.max(1, Math.min(seeds.length, int(values.jobs, 'jobs') ?? os.availableParallelism()))
  const started = performance.now()
  const totals = { seeds: 0, accepted: 0, delayed: 0, retried: 0, duplicates: 0, faults: 0, cancelsOverturned: 0 }
  const workers: Worker[] = []
  const failed = await new Promise<TaskSimReport | null>((resolve, reject) => {
    let finished = 0
    for (let j = 0; j < jobs; j++) {
      const w = new Worker(new URL(import.meta.url), { workerData: { seeds: seeds.filter((_, i) => i % jobs === j), nodes, quorum, replayMs, kills: values.kills, verbose: values.verbose } satisfies Job })
      workers.push(w)
      w.on('message', (m: Message) => {
        const r = m.report
        totals.seeds++
        totals.accepted += r.accepted
        totals.delayed += r.delayed
        totals.retried += r.retried
        totals.duplicates += r.duplicates
        totals.cancelsOverturned += r.cancelsOverturned
        totals.faults += r.faults
        if (values.verbose || r.violations.length > 0) {
          console.log(`seed ${r.seed}: ${r.nodes} nodes, quorum ${r.quorum}, ${r.faults} faults, ${r.accepted} accepted (${r.delayed} delayed, ${r.retried} retried; ${r.succeeded} succeeded, ${r.failed} failed, ${r.cancelled} cancelled), ${r.executions} executions, ${r.duplicates} run twice, ${r.singleCopy} single-copy, ${r.leaders} terms dispatched, settled after ${r.settledAfterMs ?? 'never'} ms`)
        }
        if (r.violations.length > 0) { resolve(r); return }
        if (values.verbose && seeds.length === 1) console.log(r.log.join('\n'))
        if (!values.verbose && totals.seeds % 50 === 0) process.stderr.write(`  ${totals.seeds}/${seeds.length} seeds ok (${((performance.now() - started) / 1000).toFixed(0)} s)\n`)
      })
      w.on('error', reject)
      w.on('exit', () => { if (++finished === jobs) resolve(null) })
    }
  })
  for (const w of workers) void w.terminate()
  if (failed !== null) {
    console.log((values.verbose ? failed.log : failed.log.slice(-60)).join('\n'))
    for (const v of failed.violations.slice(0, 20)) console.log(`VIOLATION ${v.kind}: ${v.detail}`)
    console.log(`\nseed ${failed.seed} broke ${failed.violations.length} invariant check(s); replay: npm run sim -- --seed ${failed.seed}${replayMs !== undefined ? ` --replay-ms ${replayMs}` : ''}${values.kills ? ' --kills' : ''} --verbose`)
    process.exit(1)
  }
  console.log(`${totals.seeds} seeds passed: ${totals.accepted} tasks accepted (${totals.delayed} delayed, ${totals.retried} retried by a user), ${totals.faults} faults injected, ${totals.duplicates} tasks run twice (after faults), ${totals.cancelsOverturned} cancels answered "cancelled" overturned by a result (after faults), in ${((performance.now() - started) / 1000).toFixed(1)} s (${jobs} jobs)`)
}
