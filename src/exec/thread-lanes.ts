/**
 * Pool threads as lanes. A lane is one long piscina task holding a thread
 * and a MessagePort: attempts go to it as one message each way (the attempt,
 * then its outcome; progress and aborts between), so a short task costs two
 * messages instead of a fresh channel, a queued pool task, a "started"
 * message and the pool's reply. The thread runs a lane's attempts in the
 * order sent, so the node may send attempts ahead while another runs (see
 * `prefetchTarget`): the thread then goes from one to the next without
 * waiting for the node. Short attempts keep one thread busy rather than
 * start more: a thread costs 10-15 MB of memory (its own V8 heap and Node
 * bootstrap), and a lane takes attempts ahead while the wait behind what it
 * has is short; another thread starts only when no lane can take the next
 * one (docs/architecture.md, "Handler threads"). A lane left empty for LANE_IDLE_MS ends its piscina
 * task (the thread then idles out as before). A lane whose thread is
 * terminated (a handler that ignored its abort) or crashes fails the attempt
 * it was running, and only that one: the attempts sent ahead never began,
 * and are handed back.
 */
import { MessageChannel } from 'node:worker_threads'
import type { MessagePort } from 'node:worker_threads'
import type { Piscina } from 'piscina'
import type { LaneRequest, LaneReply, ThreadAttempt } from './worker-thread.ts'

/** An empty lane gives its thread back after this long. */
const LANE_IDLE_MS = 5_000
/**
 * `shortRunMs`: an attempt is sent ahead only to a lane whose attempts run
 * shorter than this (a moving mean of their handlers' time on the thread),
 * which has heard from its thread within it, and where the wait behind
 * what it has (the time since it last heard from its thread, plus the mean
 * run time for each other attempt it holds) stays under it: waiting behind short
 * attempts costs less than the node's round trip to the thread, and less
 * than a thread. `recallMs`: one that still waits while the lane has not
 * heard from its thread for this long is recalled (it runs on whichever lane
 * frees first, or on a new one), so an attempt that turns out long holds up
 * no other (unless it blocks its thread: then what waits behind it runs
 * after it, or elsewhere once it is stopped). `quietMs`: how long a lane
 * may go without a word from its thread, running its first attempt (after
 * the handler's module has loaded) or as a lane of short attempts, before
 * it counts as busy with a long one; until then no other thread starts for
 * attempts that might go to it (a thread of short attempts falls quiet when
 * the machine is busy, and another thread would only add to that).
 */
export interface LaneTimings { shortRunMs: number, recallMs: number, quietMs: number }
export const LANE_TIMINGS: LaneTimings = { shortRunMs: 20, recallMs: 20, quietMs: 100 }
/** Weight of the newest run time in a lane's moving mean (one slow run, a pause of its thread, moves it little). */
const RUN_MS_WEIGHT = 0.2
/** At most this many attempts on one lane (the running one and those sent ahead), however short. */
const MAX_ON_LANE = 64

/**
 * How an attempt on a lane ended: what its handler returned or threw (or its
 * thread's failure); `skipped`, aborted before it began; `unstarted`, its
 * lane ended before it began (it may run elsewhere).
 */
export type Settled = { result: unknown, ms?: number } | { err: unknown, ms?: number } | { skipped: true } | { unstarted: true }

export interface LaneJob {
  attempt: ThreadAttempt
  /** The attempt began on the thread (its timeout counts from here). */
  onStarted: () => void
  onProgress: (value: unknown) => void
  onSettled: (s: Settled) => void
}

interface Entry { seq: number, job: LaneJob, ahead: boolean, sent: boolean, begun: boolean, recalled: boolean, recallTimer?: NodeJS.Timeout }

export class Lane {
  readonly #port: MessagePort
  readonly #hard = new AbortController()
  readonly #onEnd: (lane: Lane) => void
  readonly #onReady: () => void
  #ready = false
  #dead = false
  /** Attempts sent to this lane, in order; the first runs (once the lane is ready). */
  readonly #entries: Entry[] = []
  #seq = 0
  #idleTimer: NodeJS.Timeout | undefined
  /** When the first entry began (performance.now()); how long its attempts run (a moving mean of their handlers' time on the thread). */
  #headStartedAt = 0
  /**
   * When the lane last heard from its thread, or gave an idle thread an
   * attempt: a lane that keeps answering is moving. The node's own view of
   * when an attempt began can be late by as long as the node was busy.
   */
  #heardAt = 0
  #runMs = Infinity

  readonly #timings: LaneTimings

