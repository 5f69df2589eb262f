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

/** An attempt to run, number `run` on its lane; `ahead`: sent while another ran or waited there. */
export interface LaneRun { run: number, attempt: ThreadAttempt, ahead: boolean }
/**
 * Node -> lane: run attempts, in order (the ones the node sent in one turn of
 * its event loop, in one message); abort one (running, or waiting: then it
 * is skipped); recall one that waits (skipped; a running one goes on); or end the lane.
 */
export type LaneRequest = { runs: LaneRun[] } | { abort: number, reason: string } | { recall: number } | { close: true }
/**
 * Lane -> node: ready for attempts; `began`, an attempt sent ahead (behind
 * another) has begun (one sent to an idle lane begins unannounced), or an
 * attempt's handler module has been loaded and it runs now; progress,
 * result or error of attempt `seq`; or `skipped`, an attempt aborted or
 * recalled while it waited here (it never began). A result, error or skip
 * may carry `then`: the attempt sent ahead that began right after it (its
 * `began`, in the same message).
 */
export type LaneReply = { ready: true } | { seq: number, began: true } | { seq: number, progress: unknown } | Ended
type Ended = ({ seq: number, result: unknown, ms: number } | { seq: number, error: string, ms?: number } | { seq: number, skipped: true }) & { then?: number }

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

/** Runs one attempt; its ending is returned (posted by the lane, with what begins next). */
async function runOne (port: MessagePort, seq: number, task: ThreadAttempt, controller: AbortController): Promise<Ended> {
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
    return { seq, result: result === undefined ? null : result, ms: performance.now() - began }
  } catch (err) {
    return { seq, error: messageOf(err) }
  }
}

/** Posts an ending; a result that cannot cross to the node fails its attempt. */
function postEnded (port: MessagePort, ended: Ended): void {
  try {
    port.postMessage(ended)
  } catch (err) {
    const { then } = ended
    port.postMessage({ seq: ended.seq, error: `the handler's result is refused: ${messageOf(err)}`, ...('ms' in ended ? { ms: ended.ms } : {}), ...(then === undefined ? {} : { then }) } satisfies LaneReply)
  }
}

export default async function lane (task: { port: MessagePort }): Promise<null> {
  const { port } = task
  let running: { seq: number, controller: AbortController } | null = null
  const waiting: Array<{ seq: number, attempt: ThreadAttempt, ahead: boolean }> = []
  /** Starts an attempt; `announce`: say that it began (one sent ahead that no ending carries as `then`). */
  const start = (seq: number, attempt: ThreadAttempt, announce: boolean): void => {
    if (announce) port.postMessage({ seq, began: true } satisfies LaneReply)
    const current = { seq, controller: new AbortController() }
    running = current
    void runOne(port, seq, attempt, current.controller).then(ended => {
      // The next waiting one begins after the messages that came meanwhile (an abort or recall of it);
      // the ending goes then too, in one message with the next one's start.
      setImmediate(() => {
        if (running === current) running = null
        const head = waiting.shift()
        postEnded(port, head?.ahead === true ? { ...ended, then: head.seq } : ended)
        if (head !== undefined) start(head.seq, head.attempt, false)
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
        for (const r of m.runs) {
          if (running === null) start(r.run, r.attempt, r.ahead)
          else waiting.push({ seq: r.run, attempt: r.attempt, ahead: r.ahead })
        }
      }
    })
    port.postMessage({ ready: true } satisfies LaneReply)
  })
}
