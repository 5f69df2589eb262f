/**
 * The client's options and its own error for a partial batch submit
 * (re-exported by index.ts).
 */
import { TaskmeshApiError } from './sse.ts'
import type { EventKind, Task } from './types.ts'

export interface TaskmeshClientOptions {
  /** HTTP URL of one node, or of several (tried in order). Default http://127.0.0.1:7420. */
  nodes?: string | string[]
  /** Bearer token (the nodes' `httpToken`), sent on every request. */
  token?: string
  /** Time limit of one request that does not wait, in ms. Default 30 s. */
  timeoutMs?: number
}

export interface WaitOptions {
  /** Give up after this long and return the record as it stands. Default 10 minutes. */
  timeoutMs?: number
}

export interface EventsOptions {
  /** Only these kinds (`hello` always comes first on every connection). Default: all. */
  kinds?: EventKind[]
  /** Only these tasks' task events (at most 100). */
  tasks?: string[]
  /** Ends the iteration. */
  signal?: AbortSignal
  /** Called when the stream from `node` broke; the iterator then connects to another member and goes on with its `hello`. */
  onDisconnect?: (node: string, error: Error) => void
  /** Pause after every known member has been tried once. Default 1 s. */
  retryDelayMs?: number
}

export interface WaitManyOptions extends WaitOptions {
  /** Sees each record once it ended. */
  onTask?: (task: Task) => void
  /**
   * Least time between the starts of two rounds of one group of ids, in ms
   * (default 50): a round answers as soon as one task ended, so while tasks end
   * often, the endings in between are collected by the next round together
   * instead of a request each. 0: ask again at once.
   */
  roundMs?: number
}

export interface SubmitManyOptions {
  /** Sees the ids accepted so far, after each batch. */
  onBatch?: (accepted: readonly string[]) => void
  /** Also wait for the tasks to end (see waitMany): resolves with their records instead of their ids. */
  wait?: true | WaitManyOptions
}

/** submitMany stopped at a batch the node refused: `accepted` holds the ids of the tasks accepted before it. */
export class PartialSubmitError extends TaskmeshApiError {
  override name = 'PartialSubmitError'
  readonly accepted: string[]
  constructor (cause: TaskmeshApiError, accepted: string[]) {
    super(`${cause.message} (${accepted.length} tasks before that batch were accepted)`, cause.status, cause.code)
    this.accepted = accepted
  }
}
