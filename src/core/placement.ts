/**
 * Where the leader places a task, pure: on the task's origin when it runs
 * the type and has a slot free (not just room in its window): it holds the
 * task, so its result is recorded there without a message, and a client
 * waiting at the origin hears at once. Otherwise on the least loaded worker
 * that runs the type and has room in its window, ties rotating from
 * `cursor` so that an idle cluster spreads work over every node.
 */
import type { WorkerSlots } from './scheduler.ts'
import type { TaskSpec } from './tasks.ts'

export interface PlacementLoad {
  /** Attempts placed on this worker and not yet heard the end of. */
  running: (worker: string) => number
  /** Attempts per slot a worker may hold of this type. */
  window: (type: string) => number
}

export function placeTask (workers: readonly WorkerSlots[], spec: Pick<TaskSpec, 'type' | 'origin'>, load: PlacementLoad, cursor: number): WorkerSlots | null {
  const { type } = spec
  const origin = workers.find(w => w.id === spec.origin)
  if (origin !== undefined && origin.types.includes(type) && load.running(origin.id) < origin.capacity) return origin
  let best: WorkerSlots | null = null
  let bestLoad = Infinity
  const n = workers.length
  for (let k = 0; k < n; k++) {
    const w = workers[(cursor + k) % n]!
    if (!w.types.includes(type)) continue
    const used = load.running(w.id)
    if (used >= w.capacity * load.window(type)) continue
    const share = used / w.capacity
    if (share < bestLoad) { best = w; bestLoad = share }
  }
  return best
}
