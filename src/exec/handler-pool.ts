/**
 * A worker-thread pool (piscina) sized by the node's capacity. Each attempt
 * runs with a timeout and an abort: the handler's ctx.signal fires first; a
 * handler that ignores it is stopped by terminating its thread after a grace
 * period. A throw, a hang or a crashed thread fails that attempt only.
 */
import { MessageChannel } from 'node:worker_threads'
import { resolve } from 'node:path'
import { Piscina } from 'piscina'
import { builtins } from './builtins.ts'
import { DEFAULTS } from '../config.ts'
import type { Handler } from './handler.ts'

export type AttemptOutcome = { ok: true, result: unknown } | { ok: false, error: string, cancelled?: boolean }

export interface AttemptInput {
  taskId: string
  attempt: number
  type: string
  payload: unknown
  timeoutMs: number
  signal: AbortSignal
  /** The leader and term that assigned this attempt (for logs, and the simulator's checks). */
  assignment?: { term: number, leader: string }
  /** The attempt left the pool's queue and began on a thread; its timeout counts from here. */
  onStarted?: () => void
  onProgress: (value: unknown) => void
}

/** What a node runs attempts with: the HandlerPool here; the deterministic simulation passes its own. */
export interface TaskExecutor {
  /** Task types this node runs, sorted. */
  types (): string[]
  supports (type: string): boolean
  /** Runs one attempt to its end; never rejects (a failure is an outcome). */
  run (input: AttemptInput): Promise<AttemptOutcome>
}

/** Results and progress travel and are stored as JSON: anything else (BigInt, cycles) is refused here. */
function asJson (value: unknown, maxBytes = Infinity): { ok: true, value: unknown } | { ok: false, error: string } {
  try {
    const text = JSON.stringify(value)
    if (text !== undefined && Buffer.byteLength(text) > maxBytes) return { ok: false, error: `${Buffer.byteLength(text)} bytes exceeds the limit of ${maxBytes} (maxPayloadBytes)` }
    return { ok: true, value: text === undefined ? null : JSON.parse(text) as unknown }
  } catch (err) {
    return { ok: false, error: (err as Error).message }
  }
}

/** A pool thread idle this long exits (the next handler on a thread starts one again). */
const IDLE_THREAD_MS = 60_000

/**
 * Built-ins that never block the event loop (they return at once, or wait on
 * a timer that honours ctx.signal) run on it: a hop to a pool thread would
 * cost several times what they do. User handlers and `hash` run on threads.
 */
const INLINE_BUILTINS = new Set(['echo', 'sleep', 'fail'])

type Reason = { error: string, cancelled: boolean } | null

/** The node's task slots: at most `capacity` attempts run at once, on threads or on the event loop; the rest wait in order. */
class Slots {
  #free: number
  readonly #waiting: Array<() => void> = []
  constructor (capacity: number) { this.#free = capacity }

  /** Resolves true once a slot is held, or false if `signal` aborts first (nothing is then held). */
  async acquire (signal: AbortSignal): Promise<boolean> {
    if (signal.aborted) return false
    if (this.#free > 0) { this.#free--; return true }
    return await new Promise<boolean>(resolve => {
      const grant = (): void => { signal.removeEventListener('abort', onAbort); resolve(true) }
      const onAbort = (): void => {
        const i = this.#waiting.indexOf(grant)
        if (i >= 0) this.#waiting.splice(i, 1)
        resolve(false)
      }
      signal.addEventListener('abort', onAbort, { once: true })
      this.#waiting.push(grant)
    })
  }

  release (): void {
    const next = this.#waiting.shift()
    if (next !== undefined) next()
    else this.#free++
  }
}

export class HandlerPool implements TaskExecutor {
  readonly #pool: Piscina
  readonly #handlers: Map<string, string>
  readonly #maxResultBytes: number
  readonly #abortGraceMs: number
  readonly #slots: Slots

  /**
   * `userHandlers` maps a task type to a module path (relative to `baseDir`).
   * Results and progress values larger than `maxResultBytes` of JSON fail the attempt (or are dropped).
   * A handler on a thread gets `abortGraceMs` to honour ctx.signal before its thread is terminated.
   */
  constructor (capacity: number, userHandlers: Record<string, string>, baseDir: string, maxResultBytes = Infinity, abortGraceMs = DEFAULTS.abortGraceMs) {
    this.#maxResultBytes = maxResultBytes
    this.#abortGraceMs = abortGraceMs
    this.#slots = new Slots(capacity)
    this.#handlers = new Map(Object.keys(builtins).map(name => [name, name]))
    for (const [type, path] of Object.entries(userHandlers)) this.#handlers.set(type, resolve(baseDir, path))
    this.#pool = new Piscina({
      // worker-thread.ts from src/, worker-thread.js when this runs built, from dist/.
      filename: new URL(`./worker-thread.${import.meta.url.endsWith('.ts') ? 'ts' : 'js'}`, import.meta.url).href,
      // No idle threads: the built-ins most tasks use run on the event loop; a thread starts on first use.
      minThreads: 0,
      maxThreads: capacity,
      concurrentTasksPerWorker: 1,
      maxQueue: 'auto',
      idleTimeout: IDLE_THREAD_MS
    })
  }

