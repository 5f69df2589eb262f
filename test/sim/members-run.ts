/**
 * The membership simulation of issue 15: npm run sim:members [-- --sizes 100,300,1000] [--seed S] [--loss P]
 *
 * For each size, over the pure core (test/sim/members-sim.ts, seeded and
 * deterministic): a cluster of N established members runs idle (messages
 * per node per second, false suspicions with the given loss), a node joins
 * (time until every node lists it alive, and it lists every member), a
 * member is killed (its connections close: time until every node lists it
 * dead) and, up to 300 nodes, another vanishes silently (no connection
 * closes: time until every node lists it dead). Prints a Markdown table.
 */
import { parseArgs } from 'node:util'
import { MembersSim } from './members-sim.ts'
import { FOLLOWER_HEARTBEATS_PER_SECOND } from '../../src/timings.ts'

const { values } = parseArgs({ options: { sizes: { type: 'string', default: '100,300,1000' }, seed: { type: 'string', default: '1' }, loss: { type: 'string', default: '0.01' }, 'silent-up-to': { type: 'string', default: '300' } } })
const sizes = values.sizes.split(',').map(Number)
const seed = Number(values.seed)
const loss = Number(values.loss)
const silentUpTo = Number(values['silent-up-to'])
const IDLE_MS = 20_000

interface Row { n: number, sentPerNode: number, receivedPerNode: number, followerIntervalMs: number, joinMs: number | null, crashMs: number | null, silentMs: number | null | 'not run', falsePerNodeMinute: number, leaderAgreed: boolean, wallMs: number }

function runSize (n: number): Row {
  const wall = performance.now()
  const sim = new MembersSim({ seed: seed * 100_003 + n, loss })
  sim.seed(n)
  const leaders0 = new Set(sim.upNodes().map(x => x.core.leader()?.id ?? null))
  sim.run(5_000)
  console.error(`[sim:members] N=${n}: seeded (leaders named: ${leaders0.size}), warmed up in ${((performance.now() - wall) / 1000).toFixed(1)} s`)
  const c0 = { ...sim.counters }
  sim.run(IDLE_MS)
  const secs = IDLE_MS / 1000
  const sentPerNode = (sim.counters.published - c0.published) / n / secs
  const receivedPerNode = (sim.counters.delivered - c0.delivered) / n / secs
  const falsePerNodeMinute = (sim.counters.falseSuspicions - c0.falseSuspicions) / n / (secs / 60)
  const follower = sim.upNodes().find(x => !x.core.isLeader())!
  const followerIntervalMs = follower.core.publishIntervalMs(sim.nowMs)

  console.error(`[sim:members] N=${n}: idle window done at ${((performance.now() - wall) / 1000).toFixed(1)} s`)
  const joiner = sim.join()
  const joinMs = sim.runUntil(() => sim.allSee(joiner, 'alive') && sim.upNodes().every(x => sim.nodes.get(joiner)!.core.statusOf(x.id) === 'alive'), 30_000)

  const ups = sim.upNodes().filter(x => x.id !== joiner && !x.core.isLeader())
  const victim = ups[Math.floor(sim.rng() * ups.length)]!.id
  sim.crash(victim, true)
  const crashMs = sim.runUntil(() => sim.allSee(victim, 'dead'), 30_000)

  let silentMs: number | null | 'not run' = 'not run'
  if (n <= silentUpTo) {
    const rest = sim.upNodes().filter(x => x.id !== joiner && !x.core.isLeader())
    const silent = rest[Math.floor(sim.rng() * rest.length)]!.id
    sim.crash(silent, false)
    silentMs = sim.runUntil(() => sim.allSee(silent, 'dead'), 10 * followerIntervalMs * 6, 100)
  }
  // Every up node names the same leader at the end.
  const leaders = new Set(sim.upNodes().map(x => x.core.leader()?.id ?? null))
  return { n, sentPerNode, receivedPerNode, followerIntervalMs, joinMs, crashMs, silentMs, falsePerNodeMinute, leaderAgreed: leaders.size === 1 && !leaders.has(null), wallMs: performance.now() - wall }
}

const rows: Row[] = []
for (const n of sizes) {
  const row = runSize(n)
  rows.push(row)
  console.error(`[sim:members] N=${n} done in ${(row.wallMs / 1000).toFixed(1)} s`)
}
const f = (x: number): string => x.toFixed(1)
const ms = (x: number | null | 'not run'): string => x === null ? 'not within the limit' : x === 'not run' ? 'not run' : x >= 10_000 ? `${f(x / 1000)} s` : `${x} ms`
console.log(`Membership simulation (seed ${seed}, ${loss * 100} % of heartbeats lost per receiver, heartbeat 250 ms, failure timeout 1.5 s, follower budget ${FOLLOWER_HEARTBEATS_PER_SECOND}/s; idle window ${IDLE_MS / 1000} s):\n`)
console.log('| nodes | heartbeats sent per node/s | heartbeats received per node/s | follower interval | join known by all | kill known by all | silent death known by all | false suspicions per node per minute | one leader at the end |')
console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- |')
for (const r of rows) console.log(`| ${r.n} | ${r.sentPerNode.toFixed(2)} | ${f(r.receivedPerNode)} | ${ms(r.followerIntervalMs)} | ${ms(r.joinMs)} | ${ms(r.crashMs)} | ${ms(r.silentMs)} | ${r.falsePerNodeMinute.toFixed(3)} | ${r.leaderAgreed ? 'yes' : 'NO'} |`)
process.exit(rows.every(r => r.leaderAgreed && r.joinMs !== null && r.crashMs !== null && r.silentMs !== null) ? 0 : 1)
