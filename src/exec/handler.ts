/** The contract of a task handler: a default-exported async function `(payload, ctx) => result`. */
export interface HandlerContext {
  /** Reports progress (any JSON value, e.g. a fraction or `{done, total}`). */
  progress: (value: unknown) => void
  /** Aborted when the task is cancelled or times out; long work should watch it. */
  signal: AbortSignal
  /** Task id and attempt number, for logging or idempotent side effects. */
  taskId: string
  attempt: number
  /** A task with parents (`dependsOn`): each parent's result, by parent id ({} for a task without parents). */
  parents: Record<string, unknown>
}

export type Handler = (payload: unknown, ctx: HandlerContext) => unknown
