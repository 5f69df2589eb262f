/**
 * The HTTP calls and the small cluster the real-node task tests share: a
 * POST with a JSON body, a read of one task (optionally long-polled), and
 * three nodes of two slots each with the given handler modules.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { agreedLeader, waitFor } from './nodes.ts'
import type { NodeSet, TestNode } from './nodes.ts'

/** POSTs `body` (as JSON, when given) to `path` on `node`; the status and the parsed answer. */
export async function post (node: TestNode, path: string, body?: unknown): Promise<{ status: number, json: any }> {
  const res = await fetch(`${node.url}${path}`, {
    method: 'POST',
    ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
    signal: AbortSignal.timeout(15_000)
  })
  return { status: res.status, json: await res.json() }
}

/** A task as `node` answers for it; with `waitMs`, once it ended or that long passed. */
export async function readTask<T> (node: TestNode, id: string, waitMs = 0): Promise<T> {
  const res = await fetch(`${node.url}/v1/tasks/${id}${waitMs > 0 ? `?wait=${waitMs}` : ''}`, { signal: AbortSignal.timeout(waitMs + 5_000) })
  return await res.json() as T
}

/** Three nodes (2 slots each, retries after 50 ms) with these handler modules, once they agree on a leader. */
export async function threeNodes (set: NodeSet, prefix: string, handlers: Record<string, string>): Promise<{ nodes: TestNode[], leader: TestNode, opts: { args: string[] } }> {
  const config = join(await set.tempDir(), 'cluster.config.json')
  writeFileSync(config, JSON.stringify({ handlers, retryBaseMs: 50 }))
  const opts = { args: ['--config', config, '--capacity', '2'] }
  const nodes = [
    await set.start({ name: `${prefix}1`, ...opts }),
    await set.start({ name: `${prefix}2`, ...opts }),
    await set.start({ name: `${prefix}3`, ...opts })
  ]
  const first = await waitFor(async () => await agreedLeader(nodes, 3), 5_000, 'three nodes to agree')
  return { nodes, leader: nodes.find(n => n.id === first.id)!, opts }
}
