/**
 * Task dependencies, pure. A task may name parents (`dependsOn`): it is
 * `waiting` until every parent succeeded, then runs with their results
 * (`parents`, by id); when a parent fails or is cancelled it fails at once,
 * with an error naming that parent.
 *
 * - `planBatch` checks the graph of one batch submit, whose items may name
 *   one another by a local `ref`: refs are unique, and the graph has no cycle
 *   (a task can only name existing tasks or tasks of its own batch, so a cycle
 *   can only be within a batch).
 * - `DependencyGate` is the leader's: it holds the waiting tasks, is told
 *   each parent's ending, and decides which tasks are released (to the
 *   Scheduler) and which fail. It keeps nothing durable: a new leader
 *   rebuilds it from the held tasks (their `dependsOn`) and the parents'
 *   records.
 *
 * A child fails only for an ending its parent's holders recorded. A failure
 * or a cancel that the leader decides is not that yet: a worker sends an
 * attempt's ending to the task's holders itself, so a success the leader
 * has not heard of (the assignment's reply was lost, the report is late)
 * may already be on every holder, and there it beats the leader's cancel or
 * failure (terminalBeats). So `decided` (the leader's own endings) releases
 * on a success but only asks, on a failure or a cancel, for the parent's
 * record to be looked up; `parentEnded` (a record read from a holder) fails
 * the children.
 */
import { generationOf, hasParents, isDelayed } from './tasks.ts'
import type { TaskSpec, TaskStatus, TaskUpdate } from './tasks.ts'

/** The most parents one task may name. */
export const MAX_PARENTS = 100

/** One batch item's dependency fields, as submitted. */
export interface BatchItemDeps {
  ref?: string
  dependsOn?: readonly string[]
}

/** Per item: the items of the same batch it depends on (indexes), and existing task ids it depends on. */
export interface ItemParents {
  local: number[]
  ids: string[]
}

export type BatchPlan = { ok: true, items: ItemParents[] } | { ok: false, message: string }

/**
 * The dependency graph of one batch: each `dependsOn` entry names a ref of
 * this batch (refs win over ids) or else an existing task id (checked by the
 * caller). Refused: a ref used twice, a task depending on itself, a cycle
 * (named by its refs), more than MAX_PARENTS parents. An entry named twice
 * counts once.
 */
export function planBatch (items: readonly BatchItemDeps[]): BatchPlan {
  const byRef = new Map<string, number>()
  for (const [i, it] of items.entries()) {
    if (it.ref === undefined) continue
    if (byRef.has(it.ref)) return { ok: false, message: `ref "${it.ref}" is used by tasks[${byRef.get(it.ref)!}] and tasks[${i}]; refs must be unique within a batch` }
    byRef.set(it.ref, i)
  }
  const out: ItemParents[] = []
  for (const [i, it] of items.entries()) {
    const names = [...new Set(it.dependsOn ?? [])]
    if (names.length > MAX_PARENTS) return { ok: false, message: `${where(items, i)} depends on ${names.length} tasks; at most ${MAX_PARENTS}` }
    const local: number[] = []
    const ids: string[] = []
    for (const name of names) {
      const j = byRef.get(name)
      if (j === i) return { ok: false, message: `${where(items, i)} depends on itself` }
      if (j === undefined) ids.push(name)
      else local.push(j)
    }
    out.push({ local, ids })
  }
  const cycle = findCycle(out.map(p => p.local))
  if (cycle !== null) return { ok: false, message: `dependsOn forms a cycle: ${[...cycle, cycle[0]!].map(i => items[i]!.ref ?? `tasks[${i}]`).join(' -> ')}` }
  return { ok: true, items: out }
}

function where (items: readonly BatchItemDeps[], i: number): string {
  const ref = items[i]!.ref
  return ref === undefined ? `tasks[${i}]` : `tasks[${i}] (ref "${ref}")`
}

/** A cycle of the graph (node -> the nodes it depends on), as the nodes along it; null when there is none. Iterative DFS. */
export function findCycle (edges: ReadonlyArray<readonly number[]>): number[] | null {
  const state = new Uint8Array(edges.length) // 0 new, 1 on the path, 2 done
  for (let root = 0; root < edges.length; root++) {
    if (state[root] !== 0) continue
    const path: number[] = [root]
    const next: number[] = [0]
    state[root] = 1
    while (path.length > 0) {
      const node = path[path.length - 1]!
      const k = next[next.length - 1]!
      const out = edges[node]!
      if (k >= out.length) {
        state[node] = 2
        path.pop()
        next.pop()
        continue
      }
      next[next.length - 1] = k + 1
      const to = out[k]!
      if (state[to] === 1) return path.slice(path.indexOf(to))
      if (state[to] === 0) {
        state[to] = 1
        path.push(to)
        next.push(0)
      }
    }
  }
  return null
}

/** A parent's ending as the gate needs it (a holder's record, or this leader's decision: see `decided`). */
export interface ParentEnding {
  id: string
  status: TaskStatus
  result: unknown
  error: string | null
}

/** What a parent's ending (or a cancel) decided. */
export interface GateDecisions {
  /** Tasks whose parents all succeeded: their spec now carries `parents`; to be queued with `attempts`, and their holders told `update`. */
  released: Array<{ spec: TaskSpec, attempts: number, update: TaskUpdate }>
  /** Ends of tasks a parent failed or was cancelled for (they are parents in turn: pass them back in). */
  failed: TaskUpdate[]
}

