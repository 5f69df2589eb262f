/**
 * The task state machine, pure. A task moves
 * `queued -> assigned -> running -> succeeded | failed | cancelled`, with
 * `retrying` (backoff) between attempts; a delayed task is `scheduled` (its
 * spec's `runAt`) before it is `queued`, and a task with parents
 * (`dependsOn`) is `waiting` until they all succeeded (src/core/dependencies.ts). A user's retry of a failed or
 * cancelled task opens a new generation (`retries`): every update carries
 * its generation, and a newer generation beats anything of an older one, a
 * terminal record included (see retryOf). Updates may arrive late, twice or
 * out of order; `mergeUpdate` orders them by (attempt, phase) so every holder
 * converges on the same record. A terminal record ends the task. Two
 * different terminal records of one task can exist only after a fault (two
 * attempts that both ran to their end, or two leaders on the two sides of a
 * partition): holders then keep the one `terminalBeats` ranks first (a
 * success over a cancellation over a failure, then the earliest attempt), so
 * that every holder ends with the same record whatever order they came in.
 */

import type { TickStamp } from './schedules.ts'

export type TaskStatus = 'waiting' | 'scheduled' | 'queued' | 'assigned' | 'running' | 'retrying' | 'succeeded' | 'failed' | 'cancelled'

export const TASK_STATUSES: readonly TaskStatus[] = ['waiting', 'scheduled', 'queued', 'assigned', 'running', 'retrying', 'succeeded', 'failed', 'cancelled']

export function isTerminal (s: TaskStatus): s is 'succeeded' | 'failed' | 'cancelled' {
  return s === 'succeeded' || s === 'failed' || s === 'cancelled'
}

/** What a submitter asked for; fixed once accepted. */
export interface TaskSpec {
  id: string
  type: string
  payload: unknown
  /** Higher runs first; FIFO within a priority. */
  priority: number
  timeoutMs: number
  maxAttempts: number
  idempotencyKey: string | null
  createdAt: number
  /** Member id of the node that accepted the task. */
  origin: string
  /** Other members holding a durable copy (with the origin: the task's holders). */
  replicas: string[]
  /** How long its record is kept once it ended (absent: the holder's retainFinishedMs). */
  retainMs?: number
  /** Durable copies stored before it was accepted (1 on a lone node, else 2; absent in records stored before this was kept). */
  copies?: number
  /** A delayed task: not dispatched before this Unix ms (on the leader's clock). Absent: at once. */
  runAt?: number
  /** Times a user retried the task after it ended (its generation; absent: 0). A retry may also change maxAttempts. */
  retries?: number
  /** Its parents: it runs once every one of them succeeded, and fails when one fails or is cancelled (absent: none). */
  dependsOn?: string[]
  /**
   * The parents' results, by parent id: set by the leader when it releases
   * the task (all its parents succeeded, which is final within a
   * generation), carried in its assignment (the handler's `ctx.parents`) and
   * in the update that releases it, so its holders' record shows them too
   * (see TaskProgress.parents). A spec that carries them runs without
   * waiting; a user's retry drops them, and the task waits again.
   */
  parents?: Record<string, unknown>
  /** A task fired by a recurring schedule: which one, the tick it stands for, and how late it was fired. */
  schedule?: TickStamp
  /** Labels a worker must have to run it (`*`: any value of the key; see labels.ts). Absent: any worker. */
  require?: Record<string, string>
  /** Where the task's final record is POSTed once it ends (see src/core/callbacks.ts). Absent: nowhere but the config's webhooks. */
  callback?: TaskCallback
}

/** A completion callback asked for on submit: an http(s) URL, and headers sent with each delivery. */
export interface TaskCallback {
  url: string
  headers?: Record<string, string>
}

