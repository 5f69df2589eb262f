import { NodeSet, agreedLeader, waitFor, getJson } from '../test/support/nodes.ts'
const set = new NodeSet()
const nodes = [await set.start({ name: 'b1', args: ['--capacity', '4'], env: process.env.PROF ? { NODE_OPTIONS: '--cpu-prof --cpu-prof-dir=/tmp/prof' } : {} }), await set.start({ name: 'b2', args: ['--capacity', '4'], env: process.env.PROF ? { NODE_OPTIONS: '--cpu-prof --cpu-prof-dir=/tmp/prof' } : {} }), await set.start({ name: 'b3', args: ['--capacity', '4'], env: process.env.PROF ? { NODE_OPTIONS: '--cpu-prof --cpu-prof-dir=/tmp/prof' } : {} })]
await waitFor(async () => await agreedLeader(nodes, 3), 5000, 'agree')
const t0 = Date.now()
const ids: string[] = []
for (let c = 0; c < 10; c++) {
  const res = await fetch(`${nodes[c % 3]!.url}/v1/tasks/batch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ tasks: Array.from({ length: 1000 }, (_, i) => ({ type: 'echo', payload: c * 1000 + i })) }) })
  const body = await res.json() as { ids: string[] }
  ids.push(...body.ids)
}
const tSubmit = Date.now() - t0
let done = 0
let next = 0
await Promise.all(Array.from({ length: 32 }, async () => {
  while (next < ids.length) {
    const i = next++
    const t = await (await fetch(`${nodes[Math.floor(i / 1000) % 3]!.url}/v1/tasks/${ids[i]}?wait=60000`, { signal: AbortSignal.timeout(70_000) })).json() as { status: string }
    if (t.status === 'succeeded') done++
  }
}))
const total = Date.now() - t0
console.log(`submitted 10000 in ${tSubmit} ms; all known ${done}/10000 after ${total} ms: ${Math.round(10000 / (total / 1000))} tasks/s`)
for (const n of nodes) { const w = n.output().split('\n').filter(l => l.includes('"level":40') || l.includes('"level":50')); console.log(n.name, w.length, w.slice(0, 3).join('\n')) }
for (const n of nodes) n.signal('SIGTERM')
await Promise.all(nodes.map(async n => await n.exited))
await set.stopAll()