interface Waiting {
  spec: TaskSpec
  attempts: number
  /** Parents not yet known to have succeeded. */
  open: Set<string>
  /** Results of the parents that succeeded. */
  results: Map<string, unknown>
}

/**
 * The leader's waiting tasks. `add` takes a task with parents (one whose
 * spec carries no `parents` yet); `decided` is told each ending the leader
 * decides, `parentEnded` each parent's record looked up on its holders;
 * `openParents` lists what to look up.
 */
export class DependencyGate {
  readonly #waiting = new Map<string, Waiting>()
  /** parent id -> ids of the waiting tasks that name it. */
  readonly #children = new Map<string, Set<string>>()

  /** Tasks waiting for their parents. */
  get size (): number { return this.#waiting.size }

  has (id: string): boolean { return this.#waiting.has(id) }

  /** A task this gate must hold: it has parents, and no leader released it yet in this generation. */
  static gates (spec: TaskSpec): boolean {
    return hasParents(spec) && spec.parents === undefined
  }

  /**
   * Holds a task until its parents ended. False when it already holds the
   * task in the same or a newer generation (a newer one replaces it).
   */
  add (spec: TaskSpec, attempts: number): boolean {
    const held = this.#waiting.get(spec.id)
    if (held !== undefined) {
      if ((spec.retries ?? 0) <= (held.spec.retries ?? 0)) return false
      this.remove(spec.id)
    }
    const open = new Set(spec.dependsOn ?? [])
    this.#waiting.set(spec.id, { spec, attempts, open, results: new Map() })
    for (const p of open) {
      const set = this.#children.get(p) ?? new Set()
      set.add(spec.id)
      this.#children.set(p, set)
    }
    return true
  }

  /** Stops holding a task (a cancel, a lost leadership); returns its spec and attempts. */
  remove (id: string): { spec: TaskSpec, attempts: number } | undefined {
    const w = this.#waiting.get(id)
    if (w === undefined) return undefined
    this.#waiting.delete(id)
    for (const p of w.open) this.#unlink(p, id)
    return { spec: w.spec, attempts: w.attempts }
  }

  /** A cancel of a waiting task: its end (null when not held here). */
  cancel (id: string, nowMs: number): TaskUpdate | null {
    const w = this.remove(id)
    return w === undefined ? null : endOf(w.spec, w.attempts, 'cancelled', 'cancelled by request', nowMs)
  }

  /** Parents some waiting task still waits for (to look up when no one here decides them). */
  openParents (): string[] {
    return [...this.#children.keys()]
  }

  /**
   * An ending this leader decided and sent to the parent's holders, not yet
   * recorded there. A success is the parent's ending wherever it goes (only
   * another success could beat it): as parentEnded. A failure or a cancel
   * may lose there to a success the leader never heard of, so it decides
   * nothing yet: `confirm` is true when some waiting task names this parent,
   * whose record is then to be read from its holders and passed to
   * parentEnded.
   */
  decided (parent: ParentEnding, nowMs: number): GateDecisions & { confirm: boolean } {
    if (parent.status === 'succeeded') return { ...this.parentEnded(parent, nowMs), confirm: false }
    const confirm = (parent.status === 'failed' || parent.status === 'cancelled') && this.#children.has(parent.id)
    return { released: [], failed: [], confirm }
  }

  /**
   * A parent ended, as a holder recorded it: tasks whose last open parent
   * succeeded are released with every parent's result; tasks naming a
   * parent that failed or was cancelled fail, naming it. An unfinished
   * status changes nothing.
   */
  parentEnded (parent: ParentEnding, nowMs: number): GateDecisions {
    const out: GateDecisions = { released: [], failed: [] }
    if (parent.status !== 'succeeded' && parent.status !== 'failed' && parent.status !== 'cancelled') return out
    const children = this.#children.get(parent.id)
    if (children === undefined) return out
    for (const id of [...children]) {
      const w = this.#waiting.get(id)
      if (w === undefined) continue
      if (parent.status !== 'succeeded') {
        this.remove(id)
        const why = parent.status === 'cancelled' ? 'was cancelled' : `failed${parent.error === null ? '' : `: ${parent.error}`}`
        out.failed.push(endOf(w.spec, w.attempts, 'failed', `parent task "${parent.id}" ${why}`, nowMs))
        continue
      }
      w.open.delete(parent.id)
      w.results.set(parent.id, parent.result)
      this.#unlink(parent.id, id)
      if (w.open.size > 0) continue
      this.#waiting.delete(id)
      const parents: Record<string, unknown> = {}
      for (const p of w.spec.dependsOn ?? []) parents[p] = w.results.get(p) ?? null
      const spec: TaskSpec = { ...w.spec, parents }
      const status = w.attempts === 0 && isDelayed(spec) && spec.runAt! > nowMs ? 'scheduled' : 'queued'
      out.released.push({ spec, attempts: w.attempts, update: { id, status, attempts: w.attempts, worker: null, progress: null, result: null, error: null, startedAt: null, finishedAt: null, ...generationOf(w.spec), parents } })
    }
    return out
  }

  clear (): void {
    this.#waiting.clear()
    this.#children.clear()
  }

  #unlink (parent: string, child: string): void {
    const set = this.#children.get(parent)
    if (set === undefined) return
    set.delete(child)
    if (set.size === 0) this.#children.delete(parent)
  }
}

function endOf (spec: TaskSpec, attempts: number, status: 'failed' | 'cancelled', error: string, nowMs: number): TaskUpdate {
  return { id: spec.id, status, attempts, worker: null, progress: null, result: null, error, startedAt: null, finishedAt: nowMs, ...generationOf(spec) }
}