/** What changes as the task runs. */
export interface TaskProgress {
  status: TaskStatus
  /** Attempts started so far (the current attempt's number while it runs). */
  attempts: number
  /** Member id of the worker of the current or last attempt. */
  worker: string | null
  progress: unknown
  result: unknown
  error: string | null
  startedAt: number | null
  finishedAt: number | null
  /**
   * The generation (user retries) the change belongs to, and that
   * generation's maxAttempts: both set only on a retried task (retries > 0).
   */
  retries?: number
  maxAttempts?: number
  /**
   * A task with parents, once released: their results (see
   * TaskSpec.parents). Set by the update that releases it, and kept by every
   * later update of the same generation (they need not carry it).
   */
  parents?: Record<string, unknown>
}

export type TaskRecord = TaskSpec & TaskProgress

/** A change to a task, as sent to its holders. */
export type TaskUpdate = { id: string } & TaskProgress

export function newRecord (spec: TaskSpec): TaskRecord {
  return { ...spec, status: hasParents(spec) && spec.parents === undefined ? 'waiting' : isDelayed(spec) ? 'scheduled' : 'queued', attempts: 0, worker: null, progress: null, result: null, error: null, startedAt: null, finishedAt: null }
}

/** The task waits for its runAt before it is first queued (a spec only carries a runAt later than its createdAt). */
export function isDelayed (spec: Pick<TaskSpec, 'runAt' | 'createdAt'>): boolean {
  return spec.runAt !== undefined && spec.runAt > spec.createdAt
}

/** The task has parents it waits for (see src/core/dependencies.ts). */
export function hasParents (spec: Pick<TaskSpec, 'dependsOn'>): boolean {
  return spec.dependsOn !== undefined && spec.dependsOn.length > 0
}

/** The generation fields an update of this task carries: none until a user retried it. */
export function generationOf (t: { retries?: number, maxAttempts?: number }): { retries?: number, maxAttempts?: number } {
  if ((t.retries ?? 0) === 0) return {}
  return t.maxAttempts === undefined ? { retries: t.retries } : { retries: t.retries, maxAttempts: t.maxAttempts }
}

/**
 * Order within one attempt: an attempt is assigned, runs, and (if it fails
 * with attempts left) is followed by `retrying`; the next attempt has a
 * higher number. (`queued` after a retry's backoff carries the same attempt
 * number and ranks lowest, so holders show `retrying` until the next attempt.)
 */
const PHASE: Record<TaskStatus, number> = { waiting: 0, scheduled: 1, queued: 2, assigned: 3, running: 4, retrying: 5, succeeded: 6, failed: 6, cancelled: 6 }

/**
 * Applies `update` to `rec` if it is newer; returns the merged record, or
 * null when the update is stale or the record is already terminal.
 * A progress report (same attempt, running) is newer when it carries a value.
 */
export function mergeUpdate (rec: TaskProgress, update: TaskProgress): TaskProgress | null {
  // A user's retry opened a newer generation: it beats the older one's ending, and nothing of the older one counts.
  const genRec = rec.retries ?? 0
  const genUpdate = update.retries ?? 0
  if (genRec !== genUpdate) return genUpdate > genRec ? progressOf(update) : null
  const merged = mergeSameGeneration(rec, update)
  // The parents' results, once set in this generation, stay (an update may carry them, or not).
  if (merged === null) return rec.parents === undefined && update.parents !== undefined ? { ...progressOf(rec), parents: update.parents } : null
  return merged.parents === undefined && rec.parents !== undefined ? { ...merged, parents: rec.parents } : merged
}

function mergeSameGeneration (rec: TaskProgress, update: TaskProgress): TaskProgress | null {
  if (isTerminal(rec.status)) return isTerminal(update.status) && terminalBeats(update, rec) ? progressOf(update) : null
  if (isTerminal(update.status)) return progressOf(update)
  if (update.attempts !== rec.attempts) return update.attempts > rec.attempts ? progressOf(update) : null
  const a = PHASE[rec.status]
  const b = PHASE[update.status]
  if (b > a) return progressOf(update)
  if (b === a && update.status === 'running' && update.progress !== null && update.progress !== rec.progress) {
    return { ...progressOf(rec), progress: update.progress }
  }
  return null
}

