/**
 * Pool threads as lanes. A lane is one long piscina task holding a thread
 * and a MessagePort: attempts go to it one after another as one message
 * each way (the attempt, then its outcome; progress and aborts between), so
 * a short task costs two messages instead of a fresh channel, a queued pool
 * task, a "started" message and the pool's reply. A lane left idle for
 * LANE_IDLE_MS ends its piscina task (the thread then idles out as before).
 * A lane whose thread is terminated (a handler that ignored its abort) or
 * crashes fails the attempt it was running, and only that one.
 */
import { MessageChannel } from 'node:worker_threads'
import type { MessagePort } from 'node:worker_threads'
import type { Piscina } from 'piscina'
import type { LaneRequest, LaneReply, ThreadAttempt } from './worker-thread.ts'

/** An idle lane gives its thread back after this long. */
const LANE_IDLE_MS = 5_000

/** How an attempt on a lane settled: what its handler returned, or what it threw (or the thread's failure). */
export type Settled = { result: unknown } | { err: unknown }

export interface LaneCallbacks {
  /** The attempt reached its thread and runs (its timeout counts from here). */
  onStarted: () => void
  onProgress: (value: unknown) => void
}

interface Current { seq: number, callbacks: LaneCallbacks, settle: (s: Settled) => void, posted: boolean }

export class Lane {
  readonly #port: MessagePort
  readonly #hard = new AbortController()
  readonly #onEnd: (lane: Lane) => void
  #ready = false
  #dead = false
  #current: Current | null = null
  #pending: ThreadAttempt | null = null
  #seq = 0
  #idleTimer: NodeJS.Timeout | undefined

  constructor (pool: Piscina, onEnd: (lane: Lane) => void) {
    this.#onEnd = onEnd
    const { port1, port2 } = new MessageChannel()
    this.#port = port1
    port1.on('message', (m: LaneReply) => { this.#onMessage(m) })
    pool.run({ port: port2 }, { transferList: [port2], signal: this.#hard.signal }).then(
      () => { this.#end(new Error('pool thread lane closed')) },
      (err: unknown) => { this.#end(err) }
    )
  }

  get alive (): boolean { return !this.#dead }

  /** Runs one attempt on this lane (which must be idle); never rejects. */
  async run (attempt: ThreadAttempt, callbacks: LaneCallbacks): Promise<Settled> {
    clearTimeout(this.#idleTimer)
    this.#port.ref()
    return await new Promise<Settled>(resolve => {
      this.#current = { seq: ++this.#seq, callbacks, settle: resolve, posted: false }
      this.#pending = attempt
      if (this.#dead) this.#settle({ err: new Error('pool thread lane closed') })
      else if (this.#ready) this.#post()
    })
  }

  /** Asks the running attempt's handler to stop (its ctx.signal fires). */
  abort (reason: string): void {
    if (this.#current?.posted === true) this.#send({ abort: this.#current.seq, reason })
  }

  /** The attempt has not reached its thread yet: it is dropped (settles at once with `err`), the lane stays. */
  drop (err: Error): boolean {
    if (this.#current === null || this.#current.posted) return false
    this.#pending = null
    this.#settle({ err })
    return true
  }

  /** Terminates the lane's thread: the running attempt settles with `err`. */
  kill (err: Error): void {
    this.#hard.abort(err)
  }

  /** Back to idle: gives its thread back if nothing comes for LANE_IDLE_MS. */
  idle (): void {
    this.#port.unref()
    this.#idleTimer = setTimeout(() => { this.close() }, LANE_IDLE_MS)
    this.#idleTimer.unref()
  }

  close (): void {
    clearTimeout(this.#idleTimer)
    if (!this.#dead) this.#send({ close: true })
  }

  #send (m: LaneRequest): void {
    try {
      this.#port.postMessage(m)
    } catch (err) {
      // A payload that cannot be cloned fails its attempt; the lane goes on.
      if ('run' in m) this.#settle({ err })
      else throw err
    }
  }

  #post (): void {
    const cur = this.#current
    const attempt = this.#pending
    if (cur === null || attempt === null) return
    this.#pending = null
    cur.posted = true
    this.#send({ run: cur.seq, attempt })
    if (this.#current === cur) cur.callbacks.onStarted()
  }

  #onMessage (m: LaneReply): void {
    if ('ready' in m) {
      this.#ready = true
      this.#post()
      return
    }
    const cur = this.#current
    if (cur === null || m.seq !== cur.seq) return
    if ('progress' in m) cur.callbacks.onProgress(m.progress)
    else this.#settle('error' in m ? { err: m.error } : { result: m.result })
  }

  #settle (s: Settled): void {
    const cur = this.#current
    if (cur === null) return
    this.#current = null
    this.#pending = null
    cur.settle(s)
  }

  #end (err: unknown): void {
    if (this.#dead) return
    this.#dead = true
    clearTimeout(this.#idleTimer)
    this.#port.close()
    this.#settle({ err })
    this.#onEnd(this)
  }
}

/** At most `capacity` lanes (the node's slots bound how many run at once); idle ones are reused, newest first. */
export class ThreadLanes {
  readonly #pool: Piscina
  readonly #idle: Lane[] = []
  readonly #all = new Set<Lane>()

  constructor (pool: Piscina) {
    this.#pool = pool
  }

  /** An idle lane, or a new one (its thread may still be starting). */
  take (): Lane {
    for (;;) {
      const lane = this.#idle.pop()
      if (lane === undefined) break
      if (lane.alive) return lane
    }
    const lane = new Lane(this.#pool, ended => {
      this.#all.delete(ended)
      const i = this.#idle.indexOf(ended)
      if (i >= 0) this.#idle.splice(i, 1)
    })
    this.#all.add(lane)
    return lane
  }

  /** The lane's attempt settled: it waits for the next one. */
  give (lane: Lane): void {
    if (!lane.alive) return
    lane.idle()
    this.#idle.push(lane)
  }

  close (): void {
    for (const lane of this.#all) lane.close()
  }
}
