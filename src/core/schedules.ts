/**
 * Recurring schedules, the pure part: when a schedule's ticks fall (a cron
 * expression in a time zone, or every N ms from an anchor), which ticks are
 * due and which of those are fired late or skipped, the idempotency key of a
 * tick's task, and which of two versions of a schedule wins. No clock is
 * read: every function takes the times it needs. Cron expressions are parsed
 * by croner (time zones through Intl, daylight-saving gaps and repeats
 * handled: a fixed time in a gap fires once, just after it).
 */
import { Cron } from 'croner'

/** The task a schedule fires at each tick (the submit body, less what a tick decides). */
export interface ScheduledTask {
  type: string
  payload?: unknown
  priority?: number
  timeoutMs?: number
  maxAttempts?: number
  retainMs?: number
}

/** When a schedule's ticks fall: exactly one of `cron` (with an optional IANA `timezone`, default UTC) and `everyMs`. */
export interface ScheduleTrigger {
  cron?: string
  timezone?: string
  everyMs?: number
}

/** A schedule as stored on every member. */
export interface ScheduleDef extends ScheduleTrigger {
  name: string
  task: ScheduledTask
  paused: boolean
  /** Set by DELETE: kept (with its version) so that it wins over older copies; fires nothing. */
  deleted?: boolean
  /** Unix ms of the PUT that made this definition: `everyMs` ticks fall at anchor + k × everyMs (k ≥ 1). */
  anchor: number
  /** Only ticks after this Unix ms count (the PUT, or the resume: a pause's ticks are not caught up). */
  from: number
  /** Orders versions (Unix ms of the change, moved past any version held); ties by `by`. */
  version: number
  /** Member that made the change. */
  by: string
}

/**
 * How far the leader has fired a schedule: its latest tick fired (every
 * earlier one was fired or skipped). Whatever version of the definition: a
 * new one counts ticks from its own `from` only.
 */
export interface ScheduleProgress {
  name: string
  lastTick: number
  /** Ticks skipped so far (more than MAX_CATCH_UP_TICKS missed at once). */
  skipped: number
}

/** The most missed ticks of one schedule fired late at once; older ones are skipped and counted. */
export const MAX_CATCH_UP_TICKS = 100
/** A tick fired more than this after its time is marked late on its task (also when its leader was in office then). */
export const LATE_AFTER_MS = 1_000
/** Skipped cron ticks are counted up to this many per catch-up (walking them costs time). */
const MAX_SKIPPED_COUNTED = 100_000
/** Shortest `everyMs`. */
export const MIN_EVERY_MS = 100

/** Whether `a` is a newer version of a schedule than `b`. */
export function newerDef (a: Pick<ScheduleDef, 'version' | 'by'>, b: Pick<ScheduleDef, 'version' | 'by'>): boolean {
  return a.version > b.version || (a.version === b.version && a.by > b.by)
}

/** Progress `a` is further along than `b`. */
export function newerProgress (a: ScheduleProgress, b: ScheduleProgress): boolean {
  return a.lastTick > b.lastTick || (a.lastTick === b.lastTick && a.skipped > b.skipped)
}

/** The idempotency key of a schedule's task for one tick: the same on every leader, so a tick is one task. */
export function tickKey (name: string, tickMs: number): string {
  return `schedule:${name}:${tickMs}`
}

const cronCache = new Map<string, Cron>()

function cronOf (expr: string, timezone: string | undefined): Cron {
  const key = `${timezone ?? 'UTC'}\n${expr}`
  let c = cronCache.get(key)
  if (c === undefined) {
    c = new Cron(expr, { timezone: timezone ?? 'UTC', mode: '5-or-6-parts', paused: true })
    if (cronCache.size >= 1_000) cronCache.delete(cronCache.keys().next().value!)
    cronCache.set(key, c)
  }
  return c
}

