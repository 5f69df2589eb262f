/**
 * npm run chaos -- --hosts 5 --duration 60 --faults kill,pause,partition,restart --rate 6 --seed 7
 *
 * Builds a simulated LAN (scripts/lan), runs the chaos run on it (inner.ts,
 * inside the LAN's bridge namespace) and removes the LAN however the run
 * ends: normal exit, a failure, Ctrl-C or SIGTERM. Exit status: 0 when every
 * invariant held, 1 when one broke, 2 on bad options, 3 when the run could
 * not be carried out.
 */
import { resolve } from 'node:path'
import { Command, CommanderError, InvalidArgumentError } from 'commander'
import { LanError, checkCapabilities } from '../lan/lan.ts'
import { cleanupLan, runOnLan } from '../lib/lan-run.ts'
import type { InnerConfig } from './inner.ts'
import { FAULT_KINDS, faultSchedule, parseFaults } from './schedule.ts'

const int = (name: string, min: number) => (v: string): number => {
  const n = Number(v)
  if (!Number.isInteger(n) || n < min) throw new InvalidArgumentError(`${name} must be an integer >= ${min}`)
  return n
}

const program = new Command('chaos')
  .description('Chaos-test a taskmesh cluster on a simulated LAN: one node per host, a workload, seeded faults, an invariant check and a report.')
  .option('--hosts <n>', 'hosts (one node each)', int('--hosts', 1), 5)
  .option('--duration <s>', 'seconds of load and faults', int('--duration', 15), 60)
  .option('--faults <list>', `fault kinds, comma-separated (${FAULT_KINDS.join(', ')})`, 'kill,pause,partition,restart')
  .option('--rate <r>', 'faults per minute', v => { const n = Number(v); if (!(n >= 0)) throw new InvalidArgumentError('--rate must be a number >= 0'); return n }, 6)
  .option('--seed <s>', 'seed of the fault schedule and the workload', int('--seed', 0), 1)
  .option('--quorum <q>', 'quorum of every node: a number, or "majority" (default)', 'majority')
  .option('--out <dir>', 'where the report, logs and data go (default: chaos-runs/<time>-seed<S>)')
  .option('--settle <s>', 'seconds allowed, after the faults stop, for every accepted task to end', int('--settle', 10), 120)
  .option('--dry-run', 'print the fault schedule the seed gives, and stop')
  .addHelpText('after', `
Faults:
  kill       SIGKILL of the leader, a worker or an origin; it stays down until the faults stop
  restart    SIGKILL, then a restart with the same data directory after a few seconds
  pause      SIGSTOP, then SIGCONT after a few seconds
  partition  one host cut off from the bridge, or a minority moved to a second bridge; healed after a few seconds

Examples:
  npm run chaos -- --hosts 5 --duration 60 --faults kill,pause,partition,restart --seed 7
  npm run chaos -- --seed 7 --dry-run            # the schedule seed 7 injects
Needs Linux and root (network namespaces). Exit status 1 when an invariant broke.`)
  .showHelpAfterError()
  .exitOverride()

try {
  program.parse(process.argv)
  const o = program.opts<{ hosts: number, duration: number, faults: string, rate: number, seed: number, quorum: string, out?: string, settle: number, dryRun?: boolean }>()
  const faults = parseFaults(o.faults)
  const quorum = o.quorum === 'majority' ? Math.floor(o.hosts / 2) + 1 : int('--quorum', 0)(o.quorum)
  const durationMs = o.duration * 1000
  if (o.dryRun === true) {
    console.log(JSON.stringify(faultSchedule({ seed: o.seed, durationMs, faults, rate: o.rate }), null, 2))
    process.exit(0)
  }
  checkCapabilities()
  const out = resolve(o.out ?? `chaos-runs/${new Date().toISOString().replace(/[:.]/g, '-')}-seed${o.seed}`)
  const code = await runOnLan('chaos', o.hosts, resolve(import.meta.dirname, 'inner.ts'), lan => {
    console.log(`[chaos] LAN ${lan.prefix}: ${o.hosts} hosts on a bridge (${lan.hosts.map(h => h.addr).join(', ')}); output in ${out}`)
    return { lan, seed: o.seed, durationMs, faults, rate: o.rate, quorum, out, settleMs: o.settle * 1000 } satisfies InnerConfig
  })
  process.exit(code)
} catch (err) {
  if (err instanceof CommanderError) process.exit(err.exitCode === 0 ? 0 : 2)
  if (err instanceof LanError) { console.error(`chaos: ${err.message}`); cleanupLan('chaos'); process.exit(3) }
  if (err instanceof Error && err.message.startsWith('unknown fault')) { console.error(`chaos: ${err.message}`); process.exit(2) }
  cleanupLan('chaos')
  throw err
}
