/**
 * Pool threads as lanes. A lane is one long piscina task holding a thread
 * and a MessagePort: attempts go to it as one message each way (the attempt,
 * then its outcome; progress and aborts between), so a short task costs two
 * messages instead of a fresh channel, a queued pool task, a "started"
 * message and the pool's reply. The thread runs a lane's attempts in the
 * order sent, so the node may send one ahead while another runs (see
 * `prefetchTarget`): the thread then goes from one to the next without
 * waiting for the node. A lane left empty for LANE_IDLE_MS ends its piscina
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
 * `shortRunMs`: an attempt is sent ahead only to a lane whose last attempt
 * ran shorter than this and whose current one has not run longer: waiting
 * behind a short attempt costs less than the node's round trip to the
 * thread. `recallMs`: one that still waits after this long is recalled (it
 * runs on whichever lane frees first), so an attempt that turns out long
 * holds up no other (unless it blocks its thread: then what waits behind it
 * runs after it, or elsewhere once it is stopped).
 */
export interface LaneTimings { shortRunMs: number, recallMs: number }
export const LANE_TIMINGS: LaneTimings = { shortRunMs: 20, recallMs: 20 }

/**
 * How an attempt on a lane ended: what its handler returned or threw (or its
 * thread's failure); `skipped`, aborted before it began; `unstarted`, its
 * lane ended before it began (it may run elsewhere).
 */
export type Settled = { result: unknown } | { err: unknown } | { skipped: true } | { unstarted: true }

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
  #ready = false
  #dead = false
  /** Attempts sent to this lane, in order; the first runs (once the lane is ready). */
  readonly #entries: Entry[] = []
  #seq = 0
  #idleTimer: NodeJS.Timeout | undefined
  /** When the first entry began (performance.now()), and how long the last one ran. */
  #headStartedAt = 0
  #lastRunMs = Infinity

  readonly #timings: LaneTimings

  constructor (pool: Piscina, timings: LaneTimings, onEnd: (lane: Lane) => void) {
    this.#onEnd = onEnd
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
  /** Attempts on this lane: the running one and any sent ahead. */
  get size (): number { return this.#entries.length }

  /** True when an attempt sent now would wait only behind a short one. */
  get takesOneAhead (): boolean {
    const { shortRunMs } = this.#timings
    return !this.#dead && this.#ready && this.#entries.length === 1 && this.#lastRunMs < shortRunMs && performance.now() - this.#headStartedAt < shortRunMs
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

  /** An attempt sent ahead still waits behind a long one: it comes back (settles as unstarted) unless it has begun meanwhile. */
  #recall (entry: Entry): void {
    const i = this.#entries.indexOf(entry)
    if (i < 0 || entry.begun) return
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
    entry.job.onStarted()
  }

  #onMessage (m: LaneReply): void {
    if ('ready' in m) {
      this.#ready = true
      for (const e of [...this.#entries]) if (!e.sent) this.#post(e)
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
    if (entry.begun) this.#lastRunMs = performance.now() - this.#headStartedAt
    // A recalled attempt the thread skipped never began: it may run elsewhere.
    const skipped: Settled = entry.recalled ? { unstarted: true } : { skipped: true }
    this.#settled(entry, 'skipped' in m ? skipped : 'error' in m ? { err: m.error } : { result: m.result })
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

  constructor (pool: Piscina, timings: LaneTimings) {
    this.#pool = pool
    this.#timings = timings
  }

  /** An empty lane, or a new one (its thread may still be starting). */
  take (): Lane {
    for (const lane of this.#all) if (lane.alive && lane.size === 0) return lane
    const lane = new Lane(this.#pool, this.#timings, ended => { this.#all.delete(ended) })
    this.#all.add(lane)
    return lane
  }

  /** A busy lane that would run one more attempt right after its current, short one (see SHORT_RUN_MS). */
  prefetchTarget (): Lane | undefined {
    for (const lane of this.#all) if (lane.takesOneAhead) return lane
    return undefined
  }

  close (): void {
    for (const lane of this.#all) lane.close()
  }
}
