/**
 * The part of a chaos run that lives on the LAN, in the bridge namespace (as
 * a client machine would): starts one node per host, runs the workload, polls
 * who leads, injects the scheduled faults, lets the cluster settle, stops the
 * nodes, then checks the invariants on what they stored and logged and writes
 * the report. Started by scripts/chaos/cli.ts, which owns the LAN and cleans
 * it up however this process ends.
 */
import { createHash } from 'node:crypto'
import { DEFAULTS } from '../../src/config.ts'
import { isTerminal } from '../../src/core/tasks.ts'
import type { TaskStatus } from '../../src/core/tasks.ts'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { seededRng } from '../lib/rng.ts'
import { ROOT, http, lanNode, startNode as launch, stopNode, waitForAgreement as agreed } from '../lib/lan-nodes.ts'
import type { ClusterView, LanNode } from '../lib/lan-nodes.ts'
import { heal, isolate, split } from '../lan/lan.ts'
import type { Lan } from '../lan/lan.ts'
import { availability } from './availability.ts'
import type { ClientRequest } from './availability.ts'
import { checkRun, leaderAt } from './check.ts'
import type { Accepted, HostRecord, LeaderSample, ObservedFault, RunData } from './check.ts'
import { writeReport } from './report.ts'
import { faultSchedule } from './schedule.ts'
import type { FaultKind, PlannedFault } from './schedule.ts'

export interface InnerConfig {
  lan: Lan
  seed: number
  durationMs: number
  faults: FaultKind[]
  rate: number
  quorum: number
  out: string
  settleMs: number
}

/** The default failure detection: chaos judges the settings users run. */
const HEARTBEAT_MS = DEFAULTS.heartbeatIntervalMs
const FAILURE_TIMEOUT_MS = DEFAULTS.failureTimeoutMs

type Host = LanNode

const cfg = JSON.parse(process.argv[2] ?? '{}') as InnerConfig
const t0 = Date.now()
const rel = (): number => Date.now() - t0
const say = (msg: string): void => { console.log(`[chaos +${(rel() / 1000).toFixed(1)}s] ${msg}`) }

const configFile = join(cfg.out, 'cluster.config.json')
mkdirSync(cfg.out, { recursive: true })
writeFileSync(configFile, JSON.stringify({
  cluster: `chaos-${cfg.lan.prefix.replace(/-$/, '')}`,
  heartbeatIntervalMs: HEARTBEAT_MS,
  failureTimeoutMs: FAILURE_TIMEOUT_MS,
  quorum: cfg.quorum,
  capacity: 2,
  retryBaseMs: 200,
  retryMaxMs: 2_000,
  handlers: { record: join(ROOT, 'scripts/chaos/record-handler.js') }
}, null, 2))

const hosts: Host[] = cfg.lan.hosts.map(h => lanNode(h, join(cfg.out, 'hosts', `h${h.index}`)))

function startNode (h: Host): void {
  launch(h, { config: configFile, env: { TASKMESH_RECORD_FILE: join(h.dir, 'executions.jsonl') } })
}

// ---- run -------------------------------------------------------------------

const accepted: Accepted[] = []
const leaderSamples: LeaderSample[] = []
const observed: ObservedFault[] = []
let refused = 0
let stopLoad = false

async function waitForAgreement (limitMs: number): Promise<boolean> {
  return await agreed(hosts.filter(h => h.state === 'up'), limitMs, 200) !== null
}

/** Who leads, as each reachable node says, every 250 ms; and the leader's queue depth. */
async function pollLeaders (): Promise<void> {
  while (!stopLoad) {
    const at = rel()
    await Promise.all(hosts.map(async h => {
      if (h.state !== 'up') return
      const v = await http<ClusterView>(`${h.url}/v1/cluster`, {}, 1_000).then(r => r.status === 200 ? r.body : null, () => null)
      if (v === null) return
      const leaderMember = v.members.find(m => m.name === v.leader?.name)
      leaderSamples.push({ atMs: at, answeredMs: rel(), host: h.name, leader: v.leader?.name ?? null, term: v.leader?.term ?? null, queued: leaderMember?.queued ?? null })
    }))
    await new Promise(resolve => setTimeout(resolve, 250))
  }
}

const rng = seededRng(cfg.seed ^ 0x5eed)
const TYPES = ['echo', 'sleep', 'hash', 'fail', 'record'] as const

