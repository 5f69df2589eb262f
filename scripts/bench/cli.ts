/**
 * npm run bench [-- --quick] [-- --only latency,throughput] [-- --profile]
 *
 * Builds a simulated LAN (scripts/lan), runs every scenario on real nodes
 * there (inner.ts, inside the LAN's bridge namespace), prints a table and
 * writes bench/results/<date>.json and .md; removes the LAN however it ends.
 */
import { resolve } from 'node:path'
import { Command, CommanderError } from 'commander'
import { LanError, checkCapabilities } from '../lan/lan.ts'
import { cleanupLan, runOnLan } from '../lib/lan-run.ts'
import type { BenchConfig } from './inner.ts'

const SCENARIOS = ['startup', 'latency', 'throughput', 'failover', 'convergence', 'scale', 'memory', 'drain', 'retention']
const program = new Command('bench')
  .description('Benchmarks on real nodes in private network namespaces: startup, latency (with HTTP and libp2p floors), throughput, failover, convergence, scale, memory, drain (SIGTERM of a busy worker and of the leader under load), retention (long run: memory and disk after many tasks).')
  .option('--quick', 'fewer runs and smaller sizes (a few minutes)')
  .option('--only <list>', `scenarios to run, comma-separated (${SCENARIOS.join(', ')})`)
  .option('--out <dir>', 'where results go', 'bench/results')
  .option('--scale-nodes <n>', 'nodes in the scale scenario (default 25; quick: 10)')
  .option('--profile', 'the latency and throughput nodes (and the last scale node) write CPU profiles (node --cpu-prof) to <out>/profiles; the Markdown summary says where their time went (figures are slower while profiling)')
  .addHelpText('after', '\nExamples:\n  npm run bench -- --quick\n  npm run bench -- --only latency,throughput\n  npm run bench -- --only scale --scale-nodes 50\n  npm run bench -- --quick --only throughput --profile --out /tmp/prof\nNeeds Linux and root (network namespaces). See bench/README.md for what each figure means.')
  .showHelpAfterError()
  .exitOverride()

try {
  program.parse(process.argv)
  const o = program.opts<{ quick?: boolean, only?: string, out: string, profile?: boolean, scaleNodes?: string }>()
  const scaleNodes = o.scaleNodes === undefined ? (o.quick === true ? 10 : 25) : Number(o.scaleNodes)
  if (!Number.isInteger(scaleNodes) || scaleNodes < 3 || scaleNodes > 200) throw new CommanderError(2, 'bench.only', `--scale-nodes must be an integer 3-200, got ${o.scaleNodes ?? ''}`)
  const only = o.only === undefined ? null : o.only.split(',').map(s => s.trim())
  for (const s of only ?? []) if (!SCENARIOS.includes(s)) throw new CommanderError(2, 'bench.only', `unknown scenario "${s}" (known: ${SCENARIOS.join(', ')})`)
  checkCapabilities()
  const code = await runOnLan('bench', Math.max(o.quick === true ? 10 : 25, only === null || only.includes('scale') ? scaleNodes : 0), resolve(import.meta.dirname, 'inner.ts'), lan => {
    console.log(`[bench] LAN ${lan.prefix}: ${lan.hosts.length} hosts`)
    return { lan, quick: o.quick === true, out: resolve(o.out), only, profile: o.profile === true, scaleNodes } satisfies BenchConfig
  })
  process.exit(code)
} catch (err) {
  if (err instanceof CommanderError) { if (err.exitCode !== 0 && err.code === 'bench.only') console.error(err.message); process.exit(err.exitCode === 0 ? 0 : 2) }
  if (err instanceof LanError) { console.error(`bench: ${err.message}`); cleanupLan('bench'); process.exit(3) }
  cleanupLan('bench')
  throw err
}
