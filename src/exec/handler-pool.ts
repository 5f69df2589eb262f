/**
 * A worker-thread pool (piscina) sized by the node's capacity. Each attempt
 * runs with a timeout and an abort: the handler's ctx.signal fires first; a
 * handler that ignores it is stopped by terminating its thread after a grace
 * period. A throw, a hang or a crashed thread fails that attempt only.
 */
import { resolve } from 'node:path'
import { Piscina } from 'piscina'
import { builtins } from './builtins.ts'
import { LANE_TIMINGS, ThreadLanes } from './thread-lanes.ts'
import type { Lane, LaneTimings } from './thread-lanes.ts'
import { DEFAULTS } from '../config.ts'
import type { Handler } from './handler.ts'

export type AttemptOutcome = { ok: true, result: unknown } | { ok: false, error: string, cancelled?: boolean }

export interface AttemptInput {
  taskId: string
  attempt: number
  type: string
  payload: unknown
  /** The parents' results (a task with dependsOn), passed to the handler as ctx.parents. */
  parents?: Record<string, unknown>
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

/**
 * An attempt waiting for a slot (or for a lane to take it ahead).
 * `recalled`: it came back unstarted from a lane it was sent ahead to; it
 * is not sent ahead again (it runs on an idle lane or a new one).
 */
interface Pending { input: AttemptInput, handler: string, resolve: (o: AttemptOutcome) => void, onCancel: () => void, listening: boolean, recalled: boolean, order: number }

export class HandlerPool implements TaskExecutor {
  readonly #pool: Piscina
  readonly #handlers: Map<string, string>
  readonly #maxResultBytes: number
  readonly #abortGraceMs: number
  readonly #lanes: ThreadLanes
  /**
   * The node's task slots: at most `capacity` attempts run at once, on
   * threads or on the event loop; the rest wait in order. A slot is held by
   * an attempt on the event loop, or by a lane while it has attempts.
   */
  readonly #capacity: number
  #busy = 0
  readonly #waiting: Pending[] = []
  readonly #laneSlots = new Set<Lane>()
  /** Attempts sent to a lane ahead of the one it ran (for tests and tuning). */
  #takenAhead = 0
  /** Attempts queued so far (their order in line). */
  #queued = 0
  /** Pumps again once the lanes' run times are known (see #laneFor). */
  #pumpTimer: NodeJS.Timeout | undefined
  /** How long each handler's last attempt on a thread ran there; a known long one starts a thread at once. */
  readonly #runMs = new Map<string, number>()
  readonly #shortRunMs: number

  /**
   * `userHandlers` maps a task type to a module path (relative to `baseDir`).
   * Results and progress values larger than `maxResultBytes` of JSON fail the attempt (or are dropped).
   * A handler on a thread gets `abortGraceMs` to honour ctx.signal before its thread is terminated.
   * `lanes`: when attempts are sent to a thread ahead (see thread-lanes.ts; tests pin them).
   */
  constructor (capacity: number, userHandlers: Record<string, string>, baseDir: string, maxResultBytes = Infinity, abortGraceMs = DEFAULTS.abortGraceMs, lanes: LaneTimings = LANE_TIMINGS) {
    this.#maxResultBytes = maxResultBytes
    this.#abortGraceMs = abortGraceMs
    this.#capacity = capacity
    this.#shortRunMs = lanes.shortRunMs
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
    this.#lanes = new ThreadLanes(this.#pool, lanes, () => { this.#pump() })
  }

  types (): string[] {
    return [...this.#handlers.keys()].sort()
  }

  supports (type: string): boolean {
    return this.#handlers.has(type)
  }

  run (input: AttemptInput): Promise<AttemptOutcome> {
    const handler = this.#handlers.get(input.type)
    if (handler === undefined) return Promise.resolve({ ok: false, error: `task type "${input.type}" is not supported on this node` })
    if (input.signal.aborted) return Promise.resolve({ ok: false, error: 'cancelled by request', cancelled: true })
    return this.#queue(input, handler)
  }

  /** The attempt's outcome once it has waited for a slot and run (resolved before its slot goes to the next one). */
  #queue (input: AttemptInput, handler: string): Promise<AttemptOutcome> {
    return new Promise<AttemptOutcome>(resolve => {
      // Waiting for a slot counts as queued: no timeout yet, and a cancel just drops the attempt.
      const pending: Pending = {
        input,
        handler,
        resolve,
        onCancel: () => {
          const i = this.#waiting.indexOf(pending)
          if (i < 0) return
          this.#waiting.splice(i, 1)
          resolve({ ok: false, error: 'cancelled by request', cancelled: true })
        },
        listening: false,
        recalled: false,
        order: ++this.#queued
      }
      this.#waiting.push(pending)
      this.#pump()
      this.#listen(pending)
    })
  }

  /** A pending attempt that still waits (not started by the pump) is dropped by a cancel. */
  #listen (pending: Pending): void {
    if (pending.listening || this.#waiting.at(-1) !== pending && !this.#waiting.includes(pending)) return
    pending.listening = true
    pending.input.signal.addEventListener('abort', pending.onCancel, { once: true })
  }

