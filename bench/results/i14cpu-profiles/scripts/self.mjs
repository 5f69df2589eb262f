import { readFileSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
const [dir, skipArg] = process.argv.slice(2)
const skip = Number(skipArg) * 1000
const self = new Map(); let busy = 0
for (const f of readdirSync(dir).filter(f => /\.\d+\.0\.\d+\.cpuprofile$/.test(f))) {
  const p = JSON.parse(readFileSync(join(dir, f), 'utf8'))
  const nodes = new Map(p.nodes.map(n => [n.id, n])); let t = 0
  for (let i = 0; i < p.samples.length; i++) { const us = p.timeDeltas[i] ?? 0; t += us; if (t < skip) continue
    const cf = nodes.get(p.samples[i]).callFrame; if (cf.functionName === '(idle)') continue; busy += us
    const k = `${cf.functionName || '(anon)'} ${cf.url.replace(/.*\/(dist|node_modules)\//, '')}:${cf.lineNumber + 1}`; self.set(k, (self.get(k) ?? 0) + us) }
}
console.log('busy', (busy/1000).toFixed(0))
for (const [k, us] of [...self].sort((a, b) => b[1] - a[1]).filter(([k]) => new RegExp(process.env.F ?? '.').test(k)).slice(0, Number(process.env.TOP ?? 40))) console.log((us / 1000).toFixed(0).padStart(6), k)
