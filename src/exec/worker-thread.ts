/**
 * Runs inside a pool thread: one lane (see thread-lanes.ts). It loads each
 * handler once (a built-in, or a user module named in the config) and runs
 * the attempts the node sends it one after another, relaying progress and
 * aborts over the lane's MessagePort, until the node closes the lane. A hang
 * or crash here never blocks the node's event loop.
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
}

/** Node -> lane: run an attempt, abort the running one, or end the lane. */
export type LaneRequest = { run: number, attempt: ThreadAttempt } | { abort: number, reason: string } | { close: true }
/** Lane -> node: ready for attempts; progress, result or error of attempt `seq`. */
export type LaneReply = { ready: true } | { seq: number, progress: unknown } | { seq: number, result: unknown } | { seq: number, error: string }

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
    const fn = await load(task.handler)
    const result = await fn(task.payload, {
      progress: value => {
        // Progress that cannot cross to the node is dropped, as the node drops progress that is not JSON.
        try { port.postMessage({ seq, progress: value }) } catch {}
      },
      signal: controller.signal,
      taskId: task.taskId,
      attempt: task.attempt
    })
    try {
      port.postMessage({ seq, result: result === undefined ? null : result })
    } catch (err) {
      port.postMessage({ seq, error: `the handler's result is refused: ${messageOf(err)}` })
    }
  } catch (err) {
    port.postMessage({ seq, error: messageOf(err) })
  }
}

export default async function lane (task: { port: MessagePort }): Promise<null> {
  const { port } = task
  let running: { seq: number, controller: AbortController } | null = null
  return await new Promise<null>(resolve => {
    port.on('message', (m: LaneRequest) => {
      if ('close' in m) {
        port.close()
        resolve(null)
      } else if ('abort' in m) {
        if (running?.seq === m.abort) running.controller.abort(new Error(m.reason))
      } else {
        const current = { seq: m.run, controller: new AbortController() }
        running = current
        void runOne(port, m.run, m.attempt, current.controller).finally(() => { if (running === current) running = null })
      }
    })
    port.postMessage({ ready: true } satisfies LaneReply)
  })
}
