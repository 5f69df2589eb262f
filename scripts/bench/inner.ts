/**
 * The benchmark scenarios, run from the LAN's bridge namespace against real
 * nodes on the simulated LAN (started by scripts/bench/cli.ts, which owns the
 * LAN). Every figure is a median over runs; every scenario records the
 * machine and the config it used; latency is also given as a ratio to the
 * floors measured in the same run (a bare HTTP round trip to the same server,
 * and one node-to-node libp2p request/response on top of it).
 */
import { execFileSync } from 'node:child_process'
import { DEFAULTS } from '../../src/config.ts'
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { LAN_TOKEN, ROOT, cpuSeconds, http, lanNode, rssBytes, startNode, stopNode, waitForAgreement } from '../lib/lan-nodes.ts'
import type { ClusterView, LanNode } from '../lib/lan-nodes.ts'
import type { Lan } from '../lan/lan.ts'
import { fig, median, pct, round, writeResults } from './figures.ts'
import type { Figure, Scenario } from './figures.ts'
import { clusterFramesSent, framesPerTask, peakRssBytes, traceMemory, writeCalls } from './node-stats.ts'
import { summarizeProfiles } from './profile.ts'
import { drainScenario } from './drain.ts'
import { retentionScenario } from './retention.ts'
import { startup } from './startup.ts'
import { waitBulk, waitEach } from './result-clients.ts'
import type { Ended } from './result-clients.ts'

export interface BenchConfig { lan: Lan, quick: boolean, out: string, only: string[] | null, profile: boolean, scaleNodes: number }

const cfg = JSON.parse(process.argv[2] ?? '{}') as BenchConfig
const work = join(os.tmpdir(), `taskmesh-bench-${process.pid}`)
const say = (msg: string): void => { console.log(`[bench] ${msg}`) }
const sleep = async (ms: number): Promise<void> => { await new Promise(resolve => setTimeout(resolve, ms)) }

const scenarios: Scenario[] = []
const profileDir = join(cfg.out, 'profiles')
/** With --profile, the nodes of the latency and throughput scenarios write CPU profiles (figures are then slower). */
function profiled (scenario: string): Record<string, string> {
  return cfg.profile ? { NODE_OPTIONS: `--cpu-prof --cpu-prof-dir=${join(profileDir, scenario)}` } : {}
}
const profiles: Array<[string, string]> = []
/** A user handler module (runs on a pool thread, as every user task does), beside the built-in `echo` (runs on the event loop). */
const USER_HANDLER = { 'user-echo': join(ROOT, 'scripts/bench/user-echo-handler.js') }
/** The task-path scenarios' cluster: 3 nodes, 4 slots each, the user handler configured. */
const TASK_PATH_CONFIG = { capacity: 4, handlers: USER_HANDLER }

let clusterSeq = 0
/** Starts `count` nodes on the LAN's hosts from `firstHost` on with `config`, and waits until they agree. */
/** When each node logged "node started" (epoch ms), from its log. */
function startedTimes (nodes: readonly LanNode[]): number[] {
  return nodes.map(n => {
    const line = readFileSync(join(n.dir, 'node.log'), 'utf8').split('\n').find(l => l.includes('"node started"'))
    return line === undefined ? NaN : (JSON.parse(line) as { time: number }).time
  })
}

async function cluster (count: number, config: Record<string, unknown>, env: Record<string, string> = {}, firstHost = 0, lastEnv: Record<string, string> = {}): Promise<{ nodes: LanNode[], formedMs: number | null, afterLastStartMs: number | null, slowestStartMs: number | null, spawnedAt: number, stop: () => Promise<void> }> {
  const id = ++clusterSeq
  const dir = join(work, `c${id}`)
  mkdirSync(dir, { recursive: true })
  const file = join(dir, 'cluster.config.json')
  writeFileSync(file, JSON.stringify({ cluster: `bench-${process.pid}-${id}`, ...config }))
  const nodes = cfg.lan.hosts.slice(firstHost, firstHost + count).map(h => lanNode(h, join(dir, `h${h.index}`)))
  const started = Date.now()
  nodes.forEach((n, i) => { startNode(n, { config: file, env: i === nodes.length - 1 ? { ...env, ...lastEnv } : env }) })
  const stop = async (): Promise<void> => {
    live.delete(stop)
    await Promise.all(nodes.map(async n => { await stopNode(n, 5_000) }))
    // TASKMESH_BENCH_KEEP=1 keeps the nodes' logs and data for a look afterwards.
    if (process.env.TASKMESH_BENCH_KEEP === '1') say(`kept ${dir}`)
    else rmSync(dir, { recursive: true, force: true })
  }
  live.add(stop)
  const agreedAfter = await waitForAgreement(nodes, 60_000, 50)
  const agreedAt = Date.now()
  if (nodes.some(n => n.proc === null)) throw new Error(`a node of the ${count}-node cluster exited at start; see its log`)
  const lastStart = Math.max(...startedTimes(nodes))
  return {
    nodes,
    formedMs: agreedAfter === null ? null : agreedAt - started,
    afterLastStartMs: agreedAfter === null || Number.isNaN(lastStart) ? null : agreedAt - lastStart,
    slowestStartMs: Number.isNaN(lastStart) ? null : lastStart - started,
    spawnedAt: started,
    stop
  }
}

/** Clusters still running: a scenario that fails leaves none behind for the next. */
const live = new Set<() => Promise<void>>()

async function leaderOf (nodes: readonly LanNode[]): Promise<LanNode> {
  const v = await http<ClusterView>(`${nodes[0]!.url}/v1/cluster`)
  const leader = nodes.find(n => n.name === v.body.leader?.name)
  if (leader === undefined) throw new Error('no leader')
  return leader
}

