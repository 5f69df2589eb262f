/**
 * A user's retry of a failed or cancelled task, from any node: the record is
 * read from every reachable holder (the most advanced copy wins), and the
 * leader decides (src/core/tasks.ts retryOf), stores the new generation on
 * the task's holders, and queues it again.
 */
import { isRetryable } from '../../core/tasks.ts'
import type { TaskRecord } from '../../core/tasks.ts'
import { TaskNotRetryableError, InvalidRequestError, UnavailableError } from '../../errors.ts'
import { TASK_PATH } from './context.ts'
import type { TaskContext } from './context.ts'

export interface Retried { id: string, status: 'queued' | 'scheduled' | 'waiting', attempts: number, maxAttempts: number, retries: number, copies: number }

/** `rec`: the task's record as read from every reachable holder. */
export async function retryTask (ctx: TaskContext, rec: TaskRecord, maxAttempts: number | undefined): Promise<Retried> {
  const { cluster, transport, roles } = ctx
  const id = rec.id
  if (!isRetryable(rec.status)) throw new TaskNotRetryableError(id, rec.status)
  const leader = cluster.leader()
  if (leader === null) throw new UnavailableError('no leader to retry through; retry later')
  const reply = leader.id === ctx.self
    ? await roles.dispatcher.retry(rec, maxAttempts)
    : await transport.request(leader.id, { kind: 'retry', task: rec, ...(maxAttempts === undefined ? {} : { maxAttempts }) }, TASK_PATH.rpcTimeoutMs)
  if (reply.kind !== 'retry') throw new UnavailableError(`the leader could not retry the task: ${reply.kind === 'error' ? reply.message : reply.kind}; retry later`)
  if (reply.outcome === 'not-retryable') throw new TaskNotRetryableError(id, 'not ended', reply.message)
  if (reply.outcome === 'bad-max-attempts') throw new InvalidRequestError(reply.message)
  return { id, status: reply.status ?? 'queued', attempts: rec.attempts, maxAttempts: reply.maxAttempts, retries: (rec.retries ?? 0) + 1, copies: reply.copies }
}
