/**
 * Real taskmesh nodes on the simulated LAN, for the chaos runner and the
 * benchmarks: one `taskmesh start` process per host, HTTP and libp2p on the
 * host's LAN address, logs and data in a directory of its own. Used from the
 * LAN's bridge namespace, where every host's address is reachable.
 */
import { spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import type { ChildProcess } from 'node:child_process'
import { closeSync, mkdirSync, openSync, readFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import type { LanHost } from '../lan/lan.ts'
import { DEFAULTS } from '../../src/config.ts'
import { httpText } from '../../src/client/http-request.ts'

export const ROOT = resolve(import.meta.dirname, '../..')
/** The executable the nodes run; TASKMESH_LAN_BIN points at another checkout's to compare two versions on the same LAN. */
const CLI = process.env.TASKMESH_LAN_BIN ?? join(ROOT, 'bin/taskmesh.js')
/** Each host has an address of its own, so every node can use the default port. */
export const HTTP_PORT = DEFAULTS.httpPort
/**
 * The nodes' HTTP API listens on their LAN addresses, so it needs a bearer
 * token: one per run, given to every node this process starts and sent with
 * every request `http()` makes.
 */
export const LAN_TOKEN = randomBytes(24).toString('hex')

export interface LanNode {
  host: LanHost
  name: string
  dir: string
  url: string
  proc: ChildProcess | null
  state: 'up' | 'paused' | 'down'
}

export function lanNode (host: LanHost, dir: string, name = `h${host.index}`): LanNode {
  return { host, name, dir, url: `http://${host.addr}:${HTTP_PORT}`, proc: null, state: 'down' }
}

/** Starts (or restarts, with the same data directory) the node; its output is appended to `<dir>/node.log`. */
export function startNode (n: LanNode, opts: { config: string, env?: Record<string, string>, args?: string[] }): void {
  mkdirSync(n.dir, { recursive: true })
  const log = openSync(join(n.dir, 'node.log'), 'a')
  const proc = spawn('ip', ['netns', 'exec', n.host.ns, process.execPath, CLI, 'start', '--config', opts.config, '--name', n.name,
    '--listen', `/ip4/${n.host.addr}/tcp/4001`, '--http-host', n.host.addr, '--http-port', String(HTTP_PORT), '--data-dir', join(n.dir, 'data'), ...(opts.args ?? [])], {
    stdio: ['ignore', log, log],
    env: { ...process.env, TASKMESH_LOG_LEVEL: process.env.TASKMESH_LAN_LOG_LEVEL ?? 'info', TASKMESH_TOKEN: LAN_TOKEN, ...opts.env }
  })
  closeSync(log)
  n.proc = proc
  n.state = 'up'
  proc.on('exit', () => { if (n.proc === proc) { n.proc = null; n.state = 'down' } })
}

/** SIGTERM, then SIGKILL after `graceMs`. */
export async function stopNode (n: LanNode, graceMs = 10_000): Promise<void> {
  const p = n.proc
  if (p === null) return
  const exited = new Promise(resolve => p.once('exit', resolve))
  p.kill('SIGCONT')
  p.kill('SIGTERM')
  await Promise.race([exited, new Promise(resolve => setTimeout(resolve, graceMs))])
  p.kill('SIGKILL')
}

/**
 * One request to a node with the client library's HTTP layer (node:http over
 * kept-alive connections, src/client/http-request.ts), as a program using
 * `taskmesh/client` sends it; the body is parsed as JSON.
 */
export async function http<T> (url: string, init: { method?: string, headers?: Record<string, string>, body?: string } = {}, timeoutMs = 3_000): Promise<{ status: number, body: T }> {
  const res = await httpText(url, { ...init, headers: { ...init.headers, authorization: `Bearer ${LAN_TOKEN}` }, signal: AbortSignal.timeout(timeoutMs) })
  return { status: res.status, body: JSON.parse(res.body) as T }
}

export interface ClusterView { leader: { id: string, name: string, term: number } | null, members: Array<{ name: string, status: string, queued: number, running: number }> }

/**
 * Waits until every given node answers, names the same leader and counts all
 * of them alive. Returns the milliseconds it took, or null at `limitMs`.
 */
export async function waitForAgreement (nodes: readonly LanNode[], limitMs: number, pollMs = 100): Promise<number | null> {
  const started = Date.now()
  while (Date.now() - started < limitMs) {
    // A node still starting answers 503 with an error body: not a view yet.
    const views = await Promise.all(nodes.map(async n => await http<ClusterView>(`${n.url}/v1/cluster`, {}, 1_000).then(r => r.status === 200 ? r.body : null, () => null)))
    const leaders = new Set(views.map(v => v?.leader?.name ?? null))
    if (views.every(v => v !== null && v.members.filter(m => m.status === 'alive').length === nodes.length) && leaders.size === 1 && !leaders.has(null)) return Date.now() - started
    await new Promise(resolve => setTimeout(resolve, pollMs))
  }
  return null
}

/** user + system CPU seconds the process has used (Linux /proc). */
export function cpuSeconds (pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ')
    return (Number(fields[11]) + Number(fields[12])) / 100
  } catch {
    return 0
  }
}

/** A memory figure of a process from /proc/<pid>/status, in bytes (0 when it is gone): VmRSS, resident now; VmHWM, its peak so far. */
export function statusBytes (pid: number, field: 'VmRSS' | 'VmHWM'): number {
  try {
    const line = readFileSync(`/proc/${pid}/status`, 'utf8').split('\n').find(l => l.startsWith(`${field}:`))
    return Number(line?.split(/\s+/)[1] ?? 0) * 1024
  } catch {
    return 0
  }
}

/** Resident set size in bytes (Linux /proc). */
export function rssBytes (pid: number): number {
  return statusBytes(pid, 'VmRSS')
}
