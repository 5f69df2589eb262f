import os from 'node:os'

/**
 * How long one sample of the machine's load is reused. It goes out with
 * every heartbeat (a few a second), and each sample opens /proc/loadavg,
 * /proc/meminfo (twice) and /proc/self/cgroup: an idle node did ~13 of
 * those openat+read+close a second. The kernel updates the load average
 * every 5 s anyway, and it is a 1-minute average.
 */
export const LOAD_SAMPLE_MS = 5_000

let last: { atMs: number, value: { cpu: number, memory: number } } | null = null

/** This machine's CPU load (1-minute load average per core) and memory in use, as fractions; sampled at most once per LOAD_SAMPLE_MS. */
export function machineLoad (nowMs: number = Date.now()): { cpu: number, memory: number } {
  if (last !== null && nowMs >= last.atMs && nowMs - last.atMs < LOAD_SAMPLE_MS) return last.value
  last = { atMs: nowMs, value: sample() }
  return last.value
}

function sample (): { cpu: number, memory: number } {
  const cores = Math.max(1, os.availableParallelism())
  const cpu = Math.min(1024, os.loadavg()[0]! / cores)
  const memory = 1 - os.freemem() / Math.max(1, os.totalmem())
  return { cpu: round(cpu), memory: round(memory) }
}

function round (x: number): number {
  return Math.round(x * 1000) / 1000
}