function makeTask (n: number): { type: typeof TYPES[number], payload: unknown, maxAttempts: number } {
  const type = TYPES[Math.floor(rng() * TYPES.length)]!
  switch (type) {
    case 'echo': return { type, payload: { n }, maxAttempts: 10 }
    case 'sleep': return { type, payload: { ms: 50 + Math.floor(rng() * 400) }, maxAttempts: 10 }
    case 'hash': return { type, payload: { data: `task-${n}`, rounds: 1 + Math.floor(rng() * 2_000) }, maxAttempts: 10 }
    case 'fail': return { type, payload: { message: `planned failure ${n}` }, maxAttempts: 2 }
    case 'record': return { type, payload: { ms: 20 + Math.floor(rng() * 300), n }, maxAttempts: 10 }
  }
}

/** Client lanes: two per host, so that no one unreachable host can stop the load. */
const LANES = 2 * hosts.length
/** A submit gets this long to answer; then it is retried on another host (same idempotency keys). */
const REQUEST_TIMEOUT_MS = 2_000
/** Tries of one batch, the first included. */
const MAX_TRIES = 3

const requests: ClientRequest[] = []

/**
 * Submits batches of 1-8 tasks to random reachable nodes from LANES client
 * lanes (about 30 tasks/s in all, as with two lanes before). Every task has
 * an idempotency key; a submit that gets no answer within REQUEST_TIMEOUT_MS
 * (or a 5xx) is retried on another host with the same keys, up to MAX_TRIES
 * tries. Every request is recorded: host, latency, outcome.
 */