/** Only the fields that change as a task runs (an update may be a whole record). */
export function progressOf (u: TaskProgress): TaskProgress {
  return { status: u.status, attempts: u.attempts, worker: u.worker, progress: u.progress, result: u.result, error: u.error, startedAt: u.startedAt, finishedAt: u.finishedAt, ...generationOf(u), ...(u.parents === undefined ? {} : { parents: u.parents }) }
}

/** A record's current state as an update that holders can merge. */
export function updateOf (r: { id: string } & TaskProgress): TaskUpdate {
  return { id: r.id, ...progressOf(r) }
}

/** Of two updates of one task waiting to be sent, the one to keep: `u` merged over `prev` (see mergeUpdate). */
export function newestUpdate (prev: TaskUpdate | undefined, u: TaskUpdate): TaskUpdate {
  if (prev === undefined) return u
  const merged = mergeUpdate(prev, u)
  return merged === null ? prev : { ...merged, id: u.id }
}

const TERMINAL_RANK: Partial<Record<TaskStatus, number>> = { succeeded: 0, cancelled: 1, failed: 2 }

/**
 * The tie-breaking keys of terminalBeats, in order, each with the field it is
 * made of: a key is built only when the ones before it tie and the two
 * records' fields differ (the same ending heard twice, as holders hear each
 * one, builds none).
 */
const TERMINAL_KEYS: ReadonlyArray<readonly [(r: TaskProgress) => unknown, (r: TaskProgress) => string]> = [
  [r => r.worker, r => r.worker ?? '\uffff'],
  [r => r.finishedAt, r => String(r.finishedAt ?? Number.MAX_SAFE_INTEGER).padStart(20, '0')],
  [r => r.error, r => r.error ?? ''],
  [r => r.result, r => JSON.stringify(r.result) ?? ''],
  [r => r.startedAt, r => String(r.startedAt ?? -1).padStart(20, '0')],
  [r => r.progress, r => JSON.stringify(r.progress) ?? '']
]

/**
 * A total order of terminal records (true when `a` ranks strictly before
 * `b`): the result of work done beats a cancellation, which beats a failure;
 * then the earliest attempt, then the worker, the end time, the error and the
 * result, so that no two different records tie.
 */
export function terminalBeats (a: TaskProgress, b: TaskProgress): boolean {
  if ((a.retries ?? 0) !== (b.retries ?? 0)) return (a.retries ?? 0) > (b.retries ?? 0)
  const ra = TERMINAL_RANK[a.status] ?? 3
  const rb = TERMINAL_RANK[b.status] ?? 3
  if (ra !== rb) return ra < rb
  if (a.attempts !== b.attempts) return a.attempts < b.attempts
  for (const [field, key] of TERMINAL_KEYS) {
    if (field(a) === field(b)) continue
    const x = key(a)
    const y = key(b)
    if (x !== y) return x < y
  }
  return false
}

/** Exponential backoff before attempt `attempt + 1`: base x 2^(attempt-1), capped. */
export function retryDelayMs (attempt: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1))
}

/** The update that ends a task whose last attempt was lost with its worker or leader. */
export function lostAttemptUpdate (spec: Pick<TaskSpec, 'id' | 'retries' | 'maxAttempts'>, attempts: number, nowMs: number): TaskUpdate {
  return { id: spec.id, status: 'failed', attempts, worker: null, progress: null, result: null, error: `attempt ${attempts} was lost with its worker or leader, and no attempts remain`, startedAt: null, finishedAt: nowMs, ...generationOf(spec) }
}

