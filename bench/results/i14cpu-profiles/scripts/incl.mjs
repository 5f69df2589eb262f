// usage: node incl.mjs dir skipMs [focusRegex]
import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
const [dir, skipArg, focus] = process.argv.slice(2)
const skip = Number(skipArg ?? 3000) * 1000
const files = readdirSync(dir).filter(f => /\.\d+\.0\.\d+\.cpuprofile$/.test(f))
const incl = new Map(); const self = new Map(); let busy = 0; let excl = 0
const callers = new Map()
const name = cf => `${cf.functionName || '(anon)'} ${cf.url.replace(/.*\/(dist|node_modules)\//, '')}:${cf.lineNumber + 1}`
for (const f of files) {
  const p = JSON.parse(readFileSync(join(dir, f), 'utf8'))
  const nodes = new Map(p.nodes.map(n => [n.id, n])); const parent = new Map()
  for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
  let t = 0
  for (let i = 0; i < p.samples.length; i++) {
    const us = p.timeDeltas[i] ?? 0; t += us
    if (t < skip) continue
    let id = p.samples[i]; const n0 = nodes.get(id)
    if (n0.callFrame.functionName === '(idle)') continue
    busy += us
    const seen = new Set(); const stack = []
    while (id !== undefined) { const n = nodes.get(id); stack.push(name(n.callFrame)); id = parent.get(id) }
    if (process.env.EXCL && stack.some(x => new RegExp(process.env.EXCL).test(x))) { excl += us; continue }
    self.set(stack[0], (self.get(stack[0]) ?? 0) + us)
    for (let k = 0; k < stack.length; k++) {
      const s = stack[k]
      if (seen.has(s)) continue; seen.add(s)
      incl.set(s, (incl.get(s) ?? 0) + us)
      if (focus && new RegExp(focus).test(s)) {
        const chain = stack.slice(k, k + Number(process.env.DEPTH ?? 8)).reverse().join(' > ')
        callers.set(chain, (callers.get(chain) ?? 0) + us)
      }
    }
  }
}
console.log('busy ms', (busy / 1000).toFixed(0), 'excluded', (excl/1000).toFixed(0))
const top = [...incl].sort((a, b) => b[1] - a[1]).slice(0, Number(process.env.TOP ?? 70))
for (const [k, us] of top) console.log((us / 1000).toFixed(0).padStart(6), (100 * us / busy).toFixed(1).padStart(5) + '%', k)
if (focus) { console.log('--- chains into', focus); for (const [k, us] of [...callers].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log((us / 1000).toFixed(0).padStart(6), k) }
