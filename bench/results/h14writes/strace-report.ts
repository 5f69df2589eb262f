// Reads strace -y output of node processes and prints, per file kind and per
// call, the number of calls per task (argument: the task count, then files).
import { readFileSync } from 'node:fs'
const [n, ...files] = process.argv.slice(2)
const tasks = Number(n)
const total = new Map<string, number>()
for (const f of files) {
  const counts = new Map<string, number>()
  const sizes = new Map<string, number[]>()
  for (const line of readFileSync(f, 'utf8').split('\n')) {
    const m = /^\d+\s+(\w+)\((\d+)<([^>]*)>(?:, (?:"[^"]*"(?:\.\.\.)?|\[[^\]]*\]), )?(\d+)?/.exec(line)
    if (m === null) continue
    const [, call, , path, size] = m
    let kind = path!
    if (kind.startsWith('socket:') || kind.startsWith('TCP') || kind.startsWith('UDP') || kind.includes('->')) kind = 'socket'
    else if (kind.startsWith('pipe:')) kind = 'pipe'
    else if (kind.startsWith('anon_inode:')) kind = kind
    else kind = kind.replace(/.*\//, '')
    const key = `${call} ${kind}`
    counts.set(key, (counts.get(key) ?? 0) + 1)
    if (size !== undefined) { const s = sizes.get(key) ?? []; s.push(Number(size)); sizes.set(key, s) }
  }
  console.log(`-- ${f}`)
  for (const [k, c] of [...counts].sort((a, b) => b[1] - a[1])) {
    const s = sizes.get(k) ?? []
    const hist = new Map<number, number>(); for (const x of s) hist.set(x, (hist.get(x) ?? 0) + 1)
    const top = [...hist].sort((a, b) => b[1] - a[1]).slice(0, 3).map(([x, c]) => `${x}B x${c}`).join(', ')
    console.log(`  ${(c / tasks).toFixed(2).padStart(6)} ${k}${top ? `  (${top})` : ''}`)
    total.set(k, (total.get(k) ?? 0) + c)
  }
}
console.log('-- all nodes')
let all = 0
for (const [k, c] of [...total].sort((a, b) => b[1] - a[1])) { console.log(`  ${(c / tasks).toFixed(2).padStart(6)} ${k}`); all += c }
console.log(`  ${(all / tasks).toFixed(2).padStart(6)} in all`)
