/**
 * The two ways a benchmark client learns results, side by side in the
 * throughput scenario:
 * - per task: a long-poll per task (`GET /v1/tasks/:id?wait=`), `concurrency`
 *   at a time: one request per task at least;
 * - in bulk: `POST /v1/tasks/wait` with the ids still open, answered as soon
 *   as one of them ended with every one that has: one request per round,
 *   rounds starting at most every ROUND_MS (as the client library's waitMany).
 * Both return the ended records (in the order of `ids`) and the number of
 * HTTP requests they made.
 */
import { isTerminal } from '../../src/core/tasks.ts'
import type { TaskStatus } from '../../src/core/tasks.ts'
import { http } from '../lib/lan-nodes.ts'
import type { LanNode } from '../lib/lan-nodes.ts'

export interface Ended { id: string, status: string, attempts: number, error?: string | null }
export interface Waited { ended: Ended[], requests: number }

/** Longest wait of one request. */
const WAIT_MS = 30_000
/** Least time between the starts of two bulk rounds (the client library's default). */
const ROUND_MS = 50

export async function waitEach (node: LanNode, ids: readonly string[], concurrency = 64): Promise<Waited> {
  const ended: Ended[] = new Array(ids.length)
  let next = 0
  let requests = 0
  await Promise.all(Array.from({ length: concurrency }, async () => {
    while (next < ids.length) {
      const i = next++
      for (;;) {
        requests++
        const r = await http<Ended>(`${node.url}/v1/tasks/${ids[i]!}?wait=${WAIT_MS}`, {}, WAIT_MS + 10_000).catch(() => null)
        if (r !== null && isTerminal(r.body.status as TaskStatus)) { ended[i] = r.body; break }
      }
    }
  }))
  return { ended, requests }
}

export async function waitBulk (node: LanNode, ids: readonly string[]): Promise<Waited> {
  const found = new Map<string, Ended>()
  let open = [...ids]
  let requests = 0
  let roundAt = 0
  while (open.length > 0) {
    const pause = roundAt + ROUND_MS - Date.now()
    if (pause > 0) await new Promise(resolve => setTimeout(resolve, pause))
    roundAt = Date.now()
    requests++
    const r = await http<{ tasks: Ended[], pending: string[], missing: string[] }>(`${node.url}/v1/tasks/wait`, {
      method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ids: open, waitMs: WAIT_MS })
    }, WAIT_MS + 10_000).catch(() => null)
    if (r === null || r.status !== 200) continue
    if (r.body.missing.length > 0) throw new Error(`bulk wait: ${r.body.missing.length} tasks no live node knows`)
    for (const t of r.body.tasks) found.set(t.id, t)
    open = r.body.pending
  }
  return { ended: ids.map(id => found.get(id)!), requests }
}
