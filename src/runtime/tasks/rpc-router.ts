/**
 * Routes each request from another member to the part of the task runtime
 * that serves it. Nothing is decided here.
 */
import { refusal } from '../../protocol/rpc-errors.ts'
import type { RpcReply, RpcRequest } from '../../protocol/rpc.ts'
import type { TaskContext } from './context.ts'
import type { TaskRecord } from '../../core/tasks.ts'
import { pageHere } from './listing.ts'

export async function routeRequest (ctx: TaskContext, msg: RpcRequest, from: string): Promise<RpcReply> {
  const { roles, store } = ctx
  switch (msg.kind) {
    case 'submit':
      return await roles.dispatcher.takeHandOver(msg)
    case 'replicate':
      // A node about to leave keeps no new copy: the origin stores it on another member.
      if (ctx.draining) return refusal('DRAINING', 'this node is draining before it stops')
      // A key whose first task this node is still storing answers only once that task is accepted (or refused).
      const conflict = roles.intake.keyConflict(msg.tasks)
      if (conflict !== null) return refusal('KEY_UNSETTLED', conflict)
      return { kind: 'stored', canonical: [...store.insert(msg.tasks)] }
    case 'assign':
      return roles.worker.accept(msg, from)
    case 'report':
      return await roles.dispatcher.onReports(msg.reports, from)
    case 'updates':
      roles.holders.apply(msg.updates, from)
      return { kind: 'ok' }
    case 'get': {
      const task = (await roles.reads.getLocal(msg.id, msg.waitMs)) ?? null
      if (task === null && store.retention.wasForgotten(msg.id)) return refusal('TASK_EXPIRED', `task "${msg.id}" ended and its record was forgotten here (retention or a purge)`)
      return { kind: 'task', task }
    }
    case 'wait':
      return await roles.reads.serveWait(msg.ids, msg.waitMs)
    case 'cancel':
      return await roles.dispatcher.cancel(msg.id)
    case 'abort':
      roles.worker.abort(msg.ids, msg.reason ?? 'cancel')
      return { kind: 'ok' }
    case 'inventory':
      return roles.worker.inventory(msg.term, from)
    case 'retry':
      return await roles.dispatcher.retry(msg.task as TaskRecord, msg.maxAttempts)
    case 'limits':
      roles.limits.take(msg.limits)
      return { kind: 'ok' }
    case 'types':
      return await roles.dispatcher.typeRows()
    case 'schedules':
      return roles.schedules.take(msg)
    case 'keys':
      return { kind: 'keys', held: msg.keys.filter(k => store.byIdempotencyKey(k) !== undefined) }
    case 'list':
      return pageHere(ctx, msg)
    case 'deliveries':
      return roles.callbacks.receive(msg)
    case 'purge':
      return { kind: 'purged', count: await roles.retention.purgeHere(msg.status === undefined ? { before: msg.before } : { status: msg.status, before: msg.before }) }
  }
}
