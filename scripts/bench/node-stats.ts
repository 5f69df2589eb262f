/**
 * What the task-path scenarios read from each node besides time: its peak
 * RSS (VmHWM in /proc/<pid>/status, the kernel's high-water mark of the
 * process's resident memory) and the node-to-node RPC frames it sent and
 * their bytes, by message kind (from its own /metrics: requests and replies
 * alike). Frames count round trips; bytes count what they carried (a task
 * update sent twice costs bytes even when it shares a frame). And its write
 * system calls (`syscw` in /proc/<pid>/io: socket writes, the store's log
 * and database pages, logs): a count that load does not blur, unlike CPU
 * time, so it shows what a change removed on a busy machine.
 */
import { appendFileSync, readFileSync } from 'node:fs'
import { LAN_TOKEN, statusBytes } from '../lib/lan-nodes.ts'
import type { LanNode } from '../lib/lan-nodes.ts'

/** Peak resident memory of a process so far, in bytes (0 when it is gone). */
export function peakRssBytes (pid: number): number {
  return statusBytes(pid, 'VmHWM')
}

/** Write system calls a process (all its threads) has made so far (0 when it is gone). */
export function writeCalls (pid: number): number {
  try {
    return Number(/^syscw: (\d+)$/m.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))?.[1] ?? 0)
  } catch {
    return 0
  }
}

/** RPC frames (key: kind) and their bytes (key: `bytes:kind`) this node has sent since it started. */
export async function framesSent (node: LanNode): Promise<Map<string, number>> {
  const res = await fetch(`${node.url}/metrics`, { headers: { authorization: `Bearer ${LAN_TOKEN}` }, signal: AbortSignal.timeout(5_000) })
  const text = await res.text()
  const out = new Map<string, number>()
  for (const line of text.split('\n')) {
    const m = /^taskmesh_rpc_(messages|bytes)_total\{(.*)\} (\S+)$/.exec(line)
    if (m === null) continue
    const labels = Object.fromEntries([...m[2]!.matchAll(/(\w+)="([^"]*)"/g)].map(x => [x[1]!, x[2]!]))
    if (labels.direction !== 'sent') continue
    const key = m[1] === 'bytes' ? `bytes:${labels.kind!}` : labels.kind!
    out.set(key, (out.get(key) ?? 0) + Number(m[3]))
  }
  return out
}

/** Frames sent by all these nodes, by kind (summed). */
export async function clusterFramesSent (nodes: readonly LanNode[]): Promise<Map<string, number>> {
  const total = new Map<string, number>()
  for (const per of await Promise.all(nodes.map(framesSent))) for (const [k, v] of per) total.set(k, (total.get(k) ?? 0) + v)
  return total
}

/** The frames and bytes sent between two readings, per task: totals, and frames by kind (rounded to 0.01), bytes of task updates. */
export function framesPerTask (before: Map<string, number>, after: Map<string, number>, tasks: number): { total: number, byKind: Record<string, number>, bytes: number, updateBytes: number } {
  const byKind: Record<string, number> = {}
  let total = 0
  let bytes = 0
  let updateBytes = 0
  for (const [k, v] of after) {
    const d = v - (before.get(k) ?? 0)
    if (d <= 0) continue
    if (k.startsWith('bytes:')) {
      bytes += d
      if (k === 'bytes:updates') updateBytes += d
      continue
    }
    total += d
    byKind[k] = Math.round(d / tasks * 100) / 100
  }
  return { total: total / tasks, byKind, bytes: Math.round(bytes / tasks), updateBytes: Math.round(updateBytes / tasks) }
}

/**
 * TASKMESH_BENCH_MEMTRACE=<file>: while a run lasts, every `everyMs` one JSON
 * line per node to <file>: its VmRSS, VmHWM, RssAnon, RssFile and threads
 * (/proc/<pid>/status) and its V8 heap by space, external and array buffers
 * (its /metrics), in MB; to see what the peak is made of and when it comes.
 * Returns the function that stops it.
 */
export function traceMemory (nodes: readonly LanNode[], label: string, everyMs = 250): () => void {
  const file = process.env.TASKMESH_BENCH_MEMTRACE
  if (file === undefined || file === '') return () => {}
  const t0 = Date.now()
  const mb = (x: number): number => Math.round(x / 2 ** 20 * 10) / 10
  const status = (pid: number): Record<string, number> => {
    try {
      return Object.fromEntries(readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').filter(l => /^(VmRSS|VmHWM|RssAnon|RssFile|Threads):/.test(l))
        .map(l => { const [k, v] = l.split(/:\s+/); return [k!, k === 'Threads' ? Number(v) : mb(Number(v!.split(' ')[0]) * 1024)] }))
    } catch { return {} }
  }
  const sample = async (): Promise<void> => {
    await Promise.all(nodes.map(async n => {
      const pid = n.proc?.pid
      if (pid === undefined) return
      const heap: Record<string, number> = {}
      try {
        const res = await fetch(`${n.url}/metrics`, { headers: { authorization: `Bearer ${LAN_TOKEN}` }, signal: AbortSignal.timeout(2_000) })
        for (const line of (await res.text()).split('\n')) {
          const m = /^nodejs_(heap_size_used_bytes|heap_size_total_bytes|external_memory_bytes|heap_space_size_total_bytes\{space="(\w+)"\}) (\S+)$/.exec(line)
          if (m !== null && Number(m[3]) > 0) heap[m[2] === undefined ? m[1]!.replace('_bytes', '') : `space_${m[2]}`] = mb(Number(m[3]))
        }
      } catch {}
      appendFileSync(file, JSON.stringify({ label, node: n.name, ms: Date.now() - t0, ...status(pid), ...heap }) + '\n')
    }))
  }
  let stopped = false
  const loop = async (): Promise<void> => {
    while (!stopped) {
      await sample()
      await new Promise(resolve => setTimeout(resolve, everyMs))
    }
  }
  void loop()
  return () => { stopped = true }
}
