/**
 * The slow-start comparison of the join window (src/core/join-window.ts):
 * node test/sim/slow-start-run.ts [--nodes 25] [--seeds 8]
 *
 * N nodes started at once on a starved host (MembersSim.startTogether:
 * started over 5 s, first connected 0.1-1.2 s after start, in the gossip
 * mesh 0.5-3 s after that, synced 0.5-6 s after it, every process stalling
 * 0.3-1.5 s now and then; 1 % loss), with and without the wait for the first
 * state sync: per seed, nodes that led a cluster of one after they had
 * connected, self-claims, new incarnations, and agreement after the last start.
 */
import { parseArgs } from 'node:util'
import { MembersSim } from './members-sim.ts'
import type { SlowStart } from './members-sim.ts'
import { DEFAULTS } from '../../src/config.ts'
import { coreTimings } from '../../src/timings.ts'

const { values } = parseArgs({ options: { nodes: { type: 'string', default: '25' }, seeds: { type: 'string', default: '8' } } })
const n = Number(values.nodes)
const timings = coreTimings({ heartbeatIntervalMs: DEFAULTS.heartbeatIntervalMs, failureTimeoutMs: DEFAULTS.failureTimeoutMs, quorum: 0 })
const start: SlowStart = { n, spreadMs: 5_000, connectMs: [100, 1_200], meshMs: [500, 3_000], syncMs: [500, 6_000], stallChance: 0.03, stallMs: [300, 1_500] }

console.log(`Slow start of ${n} nodes (seeds 1-${values.seeds}): lonely leaders / self-claims / new incarnations / agreement after the last start\n`)
console.log('| join window | ' + Array.from({ length: Number(values.seeds) }, (_, i) => `seed ${i + 1}`).join(' | ') + ' |')
console.log('| --- |' + ' --- |'.repeat(Number(values.seeds)))
for (const [label, config] of [['plain', { ...timings, syncWaitMs: timings.joinWindowMs }], ['waits for the first sync', timings]] as const) {
  const cells: string[] = []
  for (let seed = 1; seed <= Number(values.seeds); seed++) {
    const sim = new MembersSim({ seed, loss: 0.01, config })
    const last = sim.startTogether(start)
    sim.run(last - sim.nowMs)
    const t = sim.runUntil(() => sim.agreed(), 60_000, 50)
    cells.push(`${sim.counters.lonelyClaims} / ${sim.counters.selfClaims} / ${sim.counters.reincarnations} / ${t === null ? 'none in 60 s' : `${(t / 1000).toFixed(1)} s`}`)
  }
  console.log(`| ${label} | ${cells.join(' | ')} |`)
}
