// inclusive time of the direct callees (depth D) under any frame matching FOCUS
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
const [dir, skipArg, focus, depthArg] = process.argv.slice(2)
const skip = Number(skipArg) * 1000; const D = Number(depthArg ?? 1)
const out = new Map(); let total = 0
const name = cf => `${cf.functionName || '(anon)'} ${cf.url.replace(/.*\/(dist|node_modules)\//, '')}:${cf.lineNumber + 1}`
for (const f of readdirSync(dir).filter(f => /\.\d+\.0\.\d+\.cpuprofile$/.test(f))) {
  const p = JSON.parse(readFileSync(join(dir, f), 'utf8'))
  const nodes = new Map(p.nodes.map(n => [n.id, n])); const parent = new Map()
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  let t = 0
  for (let i = 0; i < p.samples.length; i++) { const us = p.timeDeltas[i] ?? 0; t += us; if (t < skip) continue
    const stack = []; let id = p.samples[i]; while (id !== undefined) { stack.push(name(nodes.get(id).callFrame)); id = parent.get(id) }
    stack.reverse()
    const k = stack.findIndex(s => new RegExp(focus).test(s)); if (k < 0) continue
    total += us
    const key = stack.slice(k + 1, k + 1 + D).join(' > ') || '(self)'
    out.set(key, (out.get(key) ?? 0) + us) }
}
console.log('total', (total/1000).toFixed(0))
for (const [k, us] of [...out].sort((a, b) => b[1] - a[1]).slice(0, Number(process.env.TOP ?? 25))) console.log((us / 1000).toFixed(0).padStart(6), k)