async function post<T> (url: string, body: unknown, timeoutMs = 30_000): Promise<{ status: number, body: T }> {
  return await http<T>(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }, timeoutMs)
}

/** The same request with fetch (undici), the HTTP client of Node's standard library that the client library used before. */
async function postWithFetch<T> (url: string, body: unknown, timeoutMs = 30_000): Promise<{ status: number, body: T }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${LAN_TOKEN}` }, body: JSON.stringify(body), signal: AbortSignal.timeout(timeoutMs) })
  return { status: res.status, body: await res.json() as T }
}

/** Waits for every id to end (long-polls, `concurrency` at a time); returns when the last one ended. */
async function waitAll (node: LanNode, ids: readonly string[], concurrency = 64): Promise<Ended[]> {
  return (await waitEach(node, ids, concurrency)).ended
}

/** `n` tasks of `type` submitted and waited for one after another (POST /v1/tasks?wait=) on `node`: latencies, phases, RPC frames per task. */
async function sequential (node: LanNode, type: string, n: number, all: readonly LanNode[]): Promise<{ lat: number[], phases: { queued: number[], run: number[], back: number[] }, frames: ReturnType<typeof framesPerTask>, writes: number }> {
  const lat: number[] = []
  const phases = { queued: [] as number[], run: [] as number[], back: [] as number[] }
  const frames0 = await clusterFramesSent(all)
  const writes0 = clusterWrites(all)
  for (let i = 0; i < n; i++) {
    const t = performance.now()
    const tWall = Date.now()
    const r = await post<{ status: string, createdAt: number, startedAt: number, finishedAt: number }>(`${node.url}/v1/tasks?wait=10000`, { type, payload: { i } })
    const ms = performance.now() - t
    if (r.status !== 200 || r.body.status !== 'succeeded') throw new Error(`latency (${type}): task did not succeed within 10 s (${r.status} ${r.body.status})`)
    lat.push(ms)
    phases.queued.push(r.body.startedAt - Math.max(r.body.createdAt, tWall))
    phases.run.push(r.body.finishedAt - r.body.startedAt)
    phases.back.push(Date.now() - r.body.finishedAt)
  }
  const writes = (clusterWrites(all) - writes0) / n
  return { lat, phases, frames: framesPerTask(frames0, await clusterFramesSent(all), n), writes }
}

/**
 * `n` echo tasks submitted and waited for one after another on `node`, sent
 * alternately with the client library's HTTP layer (node:http) and with
 * fetch, so that both see the same cluster at the same moments: the latency
 * and this process's CPU time of each request, per client.
 */
async function clientComparison (node: LanNode, n: number): Promise<Record<'http' | 'fetch', { lat: number[], cpuMs: number }>> {
  const out = { http: { lat: [] as number[], cpuMs: 0 }, fetch: { lat: [] as number[], cpuMs: 0 } }
  for (let i = 0; i < 2 * n; i++) {
    const which = i % 2 === 0 ? 'http' : 'fetch'
    const cpu0 = process.cpuUsage()
    const t = performance.now()
    const r = await (which === 'http' ? post : postWithFetch)<{ status: string }>(`${node.url}/v1/tasks?wait=10000`, { type: 'echo', payload: { i } })
    out[which].lat.push(performance.now() - t)
    const cpu = process.cpuUsage(cpu0)
    out[which].cpuMs += (cpu.user + cpu.system) / 1000 / n
    if (r.status !== 200 || r.body.status !== 'succeeded') throw new Error(`latency (client comparison): task did not succeed within 10 s (${r.status} ${r.body.status})`)
  }
  return out
}

/** How many items share each key. */
function countBy<T> (items: readonly T[], key: (item: T) => string): Record<string, number> {
  const out: Record<string, number> = {}
  for (const item of items) out[key(item)] = (out[key(item)] ?? 0) + 1
  return out
}

/** Write system calls of these nodes' processes so far, summed. */
function clusterWrites (nodes: readonly LanNode[]): number {
  return nodes.reduce((s, n) => s + (n.proc?.pid === undefined ? 0 : writeCalls(n.proc.pid)), 0)
}

/**
 * How late delayed tasks begin: DELAYED built-in `echo` tasks in one batch
 * through `node`, due 0.5-1.5 s later at spread times; each one's start
 * (the worker's clock) minus its runAt, in ms.
 */
async function delayAccuracy (node: LanNode): Promise<number[]> {
  const DELAYED = 40
  const first = Date.now() + 500
  const res = await post<{ ids: string[] }>(`${node.url}/v1/tasks/batch`, { tasks: Array.from({ length: DELAYED }, (_, i) => ({ type: 'echo', payload: { i }, runAt: first + i * 25 })) })
  if (res.status !== 202) throw new Error(`delay accuracy: batch refused with ${res.status}`)
  const late: number[] = []
  for (const id of res.body.ids) {
    const r = await http<{ status: string, runAt?: number, startedAt: number | null }>(`${node.url}/v1/tasks/${id}?wait=10000`, {}, 15_000)
    if (r.body.status !== 'succeeded' || r.body.startedAt === null || r.body.runAt === undefined) throw new Error(`delay accuracy: task ${id} ended ${r.body.status}`)
    late.push(r.body.startedAt - r.body.runAt)
  }
  return late
}

// ---- scenarios -------------------------------------------------------------

async function baselinesAndLatency (): Promise<{ httpFloorMs: number | null, rpcFloorMs: number | null }> {
  const n = cfg.quick ? 200 : 500
  const c = await cluster(3, TASK_PATH_CONFIG, profiled('latency'))
  const [a] = c.nodes
  // Floor 1: a bare HTTP round trip to the same server.
  const httpRtt: number[] = []
  for (let i = 0; i < n; i++) {
    const t = performance.now()
    await http(`${a!.url}/healthz`)
    httpRtt.push(performance.now() - t)
  }
  // Floor 2: the same, plus one libp2p request/response to another node (a node without the task asks the others).
  const c2 = await cluster(2, { capacity: 1 }, {}, 3)
  const rpcRtt: number[] = []
  for (let i = 0; i < n; i++) {
    const t = performance.now()
    await http(`${c2.nodes[0]!.url}/v1/tasks/no-such-task-${i}`)
    rpcRtt.push(performance.now() - t)
  }
  await c2.stop()
  const httpFloor = median(httpRtt)
  const rpcFloor = median(rpcRtt)
  scenarios.push({
    name: 'baselines',
    config: { requests: n, nodes: 'HTTP: 1 of 3 nodes; libp2p: 2 nodes' },
    figures: [
      fig('bare HTTP round trip (GET /healthz) p50', [httpFloor!], 'ms', { runs: [pct(httpRtt, 50), pct(httpRtt, 99)].map(x => round(x)!) }),
      fig('HTTP + one libp2p request/response (GET of an unknown task, 2 nodes) p50', [rpcFloor!], 'ms'),
      fig('one libp2p request/response (difference of the medians)', [rpcFloor! - httpFloor!], 'ms')
    ],
    notes: ['runs of the first figure: [p50, p99]']
  })
  // Sequential latency: submit and wait in one request, n times, with the built-in and with a user handler.
  // Through the leader (its origin placement runs each task there), so that runs compare like with like.
  // Each kind of run is warmed up first (not counted): the first tasks of a fresh cluster pay V8's compilation
  // and the handler thread's start, which made the echo run, measured first, look slower than the user handler's.
  const lead = await leaderOf(c.nodes)
  const warm = Math.ceil(n / 4)
  await sequential(lead, 'echo', warm, c.nodes)
  const echo = await sequential(lead, 'echo', n, c.nodes)
  await sequential(lead, 'user-echo', warm, c.nodes)
  const user = await sequential(lead, 'user-echo', n, c.nodes)
  // What the client library's HTTP layer saves (src/client/http-request.ts): echo tasks sent alternately with it and with fetch.
  const clients = await clientComparison(lead, n)
  // As a client of a cluster usually is (and as issue 14 measured BullMQ against): talking to a follower.
  const follower = c.nodes.find(node => node !== lead)
  if (follower !== undefined) await sequential(follower, 'user-echo', warm, c.nodes)
  const viaFollower = follower === undefined ? null : await sequential(follower, 'user-echo', n, c.nodes)
  const delays = await delayAccuracy(follower ?? lead)
  await c.stop()
  if (cfg.profile) profiles.push(['latency', summarizeProfiles(join(profileDir, 'latency'), c.formedMs ?? 0).markdown])
  const p50 = pct(echo.lat, 50)
  const userP50 = pct(user.lat, 50)
  scenarios.push({
    name: 'latency',
    config: { nodes: 3, capacity: 4, tasks: n, request: 'POST /v1/tasks?wait=10000, one after another, to the leader: the built-in echo (event loop), then a user handler module (pool thread), then echo tasks sent alternately with node:http and with fetch (the client comparison); then the user handler through a follower; each run after a quarter as many tasks again that are not counted (warm-up)', client: 'node:http over kept-alive connections (the client library\'s HTTP layer) unless a figure says fetch' },
    figures: [
      fig('p50 (built-in echo)', [p50], 'ms', { ratio: { to: 'bare HTTP round trip', value: round(p50 / httpFloor!) }, target: '<= 1.0 ms' }),
      fig('p90 (built-in echo)', [pct(echo.lat, 90)], 'ms'),
      fig('p99 (built-in echo)', [pct(echo.lat, 99)], 'ms', { target: '<= 3 ms' }),
      fig('client comparison, p50 (built-in echo; node:http, as the client library)', [pct(clients.http.lat, 50)], 'ms'),
      fig('client comparison, p50 (built-in echo; fetch as the client)', [pct(clients.fetch.lat, 50)], 'ms', { ratio: { to: 'node:http', value: round(pct(clients.fetch.lat, 50) / pct(clients.http.lat, 50)) } }),
      fig('client comparison, client CPU per task (node:http)', [clients.http.cpuMs], 'ms'),
      fig('client comparison, client CPU per task (fetch)', [clients.fetch.cpuMs], 'ms'),
      fig('p50 (user handler)', [userP50], 'ms', { ratio: { to: 'bare HTTP round trip', value: round(userP50 / httpFloor!) }, target: '<= 1.0 ms' }),
      fig('p99 (user handler)', [pct(user.lat, 99)], 'ms', { target: '<= 3 ms' }),
      fig('p50 (user handler, client on a follower)', viaFollower === null ? [] : [pct(viaFollower.lat, 50)], 'ms', { target: '<= 1.0 ms' }),
      fig('p99 (user handler, client on a follower)', viaFollower === null ? [] : [pct(viaFollower.lat, 99)], 'ms', { target: '<= 3 ms' }),
      fig('RPC frames sent per task, all nodes (user handler, client on a follower)', viaFollower === null ? [] : [viaFollower.frames.total], 'frames'),
      fig('delayed tasks: start after runAt p50', [pct(delays, 50)], 'ms'),
      fig('delayed tasks: start after runAt p99', [pct(delays, 99)], 'ms', { target: '<= 100 ms' }),
      fig('accepted to started (store on 2 nodes, hand-over, dispatch) p50 (built-in echo)', [pct(echo.phases.queued, 50)], 'ms'),
      fig('run p50 (built-in echo)', [pct(echo.phases.run, 50)], 'ms'),
      fig('ended to reply (result to the origin, reply) p50 (built-in echo)', [pct(echo.phases.back, 50)], 'ms'),
      fig('RPC frames sent per task, all nodes (built-in echo)', [echo.frames.total], 'frames'),
      fig('RPC frames sent per task, all nodes (user handler)', [user.frames.total], 'frames'),
      fig('write system calls per task, all nodes (built-in echo; sockets, store, logs)', [echo.writes], 'calls'),
      fig('write system calls per task, all nodes (user handler)', [user.writes], 'calls'),
      fig('RPC bytes sent per task, all nodes (built-in echo)', [echo.frames.bytes], 'bytes'),
      fig('of which task updates to holders (built-in echo)', [echo.frames.updateBytes], 'bytes')
    ],
    notes: [
      'phase times use the nodes\' millisecond clocks (one machine), so they are coarse',
      `frames per task by kind (built-in echo; requests and replies): ${JSON.stringify(echo.frames.byKind)}`
    ]
  })
  return { httpFloorMs: httpFloor, rpcFloorMs: rpcFloor }
}

/**
 * The same load three times, each on a fresh cluster: the built-in `echo`
 * with results learnt by a long-poll per task, then by bulk waits (one
 * request per round per batch), then a user handler module with bulk waits.
 */
async function throughput (): Promise<void> {
  const total = cfg.quick ? 3_000 : 10_000
  const runs = cfg.quick ? 1 : 3
  const variants = [
    { key: 'echo, per-task long-polls', type: 'echo', client: 'per-task' },
    { key: 'echo, bulk waits', type: 'echo', client: 'bulk' },
    { key: 'user handler, bulk waits', type: 'user-echo', client: 'bulk' }
  ] as const
  // Peak RSS per node: `leader` and `followers` (each run's two), `nodes` (every node's, as `h1 (leader) 142` for the notes).
  type Runs = { rates: number[], cpu: number[], requests: number[], peakRss: number[], leaderRss: number[], followerRss: number[], startRss: number[], perNode: string[], frames: number[], bytes: number[], updateBytes: number[], writes: number[], byKind: Record<string, number> }
  const got = new Map<string, Runs>(variants.map(v => [v.key, { rates: [], cpu: [], requests: [], peakRss: [], leaderRss: [], followerRss: [], startRss: [], perNode: [], frames: [], bytes: [], updateBytes: [], writes: [], byKind: {} }]))
  for (let r = 0; r < runs; r++) {
    for (const v of variants) {
      const profile = r === 0
      const dir = `throughput-${v.type}-${v.client}`
      const c = await cluster(3, TASK_PATH_CONFIG, profile ? profiled(dir) : {})
      const pids = c.nodes.map(n => n.proc!.pid!)
      const leader = await leaderOf(c.nodes)
      // Peak so far of each node once the cluster has formed (start-up and joining), before any task.
      const formedPeak = pids.map(p => peakRssBytes(p) / 2 ** 20)
      const stopTrace = traceMemory(c.nodes, `${v.key}, run ${r + 1}`)
      const cpu0 = pids.reduce((s, p) => s + cpuSeconds(p), 0)
      const frames0 = await clusterFramesSent(c.nodes)
      const writes0 = clusterWrites(c.nodes)
      const t = performance.now()
      const batches: Array<Promise<{ ended: Ended[], requests: number }>> = []
      for (let b = 0; b < total / 1000; b++) {
        const origin = c.nodes[b % 3]!
        const res = await post<{ ids: string[] }>(`${origin.url}/v1/tasks/batch`, { tasks: Array.from({ length: 1000 }, (_, i) => ({ type: v.type, payload: { b, i } })) })
        if (res.status !== 202) throw new Error(`throughput: batch refused with ${res.status}`)
        // The submitter learns each result from the node it submitted to (a holder: no fan-out).
        batches.push(v.client === 'bulk' ? waitBulk(origin, res.body.ids) : waitEach(origin, res.body.ids, 32))
      }
      const waited = await Promise.all(batches)
      const secs = (performance.now() - t) / 1000
      stopTrace()
      const cpu = pids.reduce((s, p) => s + cpuSeconds(p), 0) - cpu0
      const writes = (clusterWrites(c.nodes) - writes0) / total
      if (waited.some(w => w.ended.some(e => e.status !== 'succeeded'))) throw new Error(`throughput (${v.key}): a task did not succeed`)
      const frames = framesPerTask(frames0, await clusterFramesSent(c.nodes), total)
      const requests = waited.reduce((n, w) => n + w.requests, 0)
      const peaks = pids.map(p => peakRssBytes(p) / 2 ** 20)
      const peak = Math.max(...peaks)
      const runsOf = got.get(v.key)!
      runsOf.rates.push(total / secs)
      runsOf.cpu.push(cpu / (total / 1000))
      runsOf.requests.push(requests)
      runsOf.peakRss.push(peak)
      c.nodes.forEach((n, i) => { (n === leader ? runsOf.leaderRss : runsOf.followerRss).push(peaks[i]!) })
      runsOf.startRss.push(...formedPeak)
      runsOf.perNode.push(`run ${r + 1}: ${c.nodes.map((n, i) => `${n.name}${n === leader ? ' (leader)' : ''} ${Math.round(peaks[i]!)} (${Math.round(formedPeak[i]!)} before the load)`).join(', ')}`)
      runsOf.frames.push(frames.total)
      runsOf.bytes.push(frames.bytes)
      runsOf.updateBytes.push(frames.updateBytes)
      runsOf.writes.push(writes)
      runsOf.byKind = frames.byKind
      say(`throughput run ${r + 1}/${runs}, ${v.key}: ${Math.round(total / secs)} tasks/s, ${(cpu / (total / 1000)).toFixed(2)} CPU-s per 1,000, ${requests} result requests, peak RSS (VmHWM) ${c.nodes.map((n, i) => `${n.name}${n === leader ? '*' : ''} ${peaks[i]!.toFixed(0)}`).join(', ')} MB, ${frames.total.toFixed(2)} RPC frames and ${frames.bytes} bytes (${frames.updateBytes} of updates) per task, ${writes.toFixed(1)} write system calls per task`)
      await c.stop()
      if (profile && cfg.profile) profiles.push([`throughput (first run, ${v.key})`, summarizeProfiles(join(profileDir, dir), c.formedMs ?? 0).markdown])
    }
  }
  const perTask = median(got.get('echo, per-task long-polls')!.rates) ?? 0
  const figures: Figure[] = []
  for (const v of variants) {
    const x = got.get(v.key)!
    figures.push(
      fig(`tasks/s, first submit to last result known (${v.key})`, x.rates, 'tasks/s', { ...(v.key === 'echo, per-task long-polls' ? {} : { ratio: { to: 'echo, per-task long-polls', value: round((median(x.rates) ?? 0) / Math.max(1, perTask)) } }), target: v.type === 'user-echo' ? '>= 13,000' : undefined }),
      fig(`CPU-seconds per 1,000 tasks, all nodes (${v.key})`, x.cpu, 'CPU-s', { target: v.type === 'user-echo' ? '<= 0.14' : undefined }),
      fig(`HTTP requests for the results (${v.key})`, x.requests, 'requests'),
      fig(`peak RSS of the largest node (VmHWM) (${v.key})`, x.peakRss, 'MB', { target: '<= 150 MB' }),
      fig(`peak RSS of the leader (VmHWM) (${v.key})`, x.leaderRss, 'MB', { target: '<= 150 MB' }),
      fig(`peak RSS of a follower (VmHWM; runs: both followers of each run) (${v.key})`, x.followerRss, 'MB', { target: '<= 150 MB' }),
      fig(`peak RSS before the load (VmHWM once the cluster had formed; runs: every node) (${v.key})`, x.startRss, 'MB'),
      fig(`RPC frames sent per task, all nodes (${v.key})`, x.frames, 'frames'),
      fig(`RPC bytes sent per task, all nodes (${v.key})`, x.bytes, 'bytes'),
      fig(`of which task updates to holders (${v.key})`, x.updateBytes, 'bytes'),
      fig(`write system calls per task, all nodes (${v.key}; sockets, store, logs)`, x.writes, 'calls')
    )
  }
  scenarios.push({
    name: 'throughput',
    config: { nodes: 3, capacity: 4, handlers: 'built-in echo (event loop); user-echo, a user module (pool thread)', tasks: total, submit: 'POST /v1/tasks/batch, 1,000 per request, round-robin', results: 'learnt from the node submitted to: per-task long-polls (GET /v1/tasks/:id?wait=, 32 at a time per batch), or bulk waits (POST /v1/tasks/wait, one loop per batch); each variant on a fresh cluster' },
    figures,
    notes: [
      ...variants.map(v => `peak RSS (VmHWM) per node, MB (${v.key}): ${got.get(v.key)!.perNode.join('; ')}`),
      ...variants.map(v => `frames per task by kind (${v.key}, last run; requests and replies): ${JSON.stringify(got.get(v.key)!.byKind)}`)
    ]
  })
}

/** Leader SIGKILL / SIGSTOP under load; a worker SIGKILL with 200 tasks of 200 ms in flight. */
async function failover (): Promise<void> {
  const reps = cfg.quick ? 2 : 10
  const result: Record<'SIGKILL' | 'SIGSTOP', { agreed: number[], dispatched: number[], lost: number, twice: number }> = {
    SIGKILL: { agreed: [], dispatched: [], lost: 0, twice: 0 },
    SIGSTOP: { agreed: [], dispatched: [], lost: 0, twice: 0 }
  }
  const record = join(ROOT, 'scripts/chaos/record-handler.js')
  for (const sig of ['SIGKILL', 'SIGSTOP'] as const) {
    for (let r = 0; r < reps; r++) {
      const recFile = join(work, `exec-${sig}-${r}.jsonl`)
      writeFileSync(recFile, '')
      const c = await cluster(3, { capacity: 4, handlers: { record } }, { TASKMESH_RECORD_FILE: recFile })
      const leader = await leaderOf(c.nodes)
      const others = c.nodes.filter(n => n !== leader)
      const origin = others[0]!
      const res = await post<{ ids: string[] }>(`${origin.url}/v1/tasks/batch`, { tasks: Array.from({ length: 300 }, (_, i) => ({ type: 'record', payload: { ms: 50, i } })) })
      if (res.status !== 202) throw new Error(`failover: batch refused with ${res.status}: ${JSON.stringify(res.body)}`)
      await sleep(500)
      const at = Date.now()
      leader.proc!.kill(sig)
      let agreedAt: number | null = null
      while (Date.now() - at < 10_000) {
        const views = await Promise.all(others.map(async n => await http<ClusterView>(`${n.url}/v1/cluster`, {}, 1_000).then(v => v.body, () => null)))
        const names = new Set(views.map(v => v?.leader?.name ?? null))
        if (names.size === 1 && !names.has(null) && !names.has(leader.name)) { agreedAt = Date.now(); break }
        await sleep(10)
      }
      const ended = await waitAll(origin, res.body.ids)
      const logs = others.map(n => readFileSync(join(n.dir, 'node.log'), 'utf8')).join('\n')
      const dispatchedAt = logs.split('\n').filter(l => l.includes('"dispatching as leader"')).map(l => (JSON.parse(l) as { time: number }).time).filter(t => t >= at).sort((a, b) => a - b)[0]
      const execs = readFileSync(recFile, 'utf8').trim().split('\n').filter(l => l !== '').map(l => (JSON.parse(l) as { id: string }).id)
      const counts = new Map<string, number>()
      for (const id of execs) counts.set(id, (counts.get(id) ?? 0) + 1)
      result[sig].lost += ended.filter(e => e.status !== 'succeeded').length
      result[sig].twice += [...counts.values()].filter(v => v > 1).length
      if (agreedAt !== null) result[sig].agreed.push(agreedAt - at)
      if (dispatchedAt !== undefined) result[sig].dispatched.push(dispatchedAt - at)
      say(`failover ${sig} ${r + 1}/${reps}: agreed after ${agreedAt === null ? '-' : agreedAt - at} ms, dispatching after ${dispatchedAt === undefined ? '-' : dispatchedAt - at} ms`)
      leader.proc?.kill('SIGCONT')
      await c.stop()
    }
  }
  // A worker killed with 200 tasks of 200 ms in flight, against the same run without the kill.
  const kill: number[] = []
  const base: number[] = []
  let workerLost = 0
  for (let r = 0; r < (cfg.quick ? 1 : 3); r++) {
    for (const withKill of [false, true]) {
      const c = await cluster(3, { capacity: 4 })
      const leader = await leaderOf(c.nodes)
      const worker = c.nodes.find(n => n !== leader)!
      const t = Date.now()
      const res = await post<{ ids: string[] }>(`${leader.url}/v1/tasks/batch`, { tasks: Array.from({ length: 200 }, () => ({ type: 'sleep', payload: { ms: 200 } })) })
      let killedAt = t
      if (withKill) { await sleep(300); killedAt = Date.now(); worker.proc!.kill('SIGKILL') }
      const ended = await waitAll(leader, res.body.ids)
      const done = Date.now()
      if (withKill) { kill.push(done - killedAt); workerLost += ended.filter(e => e.status !== 'succeeded').length } else base.push(done - t - 300)
      await c.stop()
    }
  }
  const med = (xs: number[]): number => median(xs) ?? 0
  scenarios.push({
    name: 'failover',
    config: { nodes: 3, capacity: 4, heartbeatIntervalMs: DEFAULTS.heartbeatIntervalMs, failureTimeoutMs: DEFAULTS.failureTimeoutMs, load: '300 tasks of 50 ms in flight', repetitions: reps },
    figures: [
      fig('SIGKILL of the leader: survivors agree on a new leader', result.SIGKILL.agreed, 'ms'),
      fig('SIGKILL of the leader: new leader dispatching', result.SIGKILL.dispatched, 'ms', { target: '<= 1,000 ms' }),
      fig('SIGSTOP of the leader: survivors agree on a new leader', result.SIGSTOP.agreed, 'ms'),
      fig('SIGSTOP of the leader: new leader dispatching', result.SIGSTOP.dispatched, 'ms', { target: `<= failureTimeoutMs + 500 = ${(DEFAULTS.failureTimeoutMs + 500).toLocaleString('en')} ms` }),
      fig('tasks lost (all repetitions, both signals)', [result.SIGKILL.lost + result.SIGSTOP.lost], 'tasks', { target: '0' }),
      fig('tasks executed twice (all repetitions, both signals)', [result.SIGKILL.twice + result.SIGSTOP.twice], 'tasks'),
      fig('worker SIGKILL, 200 x 200 ms in flight on 3 x 4 slots: kill to last result', kill, 'ms', { ratio: { to: 'the same run without the kill', value: round(med(kill) / Math.max(1, med(base))) }, target: 'within 1,500 ms of the run without the kill' }),
      fig('the same, no kill: 300 ms mark to last result', base, 'ms'),
      fig('tasks lost with the killed worker', [workerLost], 'tasks', { target: '0' })
    ],
    notes: ['agreement is polled every 10 ms from the controller; dispatching is the new leader\'s own log line']
  })
}

async function convergence (): Promise<void> {
  const sizes = cfg.quick ? [3, 5] : [3, 5, 10]
  const runs = cfg.quick ? 1 : 3
  const figures: Figure[] = []
  for (const size of sizes) {
    const times: number[] = []
    const afterLast: number[] = []
    const boot: number[] = []
    for (let r = 0; r < runs; r++) {
      const c = await cluster(size, { capacity: 1 })
      if (c.formedMs !== null) times.push(c.formedMs)
      if (c.afterLastStartMs !== null) afterLast.push(c.afterLastStartMs)
      if (c.slowestStartMs !== null) boot.push(c.slowestStartMs)
      say(`convergence of ${size}: ${c.formedMs ?? '-'} ms from the first spawn, ${c.afterLastStartMs ?? '-'} ms after the last node had started (slowest start-up ${c.slowestStartMs ?? '-'} ms)`)
      await c.stop()
    }
    figures.push(fig(`${size} nodes started together: all agree on one leader`, times, 'ms', size === 10 ? { target: '<= 2,000 ms' } : {}))
    figures.push(fig(`${size} nodes: of which process start-up (spawn to "node started", slowest node)`, boot, 'ms'))
    figures.push(fig(`${size} nodes: agreement after the last node had started (discovery, join window, election)`, afterLast, 'ms'))
  }
  scenarios.push({ name: 'convergence', config: { sizes, runs, mdns: true, bootstrap: [], note: 'each node in its own namespace on the bridge; time from the first spawn to agreement, process start-up (~0.5-1 s of Node and libp2p) and the 1.5 s join window included' }, figures, notes: [] })
}

function bridgePackets (): Map<string, number> {
  const out = new Map<string, number>()
  const links = JSON.parse(execFileSync('ip', ['-j', '-s', '-n', cfg.lan.bridgeNs, 'link', 'show'], { encoding: 'utf8' })) as Array<{ ifname: string, stats64?: { rx: { packets: number }, tx: { packets: number } } }>
  for (const l of links) if (l.stats64 !== undefined) out.set(l.ifname, l.stats64.rx.packets + l.stats64.tx.packets)
  return out
}

async function scale (): Promise<void> {
  const size = Math.min(cfg.scaleNodes, cfg.lan.hosts.length)
  // With --profile the last node (the youngest: never leader, never killed) writes a CPU profile; its idle window is summarized.
  const c = await cluster(size, { capacity: 2 }, {}, 0, profiled('scale'))
  if (c.formedMs === null) {
    const views = await Promise.all(c.nodes.map(async n => await http<ClusterView>(`${n.url}/v1/cluster`, {}, 2_000).then(v => v.body, () => null)))
    say(`scale: ${size} nodes did not agree within 60 s; alive counts ${views.map(v => v?.members.filter(m => m.status === 'alive').length ?? '-').join(' ')}; leaders ${[...new Set(views.map(v => v?.leader?.name ?? '-'))].join(' ')}`)
  }
  await sleep(3_000)
  const pids = c.nodes.map(n => n.proc!.pid!)
  const cpu0 = pids.map(cpuSeconds)
  const pk0 = bridgePackets()
  const t = performance.now()
  const idleFrom = Date.now() - c.spawnedAt
  await sleep(10_000)
  const idleTo = Date.now() - c.spawnedAt
  const secs = (performance.now() - t) / 1000
  const cpuPct = pids.map((p, i) => (cpuSeconds(p) - cpu0[i]!) / secs * 100)
  const pk1 = bridgePackets()
  const pps = c.nodes.map(n => ((pk1.get(n.host.port) ?? 0) - (pk0.get(n.host.port) ?? 0)) / secs)
  const rss = pids.map(rssBytes).map(b => b / 1024 / 1024)
  const workers = new Set<string>()
  const notes = ['runs list every node\'s value']
  if (c.formedMs === null) notes.push(`the ${size} nodes did not all agree within 60 s; the idle figures are of the cluster as it was`)
  try {
    const res = await post<{ ids: string[] }>(`${c.nodes[0]!.url}/v1/tasks/batch`, { tasks: Array.from({ length: 1000 }, (_, i) => ({ type: 'sleep', payload: { ms: 100 + (i % 3) } })) })
    await waitAll(c.nodes[0]!, res.body.ids)
    for (const id of res.body.ids) {
      const r = await http<{ worker: string }>(`${c.nodes[0]!.url}/v1/tasks/${id}`, {}, 30_000)
      workers.add(r.body.worker)
    }
  } catch (err) {
    notes.push(`the 1,000-task batch did not complete: ${(err as Error).message}`)
  }
  // Leader SIGKILL at this size, with 200 sleep tasks of 50 ms in flight:
  // time until every survivor names one new leader, until it logs that it
  // dispatches, and tasks that did not succeed. Successive kills on the same
  // cluster (each leaves one node fewer).
  const agreed: number[] = []
  const dispatched: number[] = []
  let lost = 0
  let kills = 0
  let alive = c.nodes.slice()
  for (let k = 0; k < (cfg.quick ? 1 : 3); k++) {
    try {
      const leader = await leaderOf(alive)
      const others = alive.filter(n => n !== leader)
      const origin = others[0]!
      const res = await post<{ ids: string[] }>(`${origin.url}/v1/tasks/batch`, { tasks: Array.from({ length: 200 }, (_, i) => ({ type: 'sleep', payload: { ms: 50 + (i % 3) } })) })
      if (res.status !== 202) throw new Error(`batch refused with ${res.status}`)
      await sleep(300)
      const at = Date.now()
      leader.proc!.kill('SIGKILL')
      let agreedAt: number | null = null
      while (Date.now() - at < 15_000) {
        const views = await Promise.all(others.map(async n => await http<ClusterView>(`${n.url}/v1/cluster`, {}, 1_000).then(v => v.body, () => null)))
        const names = new Set(views.map(v => v?.leader?.name ?? null))
        if (names.size === 1 && !names.has(null) && !names.has(leader.name)) { agreedAt = Date.now(); break }
        await sleep(20)
      }
      const ended = await waitAll(origin, res.body.ids)
      const unsucceeded = ended.filter(e => e.status !== 'succeeded')
      lost += unsucceeded.length
      // What they ended as: a failure after its attempts ran out on members declared dead is not a lost task.
      if (unsucceeded.length > 0) notes.push(`leader kill ${k + 1}: ${unsucceeded.length} tasks did not succeed: ${JSON.stringify(countBy(unsucceeded, e => `${e.status} after ${e.attempts} attempts: ${e.error ?? 'no error'}`))}`)
      kills++
      const logs = others.map(n => readFileSync(join(n.dir, 'node.log'), 'utf8')).join('\n')
      const dispatchedAt = logs.split('\n').filter(l => l.includes('"dispatching as leader"')).map(l => (JSON.parse(l) as { time: number }).time).filter(x => x >= at).sort((a, b) => a - b)[0]
      if (agreedAt !== null) agreed.push(agreedAt - at)
      if (dispatchedAt !== undefined) dispatched.push(dispatchedAt - at)
      say(`scale: leader kill ${k + 1}: all ${others.length} survivors agreed after ${agreedAt === null ? '-' : agreedAt - at} ms, dispatching after ${dispatchedAt === undefined ? '-' : dispatchedAt - at} ms`)
      alive = others
    } catch (err) {
      notes.push(`leader kill ${k + 1} failed: ${(err as Error).message}`)
      break
    }
  }
  scenarios.push({
    name: 'scale',
    config: { nodes: size, capacity: 2, heartbeatIntervalMs: DEFAULTS.heartbeatIntervalMs, failureTimeoutMs: DEFAULTS.failureTimeoutMs },
    figures: [
      fig(`${size} nodes started together: all agree`, c.formedMs === null ? [] : [c.formedMs], 'ms', { target: size === 25 ? '<= 5,000 ms' : undefined }),
      fig(`${size} nodes: process start-up (spawn to "node started", slowest node)`, c.slowestStartMs === null ? [] : [c.slowestStartMs], 'ms'),
      fig(`${size} nodes: agreement after the last node had started`, c.afterLastStartMs === null ? [] : [c.afterLastStartMs], 'ms', { target: size === 25 ? '<= 2,000 ms' : size === 50 ? '<= 3,000 ms' : undefined }),
      fig('idle CPU per node (10 s, median of nodes)', cpuPct, '% of a core', { target: size >= 25 ? '<= 1 %' : '< 2 %' }),
      fig('idle packets per node (sent + received on its link, median of nodes)', pps, 'packets/s'),
      fig('idle RSS per node (median of nodes)', rss, 'MB', { target: '< 120 MB' }),
      fig('1,000 sleep tasks submitted to one node: distinct workers that ran them', workers.size === 0 ? [] : [workers.size], 'nodes'),
      fig('leader SIGKILL: every survivor names one new leader', agreed, 'ms'),
      fig('leader SIGKILL: new leader dispatching', dispatched, 'ms', { target: '<= 1,000 ms' }),
      fig('leader SIGKILL: tasks that did not succeed (200 in flight per kill; the notes say how they ended)', kills === 0 ? [] : [lost], 'tasks', { target: '0' })
    ],
    notes
  })
  await c.stop()
  if (cfg.profile) profiles.push([`scale (the last node, idle window of ${size} nodes)`, summarizeProfiles(join(profileDir, 'scale'), idleFrom, 25, idleTo).markdown])
}

async function memory (): Promise<void> {
  const total = cfg.quick ? 20_000 : 100_000
  const c = await cluster(1, { capacity: 4 })
  const node = c.nodes[0]!
  await sleep(2_000)
  const idle = rssBytes(node.proc!.pid!) / 1024 / 1024
  const ids: string[] = []
  for (let b = 0; b < total / 1000; b++) {
    const res = await post<{ ids: string[] }>(`${node.url}/v1/tasks/batch`, { tasks: Array.from({ length: 1000 }, (_, i) => ({ type: 'echo', payload: { b, i } })) })
    ids.push(...res.body.ids)
    if (b % 10 === 9) await waitAll(node, ids.slice(-1000))
  }
  await waitAll(node, ids.slice(-5000))
  await sleep(2_000)
  const full = rssBytes(node.proc!.pid!) / 1024 / 1024
  scenarios.push({
    name: 'memory',
    config: { nodes: 1, records: total },
    figures: [fig('RSS of an idle node', [idle], 'MB', { target: '< 120 MB' }), fig(`RSS of a node holding ${total.toLocaleString('en')} finished task records`, [full], 'MB')],
    notes: ['records live in sqlite on disk; the leader keeps the ids of ended tasks in memory (bounded at 100,000)']
  })
  await c.stop()
}

/** One node at a time: spawn to "node started", its CPU-seconds, idle RSS (scripts/bench/startup.ts). */
async function startupScenario (): Promise<void> {
  const file = join(work, 'startup.config.json')
  writeFileSync(file, JSON.stringify({ cluster: `bench-${process.pid}-startup`, capacity: 2 }))
  scenarios.push(await startup({ lan: cfg.lan, quick: cfg.quick, work, configFile: file, say }))
}

// ---- main ------------------------------------------------------------------

const all: Array<[string, () => Promise<unknown>]> = [
  ['startup', startupScenario],
  ['latency', baselinesAndLatency],
  ['throughput', throughput],
  ['failover', failover],
  ['convergence', convergence],
  ['scale', scale],
  ['memory', memory],
  ['drain', async () => { scenarios.push(await drainScenario({ quick: cfg.quick, work, say, cluster, leaderOf })) }],
  ['retention', async () => { scenarios.push(...await retentionScenario({ lan: cfg.lan, quick: cfg.quick, work, say })) }]
]
mkdirSync(work, { recursive: true })
const startedAt = new Date()
for (const [name, run] of all) {
  if (cfg.only !== null && !cfg.only.includes(name)) continue
  say(`${name} ...`)
  try {
    await run()
  } catch (err) {
    scenarios.push({ name, config: {}, figures: [], notes: [`FAILED: ${(err as Error).message}`] })
    say(`${name} failed: ${(err as Error).stack ?? (err as Error).message}`)
  } finally {
    for (const stop of [...live]) await stop()
  }
}
if (process.env.TASKMESH_BENCH_KEEP !== '1') rmSync(work, { recursive: true, force: true })

const { jsonPath, mdPath, table } = writeResults({ out: cfg.out, startedAt, quick: cfg.quick, profiled: cfg.profile, scenarios, profiles })
console.log('\n' + table)
say(`results: ${jsonPath} and ${mdPath}`)
process.exit(scenarios.some(s => s.notes.some(n => n.startsWith('FAILED'))) ? 1 : 0)
