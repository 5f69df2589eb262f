import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
const [dir, focus] = process.argv.slice(2)
for (const f of readdirSync(dir).filter(f => /\.\d+\.0\.\d+\.cpuprofile$/.test(f))) {
  const p = JSON.parse(readFileSync(join(dir, f), 'utf8'))
  const nodes = new Map(p.nodes.map(n => [n.id, n])); const parent = new Map()
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  const hit = new Map()
  const has = id => { if (hit.has(id)) return hit.get(id); const n = nodes.get(id); const r = new RegExp(focus).test(n.callFrame.functionName) || (parent.has(id) && has(parent.get(id))); hit.set(id, r); return r }
  let t = 0; const buckets = {}; const busyB = {}
  for (let i = 0; i < p.samples.length; i++) { t += p.timeDeltas[i]; const b = Math.floor(t / 500000) * 0.5
    if (nodes.get(p.samples[i]).callFrame.functionName !== '(idle)') busyB[b] = (busyB[b] ?? 0) + p.timeDeltas[i] / 1000
    if (has(p.samples[i])) buckets[b] = (buckets[b] ?? 0) + p.timeDeltas[i] / 1000 }
  console.log(f, Object.entries(busyB).map(([k, v]) => `${k}s:${v.toFixed(0)}/${(buckets[k] ?? 0).toFixed(0)}`).join(' '))
}
