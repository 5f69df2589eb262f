/**
 * A task-path trace for finding where a task's milliseconds go: with
 * TASKMESH_TRACE=<file>, every traced point appends one line
 * `<epoch ms with µs> <pid> <event> <task id>` to that file (the clock is
 * performance.timeOrigin + performance.now(), which compares across the
 * processes of one machine). Off (one boolean test per point) without it.
 * scripts/bench/trace.ts starts three nodes with it and sums a task's steps.
 */
import { closeSync, openSync, writeSync } from 'node:fs'

const file = process.env.TASKMESH_TRACE
let fd: number | null = null
if (file !== undefined && file !== '') {
  fd = openSync(file, 'a')
  process.once('exit', () => { if (fd !== null) closeSync(fd) })
}

/** Whether the trace is on (callers may skip building what it would write). */
export const tracing = fd !== null

/**
 * Appends one trace line (no-op without TASKMESH_TRACE). `kind` and `outcome`
 * are joined to the event with dots (`rpc.reply.assign.ok`) only when the
 * trace is on, so the task path builds no string for it otherwise.
 */
export function trace (event: string, id = '-', kind?: string, outcome?: string): void {
  if (fd === null) return
  const name = kind === undefined ? event : outcome === undefined ? `${event}.${kind}` : `${event}.${kind}.${outcome}`
  writeSync(fd, `${(performance.timeOrigin + performance.now()).toFixed(3)} ${process.pid} ${name} ${id}\n`)
}

/** The first task id a frame names, for the trace. */
export function frameTaskId (msg: unknown): string {
  const m = msg as { id?: string, tasks?: Array<{ id?: string, spec?: { id: string } }>, updates?: Array<{ id: string }>, reports?: Array<{ id: string }>, canonical?: Array<[string, string]> }
  return m.id ?? m.tasks?.[0]?.id ?? m.tasks?.[0]?.spec?.id ?? m.updates?.[0]?.id ?? m.reports?.[0]?.id ?? m.canonical?.[0]?.[0] ?? '-'
}
