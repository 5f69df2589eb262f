/**
 * When a submitted task may first run: `runAt` (Unix ms) or `delayMs` after
 * the submit, never both. Pure: the origin's clock is an argument.
 */
export type RunAtVerdict = { ok: true, runAt: number | undefined } | { ok: false, message: string }

/**
 * The runAt a new task's spec carries: undefined when it may run at once
 * (neither given, a delay of 0, or a runAt not after `nowMs`: such a task is
 * queued at once, not refused, as a client's clock may be a little ahead).
 */
export function resolveRunAt (input: { runAt?: number, delayMs?: number }, nowMs: number, maxDelayMs: number): RunAtVerdict {
  const { runAt, delayMs } = input
  if (runAt !== undefined && delayMs !== undefined) return { ok: false, message: 'give runAt (Unix ms) or delayMs, not both' }
  if (delayMs !== undefined) {
    if (!Number.isSafeInteger(delayMs) || delayMs < 0) return { ok: false, message: `delayMs must be a whole number of milliseconds, 0 or more (got ${delayMs})` }
    if (delayMs > maxDelayMs) return { ok: false, message: `delayMs ${delayMs} is over the longest delay, ${maxDelayMs} ms` }
    return { ok: true, runAt: delayMs === 0 ? undefined : nowMs + delayMs }
  }
  if (runAt !== undefined) {
    if (!Number.isSafeInteger(runAt) || runAt < 0) return { ok: false, message: `runAt must be Unix milliseconds (got ${runAt})` }
    if (runAt - nowMs > maxDelayMs) return { ok: false, message: `runAt ${runAt} is ${runAt - nowMs} ms ahead; the longest delay is ${maxDelayMs} ms` }
    return { ok: true, runAt: runAt > nowMs ? runAt : undefined }
  }
  return { ok: true, runAt: undefined }
}