  types (): string[] {
    return [...this.#handlers.keys()].sort()
  }

  supports (type: string): boolean {
    return this.#handlers.has(type)
  }

  async run (input: AttemptInput): Promise<AttemptOutcome> {
    const handler = this.#handlers.get(input.type)
    if (handler === undefined) return { ok: false, error: `task type "${input.type}" is not supported on this node` }
    // Waiting for a slot counts as queued: no timeout yet, and a cancel just drops the attempt.
    if (!await this.#slots.acquire(input.signal)) return { ok: false, error: 'cancelled by request', cancelled: true }
    try {
      return INLINE_BUILTINS.has(handler) ? await this.#runInline(builtins[handler]!, input) : await this.#runOnThread(handler, input)
    } finally {
      this.#slots.release()
    }
  }

  /** The attempt's outcome from what its handler returned or threw, unless it was aborted first. */
  #outcome (reason: Reason, settled: { result: unknown } | { err: unknown }): AttemptOutcome {
    if (reason !== null) return { ok: false, ...reason }
    if ('err' in settled) return { ok: false, error: settled.err instanceof Error ? settled.err.message : String(settled.err) }
    const json = asJson(settled.result === undefined ? null : settled.result, this.#maxResultBytes)
    if (!json.ok) return { ok: false, error: `the handler's result is refused: ${json.error}` }
    return { ok: true, result: json.value }
  }

  #onProgress (input: AttemptInput, value: unknown): void {
    const progress = asJson(value, this.#maxResultBytes)
    if (progress.ok) input.onProgress(progress.value)
  }

  async #runInline (fn: Handler, input: AttemptInput): Promise<AttemptOutcome> {
    const controller = new AbortController()
    let reason: Reason = null
    const abort = (error: string, cancelled: boolean): void => {
      if (reason !== null) return
      reason = { error, cancelled }
      controller.abort(new Error(error))
    }
    const onCancel = (): void => { abort('cancelled by request', true) }
    if (input.signal.aborted) onCancel()
    else input.signal.addEventListener('abort', onCancel, { once: true })
    input.onStarted?.()
    const timeout = setTimeout(() => { abort(`timed out after ${input.timeoutMs} ms`, false) }, input.timeoutMs)
    try {
      if (reason !== null) return this.#outcome(reason, { result: null })
      const result: unknown = await fn(input.payload, {
        progress: value => { this.#onProgress(input, value) },
        signal: controller.signal,
        taskId: input.taskId,
        attempt: input.attempt
      })
      return this.#outcome(reason, { result })
    } catch (err) {
      return this.#outcome(reason, { err })
    } finally {
      clearTimeout(timeout)
      input.signal.removeEventListener('abort', onCancel)
    }
  }

  async #runOnThread (handler: string, input: AttemptInput): Promise<AttemptOutcome> {
    const { port1, port2 } = new MessageChannel()
    const hard = new AbortController()
    let reason: Reason = null
    let started = false
    let graceTimer: NodeJS.Timeout | undefined
    let timeout: NodeJS.Timeout | undefined
    const abort = (error: string, cancelled: boolean): void => {
      if (reason !== null) return
      reason = { error, cancelled }
      if (!started) { hard.abort(new Error(error)); return } // still queued: just drop it
      port1.postMessage({ abort: error })
      graceTimer = setTimeout(() => { hard.abort(new Error(error)) }, this.#abortGraceMs)
    }
    port1.on('message', (m: { progress?: unknown, started?: boolean }) => {
      if (m.started === true) {
        started = true
        timeout = setTimeout(() => { abort(`timed out after ${input.timeoutMs} ms`, false) }, input.timeoutMs)
        input.onStarted?.()
      } else if ('progress' in m) {
        this.#onProgress(input, m.progress)
      }
    })
    const onCancel = (): void => { abort('cancelled by request', true) }
    if (input.signal.aborted) onCancel()
    else input.signal.addEventListener('abort', onCancel, { once: true })
    try {
      const result: unknown = await this.#pool.run(
        { handler, payload: input.payload, taskId: input.taskId, attempt: input.attempt, port: port2 },
        { transferList: [port2], signal: hard.signal }
      )
      // Progress posted just before the handler returned travels on its own port: let it land first.
      await new Promise(resolve => setImmediate(resolve))
      return this.#outcome(reason, { result })
    } catch (err) {
      return this.#outcome(reason, { err })
    } finally {
      clearTimeout(timeout)
      clearTimeout(graceTimer)
      input.signal.removeEventListener('abort', onCancel)
      port1.close()
    }
  }

  /** Pool threads alive now (they start on first use of a handler that runs on one). */
  threadCount (): number {
    return this.#pool.threads.length
  }

  async close (): Promise<void> {
    await this.#pool.destroy()
  }
}