  /** Starts waiting attempts while slots are free, and sends short ones ahead to lanes that take them (see thread-lanes.ts). */
  #pump (): void {
    while (this.#waiting.length > 0) {
      const next = this.#waiting[0]!
      const inline = INLINE_BUILTINS.has(next.handler)
      let lane: Lane | undefined
      if (inline) {
        if (this.#busy >= this.#capacity) return
        this.#busy++
      } else {
        lane = this.#laneFor(next)
        if (lane === undefined) return
      }
      this.#waiting.shift()
      if (next.listening) {
        next.listening = false
        next.input.signal.removeEventListener('abort', next.onCancel)
      }
      if (lane !== undefined) {
        this.#onLane(lane, next)
      } else {
        void this.#runInline(builtins[next.handler]!, next.input).then(next.resolve).finally(() => {
          this.#busy--
          this.#pump()
        })
      }
    }
  }

  /**
   * Where the next attempt on a thread goes, in this order: an idle lane
   * (with a free slot); ahead to a busy lane whose wait is short (no slot:
   * the lane's thread runs one attempt at a time); a new lane (a free slot,
   * once every lane has shown whether its attempts are short: no thread is
   * still starting, each has ended one or run its first for `quietMs`, and
   * none of short attempts has merely gone quiet for less than `quietMs`;
   * short attempts then go ahead to the lanes there are instead of starting
   * a thread each; at once for a handler whose last attempt ran long). None:
   * it waits (for a slot, a lane's thread, or the time when the lanes' run
   * times are known).
   */
  #laneFor (next: Pending): Lane | undefined {
    const free = this.#busy < this.#capacity
    if (free) {
      const idle = this.#lanes.idle()
      if (idle !== undefined) return this.#holdSlot(idle)
    }
    if (!next.recalled) {
      const ahead = this.#lanes.prefetchTarget()
      if (ahead !== undefined) {
        this.#takenAhead++
        return ahead
      }
    }
    if (!free) return undefined
    const untilKnown = (this.#runMs.get(next.handler) ?? 0) >= this.#shortRunMs ? 0 : this.#lanes.untilKnown()
    if (untilKnown === 0) return this.#holdSlot(this.#lanes.take())
    if (Number.isFinite(untilKnown) && this.#pumpTimer === undefined) {
      this.#pumpTimer = setTimeout(() => { this.#pumpTimer = undefined; this.#pump() }, Math.ceil(untilKnown))
      this.#pumpTimer.unref()
    }
    return undefined
  }

  #holdSlot (lane: Lane): Lane {
    this.#busy++
    this.#laneSlots.add(lane)
    return lane
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
        attempt: input.attempt,
        parents: input.parents ?? {}
      })
      return this.#outcome(reason, { result })
    } catch (err) {
      return this.#outcome(reason, { err })
    } finally {
      clearTimeout(timeout)
      input.signal.removeEventListener('abort', onCancel)
    }
  }

  /** Runs a pending attempt on a lane (as its current one, or one ahead). */
  #onLane (lane: Lane, pending: Pending): void {
    const { input, handler } = pending
    let reason: Reason = null
    let started = false
    let graceTimer: NodeJS.Timeout | undefined
    let timeout: NodeJS.Timeout | undefined
    let seq = 0
    const kill = (error: string): void => { graceTimer = setTimeout(() => { lane.kill(new Error(error)) }, this.#abortGraceMs) }
    const abort = (error: string, cancelled: boolean): void => {
      if (reason !== null) return
      reason = { error, cancelled }
      lane.abort(seq, error)
      if (started) kill(error)
    }
    const onCancel = (): void => { abort('cancelled by request', true) }
    input.signal.addEventListener('abort', onCancel, { once: true })
    seq = lane.send({
      attempt: { handler, payload: input.payload, taskId: input.taskId, attempt: input.attempt, ...(input.parents === undefined ? {} : { parents: input.parents }) },
      onStarted: () => {
        started = true
        timeout = setTimeout(() => { abort(`timed out after ${input.timeoutMs} ms`, false) }, input.timeoutMs)
        input.onStarted?.()
        if (reason !== null) kill(reason.error) // aborted while it waited on the thread
      },
      onProgress: value => { this.#onProgress(input, value) },
      onSettled: settled => {
        if ('ms' in settled && settled.ms !== undefined) this.#runMs.set(handler, settled.ms)
        clearTimeout(timeout)
        clearTimeout(graceTimer)
        input.signal.removeEventListener('abort', onCancel)
        if ('unstarted' in settled && reason === null) {
          // Its lane ended, or recalled it, before it began: it waits again, in its place in line (ahead of all that came after it).
          pending.recalled = true
          const at = this.#waiting.findIndex(w => w.order > pending.order)
          this.#waiting.splice(at < 0 ? this.#waiting.length : at, 0, pending)
          this.#listen(pending)
        } else if ('unstarted' in settled || 'skipped' in settled) {
          pending.resolve({ ok: false, ...(reason ?? { error: 'cancelled by request', cancelled: true }) })
        } else {
          pending.resolve(this.#outcome(reason, settled))
        }
        if (lane.size === 0 && this.#laneSlots.delete(lane)) this.#busy--
        // After the outcome's own callbacks: an attempt is seen to end before its slot starts another.
        queueMicrotask(() => { this.#pump() })
      }
    })
    if (input.signal.aborted) onCancel()
  }

  /** Attempts that were sent to a thread ahead, behind a short one still running there. */
  get takenAhead (): number {
    return this.#takenAhead
  }

  /** Pool threads alive now (they start on first use of a handler that runs on one). */
  threadCount (): number {
    return this.#pool.threads.length
  }

  async close (): Promise<void> {
    clearTimeout(this.#pumpTimer)
    this.#lanes.close()
    await this.#pool.destroy()
  }
}
