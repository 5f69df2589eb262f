/**
 * The startup scenario: one `taskmesh start` at a time on a LAN host, each
 * with a fresh data directory (a first start: the identity key is made), as
 * a user or a service manager starts it. For each start: spawn to the
 * "node started" log line (wall time, as the benchmark sees it), the CPU
 * seconds the process had used by then (all threads, from the node's own
 * log line), and its RSS after a few idle seconds. One start before the
 * counted ones fills Node's compile cache, as any earlier start on the
 * machine would have.
 */
import { readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { cpuSeconds, lanNode, rssBytes, startNode, statusBytes, stopNode } from '../lib/lan-nodes.ts'
import type { Lan } from '../lan/lan.ts'
import { fig } from './figures.ts'
import type { Scenario } from './figures.ts'

/** What the node logs once it is up (src/node.ts; versions before the start-up figures logged only the time). */
interface StartedLine { time: number, startupMs?: number, startupCpuMs?: number }

const IDLE_MS = 3_000

async function waitForStarted (logFile: string, deadlineMs: number): Promise<StartedLine> {
  while (Date.now() < deadlineMs) {
    let text = ''
    try { text = readFileSync(logFile, 'utf8') } catch { /* not yet written */ }
    const line = text.split('\n').find(l => l.includes('"node started"'))
    if (line !== undefined) return JSON.parse(line) as StartedLine
    await new Promise(resolve => setTimeout(resolve, 5))
  }
  throw new Error(`no "node started" in ${logFile} in time`)
}

export async function startup (opts: { lan: Lan, quick: boolean, work: string, configFile: string, say: (msg: string) => void }): Promise<Scenario> {
  const runs = opts.quick ? 5 : 10
  const host = opts.lan.hosts[0]!
  const wall: number[] = []
  const logged: number[] = []
  const cpu: number[] = []
  const rss: number[] = []
  const peak: number[] = []
  const idleCpu: number[] = []
  for (let r = 0; r <= runs; r++) {
    const dir = join(opts.work, `startup-${r}`)
    const node = lanNode(host, dir, `s${r}`)
    const spawnedAt = Date.now()
    startNode(node, { config: opts.configFile })
    try {
      const started = await waitForStarted(join(dir, 'node.log'), spawnedAt + 30_000)
      const pid = node.proc!.pid!
      const cpuAtStart = cpuSeconds(pid)
      // Without the node's own figures (an older version, TASKMESH_LAN_BIN): the CPU seen on noticing the line, and no uptime.
      const cpuToStart = started.startupCpuMs === undefined ? cpuAtStart : started.startupCpuMs / 1000
      await new Promise(resolve => setTimeout(resolve, IDLE_MS))
      if (r === 0) continue // the warm-up start: Node's compile cache is filled
      wall.push(started.time - spawnedAt)
      if (started.startupMs !== undefined) logged.push(started.startupMs)
      cpu.push(cpuToStart)
      rss.push(rssBytes(pid) / 1024 / 1024)
      peak.push(statusBytes(pid, 'VmHWM') / 1024 / 1024)
      idleCpu.push((cpuSeconds(pid) - cpuAtStart) / (IDLE_MS / 1000) * 100)
      opts.say(`startup ${r}/${runs}: spawn to "node started" ${started.time - spawnedAt} ms, ${cpuToStart.toFixed(2)} CPU-s, idle RSS ${Math.round(rss.at(-1)!)} MB (peak ${Math.round(peak.at(-1)!)} MB)`)
    } finally {
      await stopNode(node, 5_000)
      rmSync(dir, { recursive: true, force: true })
    }
  }
  return {
    name: 'startup',
    config: { executable: process.env.TASKMESH_LAN_BIN ?? 'bin/taskmesh.js', runs, idleMs: IDLE_MS, dataDir: 'fresh for each start (the identity key is made)', warmup: '1 start not counted (fills the compile cache)' },
    figures: [
      fig('spawn to "node started" (as the benchmark sees it)', wall, 'ms', { target: '<= 500 ms' }),
      fig('process start to "node started" (the node\'s own uptime)', logged, 'ms'),
      fig('CPU-seconds to "node started" (all threads)', cpu, 'CPU-s', { target: '<= 0.5 CPU-s' }),
      fig(`idle RSS, ${IDLE_MS / 1000} s after start (VmRSS)`, rss, 'MB', { target: '<= 100 MB' }),
      fig(`peak RSS to then: start-up and ${IDLE_MS / 1000} s idle (VmHWM)`, peak, 'MB', { target: '<= 100 MB' }),
      fig(`idle CPU over those ${IDLE_MS / 1000} s`, idleCpu, '% of a core')
    ],
    notes: ['one node alone on the LAN (no peers): start-up cost, not joining']
  }
}
