/**
 * Reads a TASKMESH_TRACE file (src/trace.ts) of sequential tasks and prints,
 * for each event on each node, its median (and p90) time after the
 * request reached the origin's HTTP route, in the order they happen.
 * Nodes are named by role: origin (the node whose route took the request),
 * then n1, n2 in order of process id; `client` is the process that sent the
 * requests (trace.sh logs its client.send and client.recv).
 *   node scripts/bench/trace-report.ts <trace file> [label]
 */
import { readFileSync } from 'node:fs'

const [file, label = ''] = process.argv.slice(2)
const lines = readFileSync(file!, 'utf8').split('\n').filter(l => l !== '').map(l => {
  const [t, pid, ev, id] = l.split(' ')
  return { t: Number(t), pid: pid!, ev: ev!, id: id! }
}).sort((a, b) => a.t - b.t)
// Each task: its events (those naming it, and unnamed ones) from its origin's http.recv until that origin's http.sent.
const tasks: Array<Map<string, number>> = []
const pids = [...new Set(lines.map(l => l.pid))].sort()
const clientPid = lines.find(l => l.ev === 'client.send')?.pid ?? ''
for (let i = 0; i < lines.length; i++) {
  if (lines[i]!.ev !== 'http.recv') continue
  const origin = lines[i]!.pid
  const recv = lines[i]!.t
  let end = i + 1
  while (end < lines.length && !(lines[end]!.ev === 'http.sent' && lines[end]!.pid === origin)) end++
  if (end === lines.length) break
  const id = lines[end]!.id
  // The client's send and the route's first hook come before http.recv; the response hook and the client's receipt after http.sent.
  const around: typeof lines = []
  for (let k = i - 1; k >= 0 && i - k < 40; k--) {
    const l = lines[k]!
    if (l.ev === 'client.recv' || (l.ev === 'http.response' && l.pid === origin)) break
    if (l.ev === 'client.send' || (l.ev === 'http.request' && l.pid === origin)) around.push(l)
  }
  for (let k = end + 1; k < lines.length && k - end < 40; k++) {
    const l = lines[k]!
    if (l.ev === 'client.send' || l.ev === 'http.recv') break
    if (l.ev === 'client.recv' || (l.ev === 'http.response' && l.pid === origin)) around.push(l)
  }
  const name = (pid: string): string => pid === origin ? 'origin' : pid === clientPid ? 'client' : `n${pids.filter(p => p !== origin && p !== clientPid).indexOf(pid) + 1}`
  const current = new Map<string, number>()
  for (const l of [...around, ...lines.slice(i, end + 1)]) {
    if (l.id !== '-' && l.id !== id) continue
    if (l.ev === 'http.recv' && l !== lines[i]) continue
    let key = `${l.ev}@${name(l.pid)}`
    // Repeated events (two updates frames...) are numbered.
    for (let k = 2; current.has(key); k++) key = `${l.ev}@${name(l.pid)}#${k}`
    current.set(key, l.t - recv)
  }
  tasks.push(current)
  i = end
}
const byKey = new Map<string, number[]>()
for (const t of tasks.slice(Math.floor(tasks.length / 10))) for (const [k, v] of t) { const a = byKey.get(k) ?? []; a.push(v); byKey.set(k, a) }
const pct = (a: number[], p: number): number => { const s = [...a].sort((x, y) => x - y); return s[Math.min(s.length - 1, Math.floor(s.length * p / 100))]! }
const rows = [...byKey].filter(([, v]) => v.length >= tasks.length / 4).map(([k, v]) => ({ k, p50: pct(v, 50), p90: pct(v, 90), n: v.length })).sort((a, b) => a.p50 - b.p50)
console.log(`-- ${label}: ${tasks.length} tasks (first tenth left out); ms after http.recv on the origin: p50 p90 [tasks with the event]`)
for (const r of rows) console.log(`${r.p50.toFixed(3).padStart(8)} ${r.p90.toFixed(3).padStart(8)}  ${r.k} [${r.n}]`)
