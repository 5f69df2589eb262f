// usage: node prof.ts <file.cpuprofile> <skipMs> <untilMs> [top]
// Self and inclusive time of the samples between skipMs and untilMs after the profile's start.
import { readFileSync } from 'node:fs'
interface N { id: number, callFrame: { functionName: string, url: string, lineNumber: number }, children?: number[] }
const [file, skip, until, topArg] = process.argv.slice(2)
const p = JSON.parse(readFileSync(file!, 'utf8')) as { nodes: N[], samples: number[], timeDeltas: number[] }
const top = Number(topArg ?? 60)
const parent = new Map<number, number>()
for (const n of p.nodes) for (const c of n.children ?? []) parent.set(c, n.id)
const byId = new Map(p.nodes.map(n => [n.id, n]))
const name = (n: N): string => `${n.callFrame.functionName || '(anon)'} ${n.callFrame.url.replace(/^.*\/(dist|node_modules)\//, '$1/')}:${n.callFrame.lineNumber + 1}`
const self = new Map<string, number>(); const incl = new Map<string, number>()
let t = 0; let total = 0; let idle = 0
for (let i = 0; i < p.samples.length; i++) {
  t += p.timeDeltas[i] ?? 0
  if (t < Number(skip) * 1000 || t > Number(until) * 1000) continue
  const us = p.timeDeltas[i] ?? 0
  total += us
  const leaf = byId.get(p.samples[i]!)!
  if (leaf.callFrame.functionName === '(idle)') { idle += us; continue }
  self.set(name(leaf), (self.get(name(leaf)) ?? 0) + us)
  const seen = new Set<string>()
  for (let id: number | undefined = leaf.id; id !== undefined; id = parent.get(id)) {
    const k = name(byId.get(id)!)
    if (seen.has(k)) continue
    seen.add(k); incl.set(k, (incl.get(k) ?? 0) + us)
  }
}
const busy = total - idle
console.log(`window ${(total / 1000).toFixed(0)} ms, busy ${(busy / 1000).toFixed(1)} ms (${(100 * busy / total).toFixed(2)} %)`)
for (const [title, m] of [['self', self], ['inclusive', incl]] as const) {
  console.log(`--- ${title}`)
  for (const [k, us] of [...m].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${(us / 1000).toFixed(1).padStart(8)} ms ${(100 * us / busy).toFixed(1).padStart(5)} %  ${k}`)
}
