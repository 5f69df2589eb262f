/**
 * The task state machine, pure. A task moves
 * `queued -> assigned -> running -> succeeded | failed | cancelled`, with
 * `retrying` (backoff) between attempts. Updates may arrive late, twice or
 * out of order; `mergeUpdate` orders them by (attempt, phase) so every holder
 * converges on the same record. A terminal record ends the task. Two
 * different terminal records of one task can exist only after a fault (two
 * attempts that both ran to their end, or two leaders on the two sides of a
 * partition): holders then keep the one `terminalBeats` ranks first (a
 * success over a cancellation over a failure, then the earliest attempt), so
 * that every holder ends with the same record whatever order they came in.
 */

export type TaskStatus = 'queued' | 'assigned' | 'running' | 'retrying' | 'succeeded' | 'failed' | 'cancelled'

export const TASK_STATUSES: readonly TaskStatus[] = ['queued', 'assigned', 'running', 'retrying', 'succeeded', 'failed', 'cancelled']

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
}

export type TaskRecord = TaskSpec & TaskProgress

/** A change to a task, as sent to its holders. */
export type TaskUpdate = { id: string } & TaskProgress

export function newRecord (spec: TaskSpec): TaskRecord {
  return { ...spec, status: 'queued', attempts: 0, worker: null, progress: null, result: null, error: null, startedAt: null, finishedAt: null }
}

/**
 * Order within one attempt: an attempt is assigned, runs, and (if it fails
 * with attempts left) is followed by `retrying`; the next attempt has a
 * higher number. (`queued` after a retry's backoff carries the same attempt
 * number and ranks lowest, so holders show `retrying` until the next attempt.)
 */
const PHASE: Record<TaskStatus, number> = { queued: 0, assigned: 1, running: 2, retrying: 3, succeeded: 4, failed: 4, cancelled: 4 }

/**
 * Applies `update` to `rec` if it is newer; returns the merged record, or
 * null when the update is stale or the record is already terminal.
 * A progress report (same attempt, running) is newer when it carries a value.
 */
export function mergeUpdate (rec: TaskProgress, update: TaskProgress): TaskProgress | null {
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
  return { status: u.status, attempts: u.attempts, worker: u.worker, progress: u.progress, result: u.result, error: u.error, startedAt: u.startedAt, finishedAt: u.finishedAt }
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
 * A total order of terminal records (true when `a` ranks strictly before
 * `b`): the result of work done beats a cancellation, which beats a failure;
 * then the earliest attempt, then the worker, the end time, the error and the
 * result, so that no two different records tie.
 */
export function terminalBeats (a: TaskProgress, b: TaskProgress): boolean {
  const ra = TERMINAL_RANK[a.status] ?? 3
  const rb = TERMINAL_RANK[b.status] ?? 3
  if (ra !== rb) return ra < rb
  if (a.attempts !== b.attempts) return a.attempts < b.attempts
  const keys: Array<[string, string]> = [
    [a.worker ?? '\uffff', b.worker ?? '\uffff'],
    [String(a.finishedAt ?? Number.MAX_SAFE_INTEGER).padStart(20, '0'), String(b.finishedAt ?? Number.MAX_SAFE_INTEGER).padStart(20, '0')],
    [a.error ?? '', b.error ?? ''],
    [JSON.stringify(a.result) ?? '', JSON.stringify(b.result) ?? ''],
    [String(a.startedAt ?? -1).padStart(20, '0'), String(b.startedAt ?? -1).padStart(20, '0')],
    [JSON.stringify(a.progress) ?? '', JSON.stringify(b.progress) ?? '']
  ]
  for (const [x, y] of keys) if (x !== y) return x < y
  return false
}

/** Exponential backoff before attempt `attempt + 1`: base x 2^(attempt-1), capped. */
export function retryDelayMs (attempt: number, baseMs: number, maxMs: number): number {
  return Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1))
}

/** The update that ends a task whose last attempt was lost with its worker or leader. */
export function lostAttemptUpdate (id: string, attempts: number, nowMs: number): TaskUpdate {
  return { id, status: 'failed', attempts, worker: null, progress: null, result: null, error: `attempt ${attempts} was lost with its worker or leader, and no attempts remain`, startedAt: null, finishedAt: nowMs }
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
export function extrasOf (r: TaskSpec): Pick<TaskSpec, 'retainMs' | 'copies'> {
  const out: Pick<TaskSpec, 'retainMs' | 'copies'> = {}
  if (r.retainMs !== undefined) out.retainMs = r.retainMs
  if (r.copies !== undefined) out.copies = r.copies
  return out
}