  constructor (pool: Piscina, timings: LaneTimings, onEnd: (lane: Lane) => void, onReady: () => void) {
    this.#onEnd = onEnd
    this.#onReady = onReady
    this.#timings = timings
    const { port1, port2 } = new MessageChannel()
    this.#port = port1
    port1.on('message', (m: LaneReply) => { this.#onMessage(m) })
    pool.run({ port: port2 }, { transferList: [port2], signal: this.#hard.signal }).then(
      () => { this.#end(new Error('pool thread lane closed')) },
      (err: unknown) => { this.#end(err) }
    )
  }

  get alive (): boolean { return !this.#dead }
  /**
   * Milliseconds until another thread may start for attempts that could
   * go to this lane: 0 when it has none, ended, runs long attempts, or has
   * as many short ones as it takes; Infinity while its thread is still
   * starting; else (its first attempt runs, or a lane of short attempts
   * has gone quiet) until it has been quiet for `quietMs`.
   */
  get untilKnown (): number {
    const n = this.#entries.length
    if (this.#dead || n === 0) return 0
    if (!this.#ready) return Infinity
    if (this.#runMs !== Infinity && (this.#runMs >= this.#timings.shortRunMs || n >= MAX_ON_LANE || (n - 1) * this.#runMs >= this.#timings.shortRunMs)) return 0
    return Math.max(0, this.#timings.quietMs - (performance.now() - this.#heardAt))
  }
  /** Attempts on this lane: the running one and any sent ahead. */
  get size (): number { return this.#entries.length }

  /** True when an attempt sent now would wait only behind short ones, for less than `shortRunMs` in all. */
  get takesOneAhead (): boolean {
    // The time since the lane last heard from its thread counts as the current attempt's run so far.
    const { shortRunMs } = this.#timings
    const n = this.#entries.length
    if (this.#dead || !this.#ready || n === 0 || n >= MAX_ON_LANE || this.#runMs >= shortRunMs) return false
    const silent = performance.now() - this.#heardAt
    return silent < shortRunMs && silent + (n - 1) * this.#runMs < shortRunMs
  }

  /** Sends an attempt to this lane (behind the ones it has); returns its number on the lane. */
  send (job: LaneJob): number {
    clearTimeout(this.#idleTimer)
    this.#port.ref()
    const entry: Entry = { seq: ++this.#seq, job, ahead: this.#entries.length > 0, sent: false, begun: false, recalled: false }
    this.#entries.push(entry)
    if (entry.ahead) {
      entry.recallTimer = setTimeout(() => { this.#recall(entry) }, this.#timings.recallMs)
      entry.recallTimer.unref()
    }
    if (this.#dead) this.#end(new Error('pool thread lane closed'))
    else if (this.#ready) this.#post(entry)
    return entry.seq
  }

  /** Stops attempt `seq`: dropped if it has not reached the thread, else its ctx.signal fires (or the thread skips it if it has not begun). */
  abort (seq: number, reason: string): void {
    const i = this.#entries.findIndex(e => e.seq === seq)
    if (i < 0) return
    const entry = this.#entries[i]!
    if (!entry.sent) {
      this.#entries.splice(i, 1)
      this.#settled(entry, { skipped: true })
      return
    }
    this.#port.postMessage({ abort: seq, reason } satisfies LaneRequest)
  }

  /**
   * An attempt sent ahead still waits: it comes back (settles as unstarted)
   * if the lane has not heard from its thread for `recallMs` (what runs
   * there is long), unless it
   * has begun meanwhile. Behind a lane that keeps moving (short attempts
   * ending one after another) it waits on. Decided after the messages that came
   * meanwhile: after a stall of the node its timers run before them.
   */
  #recall (entry: Entry): void {
    setImmediate(() => {
      if (!this.#entries.includes(entry) || entry.begun) return
      const silentMs = performance.now() - this.#heardAt
      if (silentMs < this.#timings.recallMs) {
        entry.recallTimer = setTimeout(() => { this.#recall(entry) }, this.#timings.recallMs - silentMs)
        entry.recallTimer.unref()
        return
      }
      this.#recallNow(entry)
    })
  }

  #recallNow (entry: Entry): void {
    const i = this.#entries.indexOf(entry)
    entry.recalled = true
    if (!entry.sent) {
      this.#entries.splice(i, 1)
      this.#settled(entry, { unstarted: true })
      return
    }
    this.#port.postMessage({ recall: entry.seq } satisfies LaneRequest)
  }

  /** Terminates the lane's thread: the running attempt settles with `err`, the ones sent ahead as unstarted. */
  kill (err: Error): void {
    this.#hard.abort(err)
  }

  close (): void {
    clearTimeout(this.#idleTimer)
    if (!this.#dead) this.#port.postMessage({ close: true } satisfies LaneRequest)
  }

  #post (entry: Entry): void {
    entry.sent = true
    try {
      this.#port.postMessage({ run: entry.seq, attempt: entry.job.attempt, ahead: entry.ahead } satisfies LaneRequest)
    } catch (err) {
      // A payload that cannot be cloned fails its attempt; the lane goes on.
      const i = this.#entries.indexOf(entry)
      this.#entries.splice(i, 1)
      this.#settled(entry, { err })
      return
    }
    // The thread begins one sent to an idle lane at once; one sent ahead, when it says so.
    if (!entry.ahead) this.#begin(entry)
  }

  #begin (entry: Entry): void {
    if (entry.begun) return
    entry.begun = true
    clearTimeout(entry.recallTimer)
    this.#headStartedAt = performance.now()
    this.#heardAt = this.#headStartedAt
    entry.job.onStarted()
  }

  #onMessage (m: LaneReply): void {
    this.#heardAt = performance.now()
    if ('ready' in m) {
      this.#ready = true
      for (const e of [...this.#entries]) if (!e.sent) this.#post(e)
      this.#onReady()
      return
    }
    const i = this.#entries.findIndex(e => e.seq === m.seq)
    if (i < 0) return
    const entry = this.#entries[i]!
    if ('began' in m) {
      this.#begin(entry)
      return
    }
    if ('progress' in m) {
      if (entry.begun) entry.job.onProgress(m.progress)
      return
    }
    this.#entries.splice(i, 1)
    const ms = 'ms' in m ? m.ms : undefined
    if (entry.begun) {
      const ran = ms ?? performance.now() - this.#headStartedAt
      this.#runMs = this.#runMs === Infinity ? ran : this.#runMs + RUN_MS_WEIGHT * (ran - this.#runMs)
    }
    // A recalled attempt the thread skipped never began: it may run elsewhere.
    const skipped: Settled = entry.recalled ? { unstarted: true } : { skipped: true }
    this.#settled(entry, 'skipped' in m ? skipped : 'error' in m ? { err: m.error, ms } : { result: m.result, ms })
  }

  /** An entry left the lane: it settles. */
  #settled (entry: Entry, s: Settled): void {
    clearTimeout(entry.recallTimer)
    if (this.#entries.length === 0 && !this.#dead) {
      this.#port.unref()
      this.#idleTimer = setTimeout(() => { this.close() }, LANE_IDLE_MS)
      this.#idleTimer.unref()
    }
    entry.job.onSettled(s)
  }

  #end (err: unknown): void {
    this.#dead = true
    clearTimeout(this.#idleTimer)
    this.#port.close()
    const entries = this.#entries.splice(0)
    for (const e of entries) clearTimeout(e.recallTimer)
    // The one that had begun fails (a lane that never started fails its first); the others never began.
    entries.forEach((e, i) => { e.job.onSettled(e.begun || (i === 0 && !this.#ready) ? { err } : { unstarted: true }) })
    this.#onEnd(this)
  }
}

/** The lanes of one pool: empty ones are reused; the caller keeps their number within its capacity. */
export class ThreadLanes {
  readonly #pool: Piscina
  readonly #all = new Set<Lane>()
  readonly #timings: LaneTimings
  readonly #onChange: () => void

  /** `onChange`: a lane's thread became ready, or a lane ended (what waits for one may go on). */
  constructor (pool: Piscina, timings: LaneTimings, onChange: () => void = () => {}) {
    this.#pool = pool
    this.#timings = timings
    this.#onChange = onChange
  }

  /** An empty lane (its thread may still be starting), if there is one. */
  idle (): Lane | undefined {
    for (const lane of this.#all) if (lane.alive && lane.size === 0) return lane
    return undefined
  }

  /**
   * Milliseconds until another thread may start (0: now; Infinity: a thread
   * is still starting, and `onChange` says when it is ready; see
   * Lane.untilKnown). Until then no other thread starts: a first short
   * attempt, or a quiet lane that speaks again, lets the lane take the next
   * ones ahead instead.
   */
  untilKnown (): number {
    let ms = 0
    for (const lane of this.#all) ms = Math.max(ms, lane.untilKnown)
    return ms
  }

  /** An empty lane, or a new one (a thread the pool has idle, or a new thread, which may still be starting). */
  take (): Lane {
    const idle = this.idle()
    if (idle !== undefined) return idle
    const lane = new Lane(this.#pool, this.#timings, ended => { this.#all.delete(ended); this.#onChange() }, this.#onChange)
    this.#all.add(lane)
    return lane
  }

  /** A busy lane that would run one more attempt soon after what it has, all short (see LaneTimings). */
  prefetchTarget (): Lane | undefined {
    for (const lane of this.#all) if (lane.takesOneAhead) return lane
    return undefined
  }

  close (): void {
    for (const lane of this.#all) lane.close()
  }
}
