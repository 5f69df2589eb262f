/**
 * A node's graceful stop (SIGTERM, `POST /v1/drain`, `taskmesh drain`), as
 * Kubernetes drains a node and memberlist's Leave() announces a departure:
 *
 * 1. draining: the node's heartbeat says so at once; it is no leader
 *    candidate (a leader hands over now) and gets no new assignment or copy;
 *    it accepts no submit; the attempts it holds but has not begun go back
 *    to the leader, which places them elsewhere without counting an attempt;
 * 2. the attempts it runs finish and are reported, within `drainTimeoutMs`;
 * 3. it passes its last updates on to the tasks' holders, announces `left`
 *    (the others count it gone without waiting for the failure detector),
 *    and stops.
 *
 * The drain timeout, or `interrupt()` (a second signal), cuts step 2 short:
 * the attempts still running are stopped without a report, and the `left`
 * announcement makes the leader retry them elsewhere at once, as after a
 * crash (never as cancelled: a stop is not a cancel).
 */
import type { Logger } from 'pino'
import type { Clock } from './clock.ts'

/** How a drain ended: every attempt finished, or it was cut short by the timeout or a second signal. */
export type DrainOutcome = 'drained' | 'timed-out' | 'interrupted'

export interface DrainParts {
  cluster: { beginDrain: () => void, announceLeft: () => Promise<void> }
  tasks: { beginDrain: () => void, readonly busy: number, stop: () => Promise<void> }
  /** Stops the rest of the node (HTTP, timers, transport, store) once it has left. */
  stopNode: () => Promise<void>
  drainTimeoutMs: number
  clock: Clock
  log: Logger
}

/** How often the drain checks whether the node's attempts have finished. */
const DRAIN_POLL_MS = 50
/**
 * Longest wait, after the drain, for the last updates to reach the tasks'
 * other holders. They are a second path only (the leader sends every ending
 * to the holders too), so a holder that does not answer does not hold up the
 * stop: the node leaves within the drain time plus about this.
 */
const HAND_OFF_MS = 1_000

export class Drain {
  readonly #parts: DrainParts
  #done: Promise<DrainOutcome> | null = null
  #cutShort: ((why: 'timed-out' | 'interrupted') => void) | null = null

  constructor (parts: DrainParts) {
    this.#parts = parts
  }

  /** The drain has begun (it cannot be called off). */
  get begun (): boolean { return this.#done !== null }

  /** Begins the drain (or joins the one under way); resolves once the node has left and stopped. */
  async begin (): Promise<DrainOutcome> {
    this.#done ??= this.#run()
    return await this.#done
  }

  /** Stops at once: attempts still running are stopped and run again elsewhere. */
  interrupt (): void {
    this.#cutShort?.('interrupted')
  }

  async #run (): Promise<DrainOutcome> {
    const { cluster, tasks, clock, log, drainTimeoutMs } = this.#parts
    log.info({ drainTimeoutMs, attempts: tasks.busy }, 'draining: finishing running attempts, taking no new work')
    cluster.beginDrain()
    tasks.beginDrain()
    const outcome = await new Promise<DrainOutcome>(resolve => {
      const timers: Array<() => void> = []
      const finish = (o: DrainOutcome): void => {
        for (const cancel of timers) cancel()
        this.#cutShort = null
        resolve(o)
      }
      this.#cutShort = finish
      timers.push(clock.after(drainTimeoutMs, () => { finish('timed-out') }))
      const check = (): void => { if (tasks.busy === 0) finish('drained') }
      timers.push(clock.every(DRAIN_POLL_MS, check))
      check()
    })
    if (outcome === 'drained') log.info('drained: every attempt finished')
    else log.warn({ attempts: tasks.busy, why: outcome }, 'drain cut short: the attempts still running stop here and run again elsewhere')
    // Stops what still runs (unreported) and passes the last updates on to the holders.
    let cancelWait = (): void => {}
    await Promise.race([tasks.stop(), new Promise<void>(resolve => { cancelWait = clock.after(HAND_OFF_MS, resolve) })])
    cancelWait()
    await cluster.announceLeft()
    log.info('left the cluster')
    await this.#parts.stopNode()
    return outcome
  }
}