/** The spec part of a record: what travels in a hand-over, an inventory or an assignment. */
export function specOf (r: TaskSpec): TaskSpec {
  return { id: r.id, type: r.type, payload: r.payload, priority: r.priority, timeoutMs: r.timeoutMs, maxAttempts: r.maxAttempts, idempotencyKey: r.idempotencyKey, createdAt: r.createdAt, origin: r.origin, replicas: r.replicas, ...extrasOf(r) }
}

/** Copies stored before the task was accepted (a record stored before they were counted: its holders, at most 2). */
export function copiesOf (r: TaskSpec): number {
  return r.copies ?? Math.min(2, 1 + r.replicas.length)
}

/** The optional spec fields a record carries, only when set (so a spec never holds an undefined field). */
export function extrasOf (r: TaskSpec): Pick<TaskSpec, 'retainMs' | 'copies' | 'runAt' | 'retries' | 'schedule' | 'require' | 'callback' | 'dependsOn' | 'parents'> {
  const out: Pick<TaskSpec, 'retainMs' | 'copies' | 'runAt' | 'retries' | 'schedule' | 'require' | 'callback' | 'dependsOn' | 'parents'> = {}
  if (r.retainMs !== undefined) out.retainMs = r.retainMs
  if (r.copies !== undefined) out.copies = r.copies
  if (r.runAt !== undefined) out.runAt = r.runAt
  if (r.retries !== undefined && r.retries > 0) out.retries = r.retries
  if (r.schedule !== undefined) out.schedule = r.schedule
  if (r.require !== undefined) out.require = r.require
  if (r.callback !== undefined) out.callback = r.callback
  if (r.dependsOn !== undefined && r.dependsOn.length > 0) out.dependsOn = r.dependsOn
  if (r.parents !== undefined) out.parents = r.parents
  return out
}

/** Statuses a user may retry: the task ended without succeeding. */
export function isRetryable (s: TaskStatus): s is 'failed' | 'cancelled' {
  return s === 'failed' || s === 'cancelled'
}

export type RetryVerdict =
  | { ok: true, spec: TaskSpec, attempts: number, update: TaskUpdate }
  | { ok: false, reason: 'not-retryable' | 'bad-max-attempts', message: string }

/**
 * A user's retry of a failed or cancelled task, decided by the leader: the
 * same task in a new generation (`retries` + 1), queued again with the
 * attempts it has used (the next attempt continues their numbering).
 * `maxAttempts` is the task's new total; absent, the retry gives the task
 * its previous maxAttempts once more on top of the attempts used. A delayed
 * task retried before its runAt (cancelled while scheduled) waits for it again;
 * a task with parents waits for them again.
 */
export function retryOf (rec: TaskRecord, maxAttempts: number | undefined, limit: number, nowMs: number): RetryVerdict {
  if (!isRetryable(rec.status)) return { ok: false, reason: 'not-retryable', message: `task "${rec.id}" is ${rec.status}; only a failed or cancelled task can be retried` }
  const max = maxAttempts ?? Math.min(limit, rec.attempts + rec.maxAttempts)
  if (max <= rec.attempts) return { ok: false, reason: 'bad-max-attempts', message: `maxAttempts ${max} leaves no attempt: the task has used ${rec.attempts} (give more than ${rec.attempts})` }
  const retries = (rec.retries ?? 0) + 1
  const { parents: _, ...spec0 } = specOf(rec)
  const spec: TaskSpec = { ...spec0, maxAttempts: max, retries }
  // A task with parents waits for them again (the leader looks at them at once: a parent still failed fails it again).
  const status = hasParents(rec) ? 'waiting' : rec.attempts === 0 && isDelayed(rec) && rec.runAt! > nowMs ? 'scheduled' : 'queued'
  const update: TaskUpdate = { id: rec.id, status, attempts: rec.attempts, worker: null, progress: null, result: null, error: null, startedAt: null, finishedAt: null, retries, maxAttempts: max }
  return { ok: true, spec, attempts: rec.attempts, update }
}
