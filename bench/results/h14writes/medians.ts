// Medians of the chosen figures over the runs of each side of a pairs folder
// (bench/results/h14writes/pairs.sh): `node medians.ts <pairs dir>`.
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
const dir = process.argv[2]!
const WANTED = [/^p50 \(/, /^p99 \(/, /^write system calls per task/, /^tasks\/s/, /^CPU-seconds per 1,000/, /^peak RSS of the largest node/, /^RPC frames sent per task, all nodes \((built-in echo|user handler)\)$/]
const sides = new Map<string, Map<string, number[]>>()
for (const run of readdirSync(dir).filter(d => /^(base|mine)-\d+$/.test(d)).sort()) {
  const side = run.split('-')[0]!
  const file = readdirSync(join(dir, run)).find(f => f.endsWith('.json'))
  if (file === undefined) continue
  const j = JSON.parse(readFileSync(join(dir, run, file), 'utf8')) as { scenarios: Array<{ name: string, figures: Array<{ name: string, value: number, unit: string }> }> }
  const figs = sides.get(side) ?? new Map<string, number[]>()
  sides.set(side, figs)
  for (const s of j.scenarios) for (const f of s.figures) {
    if (!WANTED.some(w => w.test(f.name))) continue
    const key = `${s.name}: ${f.name} (${f.unit})`
    figs.set(key, [...(figs.get(key) ?? []), f.value])
  }
}
const median = (xs: number[]): number => { const s = [...xs].sort((a, b) => a - b); return s.length % 2 ? s[s.length >> 1]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2 }
const base = sides.get('base') ?? new Map(); const mine = sides.get('mine') ?? new Map()
console.log('| figure | base median (runs) | change median (runs) | ratio |\n| --- | --- | --- | --- |')
for (const key of base.keys()) {
  const b = base.get(key)!; const m = mine.get(key) ?? []
  const bm = median(b); const mm = m.length > 0 ? median(m) : NaN
  console.log(`| ${key} | ${+bm.toFixed(2)} (${b.join(', ')}) | ${+mm.toFixed(2)} (${m.join(', ')}) | ${(mm / bm).toFixed(2)}x |`)
}
