/**
 * What the task-path scenarios read from each node besides time: its peak
 * RSS (VmHWM in /proc/<pid>/status, the kernel's high-water mark of the
 * process's resident memory) and the node-to-node RPC frames it sent, by
 * message kind (from its own /metrics: requests and replies alike).
 */
import { LAN_TOKEN, statusBytes } from '../lib/lan-nodes.ts'
import type { LanNode } from '../lib/lan-nodes.ts'

/** Peak resident memory of a process so far, in bytes (0 when it is gone). */
export function peakRssBytes (pid: number): number {
  return statusBytes(pid, 'VmHWM')
}

/** RPC frames this node has sent since it started, by message kind. */
export async function framesSent (node: LanNode): Promise<Map<string, number>> {
  const res = await fetch(`${node.url}/metrics`, { headers: { authorization: `Bearer ${LAN_TOKEN}` }, signal: AbortSignal.timeout(5_000) })
  const text = await res.text()
  const out = new Map<string, number>()
  for (const line of text.split('\n')) {
    const m = /^taskmesh_rpc_messages_total\{(.*)\} (\S+)$/.exec(line)
    if (m === null) continue
    const labels = Object.fromEntries([...m[1]!.matchAll(/(\w+)="([^"]*)"/g)].map(x => [x[1]!, x[2]!]))
    if (labels.direction !== 'sent') continue
    out.set(labels.kind!, (out.get(labels.kind!) ?? 0) + Number(m[2]))
  }
  return out
}

/** Frames sent by all these nodes, by kind (summed). */
export async function clusterFramesSent (nodes: readonly LanNode[]): Promise<Map<string, number>> {
  const total = new Map<string, number>()
  for (const per of await Promise.all(nodes.map(framesSent))) for (const [k, v] of per) total.set(k, (total.get(k) ?? 0) + v)
  return total
}

/** The frames sent between two readings, per task: the total, and by kind (rounded to 0.01). */
export function framesPerTask (before: Map<string, number>, after: Map<string, number>, tasks: number): { total: number, byKind: Record<string, number> } {
  const byKind: Record<string, number> = {}
  let total = 0
  for (const [k, v] of after) {
    const d = v - (before.get(k) ?? 0)
    if (d <= 0) continue
    total += d
    byKind[k] = Math.round(d / tasks * 100) / 100
  }
  return { total: total / tasks, byKind }
}
