/**
 * Runs inside a pool thread: loads the handler (a built-in, or a user module
 * named in the config) and runs one task, relaying progress and abort over a
 * MessagePort. A hang or crash here never blocks the node's event loop.
 */
import type { MessagePort } from 'node:worker_threads'
import { pathToFileURL } from 'node:url'
import { builtins } from './builtins.ts'
import type { Handler } from './handler.ts'

export interface ThreadTask {
  /** Built-in name, or an absolute path of a user module. */
  handler: string
  payload: unknown
  taskId: string
  attempt: number
  port: MessagePort
}

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

export default async function run (task: ThreadTask): Promise<unknown> {
  const controller = new AbortController()
  task.port.on('message', (m: { abort?: string }) => {
    if (m.abort !== undefined) controller.abort(new Error(m.abort))
  })
  task.port.postMessage({ started: true })
  try {
    const fn = await load(task.handler)
    const result = await fn(task.payload, {
      progress: value => { task.port.postMessage({ progress: value }) },
      signal: controller.signal,
      taskId: task.taskId,
      attempt: task.attempt
    })
    return result === undefined ? null : result
  } finally {
    task.port.close()
  }
}