async function workload (): Promise<void> {
  let n = 0
  const pauseScale = LANES / 2
  const lane = async (): Promise<void> => {
    while (!stopLoad) {
      const size = 1 + Math.floor(rng() * 8)
      const tasks = Array.from({ length: size }, () => { const i = n++; return { ...makeTask(i), idempotencyKey: `chaos-${cfg.seed}-${i}` } })
      const tried = new Set<string>()
      let batchAccepted = false
      for (let attempt = 0; attempt < MAX_TRIES && !stopLoad; attempt++) {
        const up = hosts.filter(h => h.state === 'up' && !tried.has(h.name))
        const h = up[Math.floor(rng() * up.length)]
        if (h === undefined) break
        tried.add(h.name)
        const at = rel()
        const t = performance.now()
        let outcome: ClientRequest['outcome'] = 'no-answer'
        let retryable = true
        try {
          const r = await http<{ ids?: string[] }>(`${h.url}/v1/tasks/batch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ tasks }) }, REQUEST_TIMEOUT_MS)
          if (r.status === 202 && r.body.ids !== undefined) {
            outcome = 'accepted'
            r.body.ids.forEach((id, i) => { accepted.push({ id, type: tasks[i]!.type, payload: tasks[i]!.payload, origin: h.name, atMs: at }) })
          } else {
            outcome = 'refused'
            retryable = r.status >= 500
          }
        } catch {
          // No answer: the client cannot know whether it was accepted; the same keys go to another host.
        }
        requests.push({ atMs: at, host: h.name, latencyMs: performance.now() - t, outcome, tasks: size, retry: attempt })
        batchAccepted = outcome === 'accepted'
        if (batchAccepted || !retryable) break
      }
      if (!batchAccepted) refused += size // on no host (or no answer: the client cannot know)
      await new Promise(resolve => setTimeout(resolve, (100 + Math.floor(rng() * 300)) * pauseScale))
    }
  }
  await Promise.all(Array.from({ length: LANES }, async () => { await lane() }))
}

function pick (role: PlannedFault['role'], eligible: Host[]): Host | undefined {
  const leaderName = leaderAt(leaderSamples, rel())
  const leader = eligible.find(h => h.name === leaderName)
  if (role === 'leader' && leader !== undefined) return leader
  if (role === 'origin') {
    const recent = accepted.slice(-200).map(a => a.origin)
    const origins = eligible.filter(h => recent.includes(h.name))
    if (origins.length > 0) return origins[Math.floor(rng() * origins.length)]
  }
  const workers = eligible.filter(h => h !== leader)
  return (workers.length > 0 ? workers : eligible)[Math.floor(rng() * (workers.length > 0 ? workers.length : eligible.length))]
}

const undo: Array<{ atMs: number, run: () => void }> = []

function inject (f: PlannedFault): void {
  const down = hosts.filter(h => h.state === 'down').length
  const majority = Math.floor(hosts.length / 2) + 1
  const eligible = hosts.filter(h => h.state === 'up')
  const target = pick(f.role, eligible)
  if (target === undefined) { say(`skip ${f.kind}: no eligible host`); return }
  const record = (kind: ObservedFault['kind'], minority: string[] = []): void => {
    observed.push({ atMs: rel(), kind, role: f.role, host: target.name, holdMs: f.holdMs, minority, endMs: null })
    say(`FAULT ${kind} ${target.name} (${f.role})${minority.length > 0 ? ` minority ${minority.join(',')}` : ''} for ${(f.holdMs / 1000).toFixed(1)} s`)
  }
  const end = (o: ObservedFault | undefined): void => { if (o !== undefined) o.endMs = rel() }
  switch (f.kind) {
    case 'kill': {
      // Never more than a minority down at once, so the cluster can go on.
      if (hosts.length - down - 1 < majority) { say(`skip kill: ${down} already down`); return }
      record('kill')
      target.proc?.kill('SIGKILL')
      break
    }
    case 'restart': {
      record('restart')
      const o = observed.at(-1)
      target.proc?.kill('SIGKILL')
      undo.push({ atMs: rel() + f.holdMs, run: () => { end(o); if (target.state === 'down') startNode(target) } })
      break
    }
    case 'pause': {
      record('pause')
      const o = observed.at(-1)
      target.proc?.kill('SIGSTOP')
      target.state = 'paused'
      undo.push({ atMs: rel() + f.holdMs, run: () => { end(o); if (target.state === 'paused') { target.proc?.kill('SIGCONT'); target.state = 'up' } } })
      break
    }
    case 'partition': {
      if (observed.some(o => o.kind === 'partition' && o.endMs === null)) { say('skip partition: one is in place'); return }
      let minority: Host[]
      if (f.shape === 'isolate') {
        minority = [target]
        isolate(cfg.lan, target.host)
      } else {
        const others = hosts.filter(h => h !== target)
        const size = Math.max(1, Math.floor((hosts.length - 1) / 2))
        minority = [target, ...others.sort(() => rng() - 0.5).slice(0, size - 1)]
        split(cfg.lan, minority.map(h => h.host))
      }
      record('partition', minority.map(h => h.name))
      const o = observed.at(-1)
      undo.push({ atMs: rel() + f.holdMs, run: () => { end(o); heal(cfg.lan) } })
      break
    }
  }
}

async function faults (schedule: PlannedFault[]): Promise<void> {
  let next = 0
  while (!stopLoad) {
    const now = rel() - loadStartMs
    while (next < schedule.length && schedule[next]!.atMs <= now) inject(schedule[next++]!)
    for (const u of undo.filter(u => u.atMs <= rel())) { undo.splice(undo.indexOf(u), 1); u.run() }
    await new Promise(resolve => setTimeout(resolve, 50))
  }
}

async function progress (): Promise<void> {
  while (!stopLoad) {
    await new Promise(resolve => setTimeout(resolve, 5_000))
    const last = leaderSamples.at(-1)
    say(`${accepted.length} tasks accepted, ${refused} refused, ${observed.length} faults; leader ${last?.leader ?? '?'} (term ${last?.term ?? '?'}); hosts ${hosts.map(h => `${h.name}:${h.state}`).join(' ')}`)
  }
}

// ---- main ------------------------------------------------------------------

const schedule = faultSchedule({ seed: cfg.seed, durationMs: cfg.durationMs, faults: cfg.faults, rate: cfg.rate })
writeFileSync(join(cfg.out, 'schedule.json'), JSON.stringify(schedule, null, 2))
say(`seed ${cfg.seed}: ${hosts.length} hosts, ${schedule.length} faults planned over ${cfg.durationMs / 1000} s (${cfg.faults.join(', ')}), quorum ${cfg.quorum}`)
for (const h of hosts) startNode(h)
if (!await waitForAgreement(30_000)) {
  say('the nodes did not agree on a leader within 30 s; see hosts/*/node.log')
  for (const h of hosts) h.proc?.kill('SIGKILL')
  process.exit(3)
}
say('cluster formed; load and faults begin')
// Member ids (in task records) to host names (in the report).
const names = new Map<string, string>()
for (const h of hosts) {
  const v = await http<{ members: Array<{ id: string, name: string }> }>(`${h.url}/v1/cluster`, {}, 2_000).catch(() => null)
  for (const m of v?.body.members ?? []) names.set(m.id, m.name)
}
const loadStartMs = rel()
const running = Promise.all([workload(), pollLeaders(), faults(schedule), progress()])
await new Promise(resolve => setTimeout(resolve, cfg.durationMs))
stopLoad = true
await running
const loadEndMs = rel()

// Faults stop: everything undone, everyone back.
say('faults stop: healing, resuming and restarting every node')
for (const u of undo.splice(0)) u.run()
heal(cfg.lan)
for (const o of observed) if (o.endMs === null) o.endMs = rel()
for (const h of hosts) {
  if (h.state === 'paused') { h.proc?.kill('SIGCONT'); h.state = 'up' }
  if (h.state === 'down') startNode(h)
}
await waitForAgreement(30_000)
say(`settling: waiting for ${accepted.length} accepted tasks to end`)
const settleStart = rel()
let pending = accepted.map(a => a.id)
while (pending.length > 0 && rel() - settleStart < cfg.settleMs) {
  const still: string[] = []
  for (let i = 0; i < pending.length; i += 50) {
    const chunk = pending.slice(i, i + 50)
    await Promise.all(chunk.map(async id => {
      const h = hosts[Math.floor(rng() * hosts.length)]!
      const r = await http<{ status?: TaskStatus }>(`${h.url}/v1/tasks/${id}?wait=2000`, {}, 5_000).catch(() => null)
      if (r === null || r.body.status === undefined || !isTerminal(r.body.status)) still.push(id)
    }))
  }
  pending = still
  if (pending.length > 0) say(`${pending.length} tasks not ended yet`)
}
const settledAfterMs = pending.length === 0 ? rel() - settleStart : null
// Let the last endings travel between holders, then stop the nodes and read what they stored.
await new Promise(resolve => setTimeout(resolve, 3_000))
say('stopping the nodes')
await Promise.all(hosts.map(async h => { await stopNode(h) }))

const records: HostRecord[] = hosts.map(h => ({
  host: h.name,
  dataDir: join(h.dir, 'data'),
  log: readText(join(h.dir, 'node.log')),
  executions: readText(join(h.dir, 'executions.jsonl'))
}))
const data: RunData = {
  seed: cfg.seed,
  hosts: hosts.map(h => h.name),
  quorum: cfg.quorum,
  failureTimeoutMs: FAILURE_TIMEOUT_MS,
  startedAt: t0,
  loadStartMs,
  loadEndMs,
  settledAfterMs,
  schedule,
  observed,
  accepted,
  refused,
  leaderSamples,
  records,
  expected: a => expectedResult(a)
}
const result = checkRun(data)
const seen = availability({ requests, accepted, finals: result.finals, observed, leaderSamples, hostCount: hosts.length, hosts: hosts.map(h => h.name), quorum: cfg.quorum, check: result, failureTimeoutMs: FAILURE_TIMEOUT_MS, hostOfId: id => id === null ? null : names.get(id) ?? null, startedAt: t0, loadStartMs, loadEndMs })
const paths = writeReport(cfg.out, data, result, seen, { durationMs: cfg.durationMs, faults: cfg.faults, rate: cfg.rate, lanes: LANES, requestTimeoutMs: REQUEST_TIMEOUT_MS })
say(`report: ${paths.json} and ${paths.html}`)
console.log(result.summary)
console.log(clientSummary(seen))
process.exit(result.violations.length === 0 ? 0 : 1)

/** What a client saw, in a few lines (the report has all of it). */
function clientSummary (a: ReturnType<typeof availability>): string {
  const p = (x: { p50: number | null, p99: number | null, count: number }): string => `p50 ${x.p50 ?? '-'} ms, p99 ${x.p99 ?? '-'} ms (${x.count})`
  const gap = a.longestMajorityGap
  return [
    `client: ${a.requests.total} submit requests from ${LANES} lanes, ${a.requests.accepted} accepted (${a.requests.acceptedOnRetry} on a retry), ${a.requests.refused} refused, ${a.requests.noAnswer} unanswered within ${REQUEST_TIMEOUT_MS} ms`,
    `accepted submit latency: during faults ${p(a.latency.duringFaults)}; outside faults ${p(a.latency.outsideFaults)}`,
    `longest majority-side gap (no submit accepted, no task begun, work waiting): ${gap === null ? 'none' : `${gap.ms} ms from +${(gap.fromMs / 1000).toFixed(1)}s${gap.during === null ? '' : ` (during ${gap.during})`}`}`,
    `faults that touched the leader: ${a.leaderFaults.length}; leader changes caused by a heal: ${a.healChanges.length}${a.forcedAfterHeal.length === 0 ? '' : ` (and ${a.forcedAfterHeal.length} after a heal forced by a fault: ${a.forcedAfterHeal.map(c => c.forcedBy).join('; ')})`}`
  ].join('\n')
}

function readText (path: string): string {
  try { return readFileSync(path, 'utf8') } catch { return '' }
}

/** What a task of the workload must end with. */
function expectedResult (a: Accepted): { status: 'succeeded' | 'failed', result?: unknown } {
  const p = a.payload as Record<string, unknown>
  switch (a.type) {
    case 'echo': case 'record': return { status: 'succeeded', result: a.payload }
    case 'sleep': return { status: 'succeeded', result: { sleptMs: p.ms } }
    case 'hash': {
      let digest = Buffer.from(p.data as string)
      for (let i = 0; i < (p.rounds as number); i++) digest = createHash('sha256').update(digest).digest()
      return { status: 'succeeded', result: { hex: digest.toString('hex') } }
    }
    default: return { status: 'failed' }
  }
}
