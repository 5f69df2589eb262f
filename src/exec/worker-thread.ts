/**
 * Runs inside a pool thread: one lane (see thread-lanes.ts). It loads each
 * handler once (a built-in, or a user module named in the config) and runs
 * the attempts the node sends it one after another, in the order sent (the
 * next one begins as soon as the last has ended, so the node may send one
 * ahead), relaying progress and aborts over the lane's MessagePort, until
 * the node closes the lane. A hang or crash here never blocks the node's
 * event loop.
 */
import type { MessagePort } from 'node:worker_threads'
import { pathToFileURL } from 'node:url'
import { builtins } from './builtins.ts'
import type { Handler } from './handler.ts'

export interface ThreadAttempt {
  /** Built-in name, or an absolute path of a user module. */
  handler: string
  payload: unknown
  taskId: string
  attempt: number
  parents?: Record<string, unknown>
}

/**
 * Node -> lane: run an attempt; abort one (running, or waiting: then it is
 * skipped); recall one that waits (skipped; a running one goes on); or end the lane.
 */
export type LaneRequest = { run: number, attempt: ThreadAttempt, ahead: boolean } | { abort: number, reason: string } | { recall: number } | { close: true }
/**
 * Lane -> node: ready for attempts; `began`, an attempt sent ahead (behind
 * another) has begun (one sent to an idle lane begins unannounced), or an
 * attempt's handler module has been loaded and it runs now; progress,
 * result or error of attempt `seq`; or `skipped`, an attempt aborted or
 * recalled while it waited here (it never began).
 */
export type LaneReply = { ready: true } | { seq: number, began: true } | { seq: number, progress: unknown } | { seq: number, result: unknown, ms: number } | { seq: number, error: string, ms?: number } | { seq: number, skipped: true }

const modules = new Map<string, Handler>()

async function load (handler: string): Promise<Handler> {
  const builtin = builtins[handler]
  if (builtin !== undefined) return builtin
  let fn = modules.get(handler)
  if (fn === undefined) {
    const mod = await import(pathToFileURL(handler).href) as { default?: unknown }
    if (typeof mod.default !== 'function') throw new TypeError(`handler module ${handler} has no default-exported function`)
    fn = mod.default as Handler
    modules.set(handler, fn)
  }
  return fn
}

const messageOf = (err: unknown): string => err instanceof Error ? err.message : String(err)

async function runOne (port: MessagePort, seq: number, task: ThreadAttempt, controller: AbortController): Promise<void> {
  try {
    const cold = builtins[task.handler] === undefined && !modules.has(task.handler)
    const fn = await load(task.handler)
    // Its module is loaded: the node counts the run from here (a first load is no sign of a long handler).
    if (cold) port.postMessage({ seq, began: true } satisfies LaneReply)
    // How long the handler ran on this thread (its module's first load left out): how the node judges a short attempt.
    const began = performance.now()
    const result = await fn(task.payload, {
      progress: value => {
        // Progress that cannot cross to the node is dropped, as the node drops progress that is not JSON.
        try { port.postMessage({ seq, progress: value }) } catch {}
      },
      signal: controller.signal,
      taskId: task.taskId,
      attempt: task.attempt,
      parents: task.parents ?? {}
    })
    const ms = performance.now() - began
    try {
      port.postMessage({ seq, result: result === undefined ? null : result, ms })
    } catch (err) {
      port.postMessage({ seq, error: `the handler's result is refused: ${messageOf(err)}`, ms })
    }
  } catch (err) {
    port.postMessage({ seq, error: messageOf(err) })
  }
}

export default async function lane (task: { port: MessagePort }): Promise<null> {
  const { port } = task
  let running: { seq: number, controller: AbortController } | null = null
  const waiting: Array<{ seq: number, attempt: ThreadAttempt, ahead: boolean }> = []
  const start = (seq: number, attempt: ThreadAttempt, ahead: boolean): void => {
    if (ahead) port.postMessage({ seq, began: true } satisfies LaneReply)
    const current = { seq, controller: new AbortController() }
    running = current
    void runOne(port, seq, attempt, current.controller).finally(() => {
      // The next waiting one begins after the messages that came meanwhile (an abort or recall of it).
      setImmediate(() => {
        if (running === current) running = null
        const head = waiting.shift()
        if (head !== undefined) start(head.seq, head.attempt, head.ahead)
      })
    })
  }
  return await new Promise<null>(resolve => {
    port.on('message', (m: LaneRequest) => {
      if ('close' in m) {
        port.close()
        resolve(null)
      } else if ('abort' in m || 'recall' in m) {
        const seq = 'abort' in m ? m.abort : m.recall
        if ('abort' in m && running?.seq === seq) { running.controller.abort(new Error(m.reason)); return }
        const i = waiting.findIndex(w => w.seq === seq)
        if (i >= 0) {
          waiting.splice(i, 1)
          port.postMessage({ seq, skipped: true } satisfies LaneReply)
        }
      } else {
        if (running === null) start(m.run, m.attempt, m.ahead)
        else waiting.push({ seq: m.run, attempt: m.attempt, ahead: m.ahead })
      }
    })
    port.postMessage({ ready: true } satisfies LaneReply)
  })
}
