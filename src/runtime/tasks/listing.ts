/**
 * The cluster-wide listing (GET /v1/tasks?scope=cluster): every reachable
 * member answers one page of the records it holds, and the pages merge
 * (src/core/listing.ts) into one page of the cluster's tasks, each task as
 * its most advanced copy, with a stable cursor.
 */
import { mergePages } from '../../core/listing.ts'
import type { PageKey } from '../../core/listing.ts'
import { mergeUpdate } from '../../core/tasks.ts'
import type { TaskRecord, TaskStatus } from '../../core/tasks.ts'
import type { RpcReply } from '../../protocol/rpc.ts'
import { firstChunkBySize } from '../chunks.ts'
import { TASK_PATH } from './context.ts'
import type { TaskContext } from './context.ts'

export interface ListFilter { status?: TaskStatus, type?: string, before?: PageKey, limit: number }

/** One page of the records held here (RPC `list`), as many as fit a quarter of a frame. */
export function pageHere (ctx: TaskContext, filter: ListFilter): Extract<RpcReply, { kind: 'page' }> {
  const rows = ctx.store.page({ ...filter, limit: filter.limit + 1 })
  const fits = firstChunkBySize(rows.slice(0, filter.limit), ctx.batchBytes)
  return { kind: 'page', tasks: fits, more: rows.length > fits.length }
}

/**
 * One page of the cluster's tasks; `partial` when a reachable member did not
 * answer (its tasks held nowhere else may be missing from this page).
 */
export async function listCluster (ctx: TaskContext, filter: ListFilter): Promise<{ tasks: TaskRecord[], next: PageKey | null, partial: boolean }> {
  const others = ctx.cluster.reachableMembers().filter(m => m.id !== ctx.self)
  const answers = await Promise.all(others.map(async m => {
    try {
      const r = await ctx.transport.request(m.id, { kind: 'list', ...filter }, TASK_PATH.rpcTimeoutMs)
      return r.kind === 'page' ? { tasks: r.tasks as TaskRecord[], more: r.more } : null
    } catch {
      return null
    }
  }))
  const pages = [pageHere(ctx, filter), ...answers.filter(a => a !== null)] as Array<{ tasks: TaskRecord[], more: boolean }>
  const merged = mergePages(pages, filter.limit, (a, b) => mergeUpdate(a, b) !== null)
  return { ...merged, partial: answers.includes(null) }
}