/** Why a trigger is not valid (null: it is): exactly one of cron and everyMs, a parsable expression, a known time zone. */
export function triggerProblem (t: ScheduleTrigger): string | null {
  if ((t.cron === undefined) === (t.everyMs === undefined)) return 'give exactly one of "cron" and "everyMs"'
  if (t.everyMs !== undefined) {
    if (t.timezone !== undefined) return '"timezone" goes with "cron" only'
    if (!Number.isSafeInteger(t.everyMs) || t.everyMs < MIN_EVERY_MS) return `"everyMs" must be an integer of at least ${MIN_EVERY_MS}`
    return null
  }
  if (t.timezone !== undefined) {
    try {
      // eslint-disable-next-line no-new
      new Intl.DateTimeFormat('en-US', { timeZone: t.timezone })
    } catch {
      return `unknown time zone "${t.timezone}" (an IANA name such as "Europe/Berlin")`
    }
  }
  try {
    cronOf(t.cron!, t.timezone)
  } catch (err) {
    return `invalid cron expression "${t.cron!}": ${(err as Error).message.replace(/^CronPattern: /, '')}`
  }
  return null
}

/** The schedule's first tick strictly after `afterMs` (null: none, e.g. a cron date that never comes again). */
export function nextTick (t: ScheduleTrigger & { anchor: number }, afterMs: number): number | null {
  if (t.everyMs !== undefined) {
    if (afterMs < t.anchor) return t.anchor + t.everyMs
    return t.anchor + (Math.floor((afterMs - t.anchor) / t.everyMs) + 1) * t.everyMs
  }
  const next = cronOf(t.cron!, t.timezone).nextRun(new Date(afterMs))
  return next === null ? null : next.getTime()
}

/** What the leader does with a schedule now: the ticks to fire (oldest first), and how many older ones it skips. */
export interface DueTicks { ticks: number[], skipped: number }

/**
 * The ticks of `def` after `lastTick` (and after the definition's `from`) up
 * to `nowMs`: each fires once, the missed ones late. More than `maxCatchUp`
 * missed at once (a cluster down for long): the newest `maxCatchUp` fire,
 * the older ones are skipped and counted. A paused or deleted schedule has
 * none.
 */
export function dueTicks (def: ScheduleDef, lastTick: number | null, nowMs: number, maxCatchUp = MAX_CATCH_UP_TICKS): DueTicks {
  if (def.paused || def.deleted === true) return { ticks: [], skipped: 0 }
  const after = Math.max(def.from, lastTick ?? -Infinity)
  if (def.everyMs !== undefined) {
    const first = nextTick(def, after)!
    if (first > nowMs) return { ticks: [], skipped: 0 }
    const count = Math.floor((nowMs - first) / def.everyMs) + 1
    const skipped = Math.max(0, count - maxCatchUp)
    const ticks: number[] = []
    for (let k = skipped; k < count; k++) ticks.push(first + k * def.everyMs)
    return { ticks, skipped }
  }
  // Usually none or one is due: walked forward from the last tick.
  const walked: number[] = []
  for (let t = nextTick(def, after); t !== null && t <= nowMs; t = nextTick(def, t)) {
    walked.push(t)
    if (walked.length > maxCatchUp) break
  }
  if (walked.length <= maxCatchUp) return { ticks: walked, skipped: 0 }
  // Many missed: the newest maxCatchUp up to now (croner walks back from now), and the older ones counted.
  const cron = cronOf(def.cron!, def.timezone)
  const ticks = cron.previousRuns(maxCatchUp, new Date(nowMs + 1)).map(d => d.getTime()).filter(t => t > after && t <= nowMs).reverse()
  let skipped = 0
  if (ticks.length === maxCatchUp) {
    for (let t = nextTick(def, after); t !== null && t < ticks[0]! && skipped < MAX_SKIPPED_COUNTED; t = nextTick(def, t)) skipped++
  }
  return { ticks, skipped }
}

/**
 * What a tick's task says of its firing: the schedule, the tick's time, when
 * it was fired and how late. `late`: the tick was missed (it fell before the
 * leader that fired it was ready to: a failover, a cluster restart) or fired
 * more than LATE_AFTER_MS after its time for another reason (e.g. a full queue).
 */
export interface TickStamp {
  name: string
  tick: number
  firedAt: number
  lateMs: number
  late: boolean
}

export function stampOf (name: string, tick: number, firedAt: number, leaderReadyAt: number): TickStamp {
  const lateMs = Math.max(0, firedAt - tick)
  return { name, tick, firedAt, lateMs, late: tick < leaderReadyAt || lateMs > LATE_AFTER_MS }
}
