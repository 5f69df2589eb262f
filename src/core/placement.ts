/**
 * Where the leader places a task, pure. Only a worker that runs the task's
 * type, meets its required labels (src/core/labels.ts) and has room in its
 * window is a candidate; the `placement` setting chooses among them:
 * - `least-loaded` (the default): the task's origin when it is a candidate
 *   with a slot free (not just room in its window): it holds the task, so
 *   its result is recorded there without a message, and a client waiting at
 *   the origin hears at once. Otherwise the candidate with the smallest share
 *   of its slots in use, ties rotating so that an idle cluster spreads work
 *   over every node.
 * - `round-robin`: the next candidate after the one placed on last, in the
 *   order of member ids, whatever their load.
 * - `most-free-slots`: the candidate with the most slots not in use
 *   (capacity - attempts placed there), so that large nodes fill first; ties
 *   rotate.
 */
import { matchesLabels } from './labels.ts'
import type { Labels } from './labels.ts'
import type { TaskSpec } from './tasks.ts'

export const PLACEMENT_STRATEGIES = ['least-loaded', 'round-robin', 'most-free-slots'] as const
export type PlacementStrategy = typeof PLACEMENT_STRATEGIES[number]

/** A worker as placement sees it (its labels from its heartbeats). */
export interface PlacementWorker {
  id: string
  capacity: number
  types: readonly string[]
  labels?: Labels
}

export interface PlacementLoad {
  /** Attempts placed on this worker and not yet heard the end of. */
  running: (worker: string) => number
  /** Attempts per slot a worker may hold of this type. */
  window: (type: string) => number
}

type Placed = Pick<TaskSpec, 'type' | 'origin' | 'require'>

/** True when `w` runs the task's type and meets its required labels. */
export function canRun (w: PlacementWorker, spec: Pick<TaskSpec, 'type' | 'require'>): boolean {
  return w.types.includes(spec.type) && matchesLabels(w.labels, spec.require)
}

/** A placement strategy with its rotation state (the leader keeps one per term). */
export class Placement {
  readonly strategy: PlacementStrategy
  /** Where ties start (least-loaded, most-free-slots): moves on by one per placement. */
  #cursor = 0
  /** The worker round-robin placed on last. */
  #last: string | null = null

  constructor (strategy: PlacementStrategy = 'least-loaded') {
    this.strategy = strategy
  }

  /** The worker to place `spec` on, or null when no candidate has room. `workers` come sorted by id. */
  place <W extends PlacementWorker>(workers: readonly W[], spec: Placed, load: PlacementLoad): W | null {
    if (workers.length === 0) return null
    const cursor = this.#cursor
    this.#cursor = (cursor + 1) % workers.length
    const hasRoom = (w: W): boolean => load.running(w.id) < w.capacity * load.window(spec.type)
    switch (this.strategy) {
      case 'round-robin': {
        const after = this.#last === null ? 0 : workers.findIndex(w => w.id > this.#last!)
        const start = after < 0 ? 0 : after
        for (let k = 0; k < workers.length; k++) {
          const w = workers[(start + k) % workers.length]!
          if (canRun(w, spec) && hasRoom(w)) { this.#last = w.id; return w }
        }
        return null
      }
      case 'most-free-slots':
        return best(workers, cursor, w => canRun(w, spec) && hasRoom(w), w => -(w.capacity - load.running(w.id)))
      case 'least-loaded': {
        const origin = workers.find(w => w.id === spec.origin)
        if (origin !== undefined && canRun(origin, spec) && load.running(origin.id) < origin.capacity) return origin
        return best(workers, cursor, w => canRun(w, spec) && hasRoom(w), w => load.running(w.id) / w.capacity)
      }
    }
  }
}

/** The candidate with the lowest score, looking from `cursor` on (the first found wins a tie). */
function best <W extends PlacementWorker>(workers: readonly W[], cursor: number, candidate: (w: W) => boolean, score: (w: W) => number): W | null {
  let found: W | null = null
  let lowest = Infinity
  for (let k = 0; k < workers.length; k++) {
    const w = workers[(cursor + k) % workers.length]!
    if (!candidate(w)) continue
    const s = score(w)
    if (s < lowest) { found = w; lowest = s }
  }
  return found
}
