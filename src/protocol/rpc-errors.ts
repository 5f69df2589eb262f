/**
 * RPC error replies and the errors they become: the one place that maps a
 * refusal code to what the requester's code catches.
 */
import { QueueFullError } from '../errors.ts'
import { MAX_ERROR_MESSAGE_LENGTH } from './constants.ts'
import type { RpcErrorCode, RpcReply } from './rpc.ts'

/** A request refused by its receiver, with the code it gave. */
export class RpcRefusedError extends Error {
  override name = 'RpcRefusedError'
  readonly code: RpcErrorCode
  constructor (code: RpcErrorCode, message: string) {
    super(`${code}: ${message}`)
    this.code = code
  }
}

/** An error reply. */
export function refusal (code: RpcErrorCode, message: string): Extract<RpcReply, { kind: 'error' }> {
  return { kind: 'error', code, message: message.slice(0, MAX_ERROR_MESSAGE_LENGTH) }
}

/** The reply a handler's failure becomes: its own code when it refused on purpose, INTERNAL otherwise. */
export function replyOfError (err: unknown): Extract<RpcReply, { kind: 'error' }> {
  if (err instanceof RpcRefusedError) return refusal(err.code, err.message)
  return refusal('INTERNAL', err instanceof Error ? err.message : String(err))
}

/**
 * The error an error reply means to the requester. QUEUE_FULL is the
 * cluster's queue bound, which the origin passes on to its client as 429;
 * every other code is a refusal the caller may retry elsewhere or later.
 * (TASK_EXPIRED answers only a `get`: reads.ts reads it off the reply and
 * answers 404 TASK_EXPIRED when no holder has the record.)
 */
export function errorOfReply (reply: Extract<RpcReply, { kind: 'error' }>, maxQueuedTasks: number): Error {
  if (reply.code === 'QUEUE_FULL') return new QueueFullError(maxQueuedTasks)
  return new RpcRefusedError(reply.code, reply.message)
}

/** True for a refusal of a new leader's term (another leader holds it). */
export function refusesTerm (reply: RpcReply): boolean {
  return reply.kind === 'error' && (reply.code === 'TERM_TAKEN' || reply.code === 'STALE_TERM')
}
