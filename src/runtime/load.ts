import os from 'node:os'

/** This machine's CPU load (1-minute load average per core) and memory in use, as fractions. */
export function machineLoad (): { cpu: number, memory: number } {
  const cores = Math.max(1, os.availableParallelism())
  const cpu = Math.min(1024, os.loadavg()[0]! / cores)
  const memory = 1 - os.freemem() / Math.max(1, os.totalmem())
  return { cpu: round(cpu), memory: round(memory) }
}

function round (x: number): number {
  return Math.round(x * 1000) / 1000
}
