/**
 * Where a scale run's agreement time goes, from the nodes' kept logs
 * (`TASKMESH_BENCH_KEEP=1 npm run bench -- --only scale` keeps them):
 * node scripts/bench/scale-timeline.ts <kept cluster dir, e.g. /tmp/taskmesh-bench-123/c1> [--until-s 70]
 *
 * Times are seconds after the first spawn (the earliest "node started" time
 * minus its start-up). Per node: started, first state sync, first member
 * joined, when it first knew all others, first and last leader change,
 * stalls, new incarnations, and its member-status flips. Then, per second,
 * the leaders the nodes named and the flips that second.
 */
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'

const { values, positionals } = parseArgs({ allowPositionals: true, options: { 'until-s': { type: 'string', default: '70' } } })
const dir = positionals[0]
if (dir === undefined) throw new Error('usage: scale-timeline.ts <kept cluster dir>')
interface Line { time: number, msg: string, [k: string]: unknown }
const nodes = readdirSync(dir).filter(d => /^h\d+$/.test(d)).sort((a, b) => Number(a.slice(1)) - Number(b.slice(1)))
const logs = new Map(nodes.map(n => [n, readFileSync(join(dir, n, 'node.log'), 'utf8').split('\n').filter(l => l.startsWith('{')).map(l => JSON.parse(l) as Line)]))
const started = new Map([...logs].map(([n, ls]) => [n, ls.find(l => l.msg === 'node started')]))
const t0 = Math.min(...[...started.values()].map(l => l === undefined ? Infinity : l.time - (l.startupMs as number)))
const s = (t: number | undefined): string => t === undefined ? '-' : ((t - t0) / 1000).toFixed(1)
const lastStart = Math.max(...[...started.values()].map(l => l?.time ?? 0))
console.log(`first spawn = 0 s; last "node started" at ${s(lastStart)} s\n`)
// With TASKMESH_LOG_LEVEL=debug the nodes also log their connections and gossip mesh grafts.
const debugLogs = [...logs.values()].some(ls => ls.some(l => l.msg === 'peer connected'))
console.log(debugLogs ? 'debug logs: the "first connection" and "first graft" columns are filled\n' : '')
console.log('| node | started | start-up CPU s | first connection | connected to all | first graft | synced | first joined | knew all | first leader | last leader change (named) | stalls | new incarnations | suspect/dead/alive flips |')
console.log('| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |')
const n = nodes.length
for (const [node, ls] of logs) {
  const st = started.get(node)
  const known = new Set<string>()
  let knewAll: number | undefined
  for (const l of ls) {
    if (l.msg === 'member joined') { known.add(l.id as string); if (known.size >= n - 1 && knewAll === undefined) knewAll = l.time }
  }
  const leaders = ls.filter(l => l.msg === 'leader changed' || l.msg === 'no leader').filter(l => l.time < lastStart + 60_000)
  const firstLeader = leaders.find(l => l.msg === 'leader changed')
  const last = leaders.at(-1)
  const flips = ls.filter(l => l.msg === 'member suspect' || l.msg === 'member dead' || l.msg === 'member alive').filter(l => l.time < lastStart + 60_000).length
  const conn = ls.filter(l => l.msg === 'peer connected')
  console.log(`| ${node} | ${s(st?.time)} | ${((st?.startupCpuMs as number ?? 0) / 1000).toFixed(2)} | ${s(conn[0]?.time)} | ${s(conn.find(l => (l.peers as number) >= n - 1)?.time)} | ${s(ls.find(l => l.msg === 'gossip mesh: grafted')?.time)} | ${s(ls.find(l => l.msg === 'membership synced')?.time)} | ${s(ls.find(l => l.msg === 'member joined')?.time)} | ${s(knewAll)} | ${s(firstLeader?.time)} (${firstLeader?.leader as string ?? '-'}) | ${s(last?.time)} (${last?.leader as string ?? 'none'}) | ${ls.filter(l => l.msg === 'this process was stalled' && l.time < lastStart + 60_000).length} | ${ls.filter(l => l.msg === 'began a new incarnation' && l.time < lastStart + 60_000).length} | ${flips} |`)
}
console.log('\nper second: distinct leaders named (node count per leader) | flips | new incarnations | stalls')
const until = Number(values['until-s'])
for (let sec = 0; sec <= until; sec++) {
  const at = t0 + (sec + 1) * 1000
  const named = new Map<string, number>()
  for (const [, ls] of logs) {
    const last = ls.filter(l => (l.msg === 'leader changed' || l.msg === 'no leader') && l.time < at).at(-1)
    const who = started.get([...logs].find(([, x]) => x === ls)![0])!.time < at ? (last?.leader as string | null | undefined ?? 'none') : 'not started'
    named.set(who, (named.get(who) ?? 0) + 1)
  }
  const inSec = (msg: string[]): number => [...logs.values()].reduce((a, ls) => a + ls.filter(l => msg.includes(l.msg) && l.time >= at - 1000 && l.time < at).length, 0)
  console.log(`${sec}-${sec + 1} s: ${[...named].map(([k, v]) => `${k}:${v}`).join(' ')} | ${inSec(['member suspect', 'member dead', 'member alive'])} | ${inSec(['began a new incarnation'])} | ${inSec(['this process was stalled'])}`)
}

if (debugLogs) {
  // How long the layers above a connection took, over all nodes: identify after the connection, the gossip graft after it.
  const lags = { identified: [] as number[], grafted: [] as number[] }
  let neverIdentified = 0
  for (const [, ls] of logs) {
    const connected = new Map<string, number>()
    const identified = new Set<string>()
    for (const l of ls) {
      const peer = l.peer as string | undefined
      if (peer === undefined) continue
      if (l.msg === 'peer connected' && !connected.has(peer)) connected.set(peer, l.time)
      if (l.msg === 'peer identified' && connected.has(peer) && !identified.has(peer)) { identified.add(peer); lags.identified.push(l.time - connected.get(peer)!) }
      if (l.msg === 'gossip mesh: grafted' && connected.has(peer)) lags.grafted.push(l.time - connected.get(peer)!)
    }
    neverIdentified += [...connected.keys()].filter(p => !identified.has(p)).length
  }
  const q = (xs: number[]): string => {
    if (xs.length === 0) return 'none'
    const s = [...xs].sort((a, b) => a - b)
    return `n ${s.length}, median ${s[s.length >> 1]} ms, 90th ${s[Math.floor(s.length * 0.9)]} ms, max ${s.at(-1)} ms`
  }
  if (lags.identified.length > 0) console.log(`\nconnection to identify: ${q(lags.identified)}; connections never identified: ${neverIdentified}`)
  console.log(`connection to gossip graft (grafted peers only): ${q(lags.grafted)}`)
}
