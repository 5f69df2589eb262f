/**
 * What one held finished record costs, measured on the store alone (no
 * node, no network): stores N finished `echo`-like records (small payload
 * and result) in a fresh TaskStore, then reports the heap they keep (after
 * a full GC, so garbage and V8's heap sizing are left out) and the bytes of
 * the data folder per record.
 *
 *   node --expose-gc scripts/bench/record-cost.ts [N=100000]
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import type { TaskSpec } from '../../src/core/tasks.ts'
import { TaskStore } from '../../src/store/task-store.ts'

const gc = (globalThis as { gc?: () => void }).gc
if (gc === undefined) throw new Error('run with node --expose-gc')
const n = Number(process.argv[2] ?? 100_000)
const dir = mkdtempSync(join(os.tmpdir(), 'taskmesh-record-cost-'))
try {
  const store = new TaskStore(dir)
  gc(); gc()
  const before = process.memoryUsage().heapUsed
  const peer = '12D3KooWK21K5ybcoPAiXRuaxK9gvXC5nfstVccF7BbAJnsHEh5y'
  for (let i = 0; i < n; i += 1_000) {
    const now = Date.now()
    const specs: TaskSpec[] = Array.from({ length: Math.min(1_000, n - i) }, (_, k) => ({ id: crypto.randomUUID(), type: 'echo', payload: { b: i, i: k }, priority: 0, timeoutMs: 300_000, maxAttempts: 3, idempotencyKey: null, createdAt: now, origin: peer, replicas: [peer], copies: 2 }))
    store.insert(specs)
    store.applyUpdates(specs.map(s => ({ id: s.id, status: 'running' as const, attempts: 1, worker: peer, progress: null, result: null, error: null, startedAt: now, finishedAt: null })))
    store.applyUpdates(specs.map(s => ({ id: s.id, status: 'succeeded' as const, attempts: 1, worker: peer, progress: null, result: s.payload, error: null, startedAt: now, finishedAt: now })))
  }
  gc(); gc()
  const heap = process.memoryUsage().heapUsed - before
  store.close()
  const disk = readdirSync(dir).reduce((t, f) => t + statSync(join(dir, f)).size, 0)
  console.log(`${n.toLocaleString('en')} finished records held: heap ${(heap / 1e6).toFixed(1)} MB (${Math.round(heap / n)} bytes per record), data folder ${(disk / 1e6).toFixed(1)} MB (${Math.round(disk / n)} bytes per record)`)
} finally {
  rmSync(dir, { recursive: true, force: true })
}
