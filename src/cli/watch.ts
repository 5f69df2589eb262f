/**
 * `taskmesh watch`: the live cluster and task flow in the terminal, from
 * GET /v1/events. On a terminal it redraws one screen (members, throughput,
 * recent tasks, leader changes and failures); piped, it prints one line per
 * event, or with --json one JSON object per event. When the node goes away
 * it reconnects to another member it knew.
 */
import { formatMemberTable } from './table.ts'
import type { ClusterView } from './table.ts'
import { TaskmeshApiError, isTerminalStatus } from '../client/index.ts'
import type { TaskStatus } from '../client/index.ts'
import { CliError, clientFor } from './common.ts'

/** An event as the screen reads it (the client's TaskmeshEvent, loosely typed). */
export interface ServerEvent { event: string, data: unknown }

export interface WatchOptions {
  node: string
  task?: string[]
  json?: boolean
}

interface TaskLine { id: string, type: string, status: TaskStatus, attempts: number, worker: string | null, progress: unknown }
interface Sample { succeeded: number, failed: number, cancelled: number, running: number, queued: number }

/** What the screen shows, folded from the events. */
export class WatchState {
  cluster: ClusterView | null = null
  readonly tasks = new Map<string, TaskLine>()
  readonly samples: Sample[] = []
  readonly log: string[] = []

  apply (e: ServerEvent, nowMs: number): void {
    const d = e.data as Record<string, unknown>
    const at = new Date(nowMs).toLocaleTimeString()
    switch (e.event) {
      case 'hello': {
        this.cluster = d.cluster as ClusterView | null
        this.samples.length = 0
        this.samples.push(...(d.history as Sample[]).slice(-60))
        this.tasks.clear()
        for (const t of (d.tasks as TaskLine[]).reverse()) this.#task(t)
        if (this.cluster?.leader != null) this.#log(`${at} leader is ${this.cluster.leader.name} (term ${this.cluster.leader.term})`)
        break
      }
      case 'cluster':
        this.cluster = d as unknown as ClusterView
        this.samples.push(d.sample as Sample)
        if (this.samples.length > 60) this.samples.shift()
        break
      case 'task': this.#task(d as unknown as TaskLine); break
      case 'leader': {
        const l = d.leader as { name: string, term: number } | null
        if (this.cluster !== null) this.cluster.leader = d.leader as ClusterView['leader']
        this.#log(`${at} ${l === null ? 'no leader' : `new leader ${l.name} (term ${l.term})`}`)
        break
      }
      case 'member': {
        const m = this.cluster?.members.find(x => x.id === d.id)
        if (m !== undefined && typeof d.status === 'string') m.status = d.status
        this.#log(`${at} ${String(d.name)} ${d.change === 'joined' ? 'joined' : d.change === 'removed' ? 'forgotten' : `is ${String(d.status)}${typeof d.reason === 'string' ? ` (${d.reason})` : ''}`}`)
        break
      }
    }
  }

  #task (t: TaskLine): void {
    this.tasks.delete(t.id)
    this.tasks.set(t.id, t)
    if (this.tasks.size > 200) this.tasks.delete(this.tasks.keys().next().value!)
  }

  #log (line: string): void {
    this.log.unshift(line)
    if (this.log.length > 50) this.log.length = 50
  }
}

const BARS = '▁▂▃▄▅▆▇█'

/** A one-line chart of the last values. */
export function sparkline (values: number[]): string {
  const max = Math.max(1, ...values)
  return values.map(v => BARS[Math.min(BARS.length - 1, Math.round((v / max) * (BARS.length - 1)))]).join('')
}

function progressText (p: unknown): string {
  if (typeof p === 'number' && p >= 0 && p <= 1) return `${Math.round(p * 100)}%`
  return p === null || p === undefined ? '' : JSON.stringify(p).slice(0, 30)
}

const paint = { green: '\x1b[32m', red: '\x1b[31m', yellow: '\x1b[33m', cyan: '\x1b[36m', dim: '\x1b[2m', bold: '\x1b[1m', reset: '\x1b[0m' }
const statusColour: Record<string, string> = { succeeded: paint.green, failed: paint.red, cancelled: paint.dim, running: paint.cyan, assigned: paint.cyan, retrying: paint.yellow }

/** The full screen for a terminal `rows` lines high. */
export function renderScreen (s: WatchState, colour: boolean, rows: number): string {
  const c = (code: string, text: string): string => colour ? `${code}${text}${paint.reset}` : text
  const out: string[] = []
  if (s.cluster === null) return 'waiting for the node…'
  out.push(c(paint.bold, `taskmesh watch — ${s.cluster.self.name}`) + `  ${new Date().toLocaleTimeString()}`)
  out.push(formatMemberTable(s.cluster, colour), '')
  const ended = s.samples.map(x => x.succeeded + x.failed + x.cancelled)
  out.push(`ended/s ${sparkline(ended)} ${ended.at(-1) ?? 0}`)
  out.push(`queued  ${sparkline(s.samples.map(x => x.queued))} ${s.samples.at(-1)?.queued ?? 0}`)
  out.push(`running ${sparkline(s.samples.map(x => x.running))} ${s.samples.at(-1)?.running ?? 0}`, '')
  const names = new Map(s.cluster.members.map(m => [m.id, m.name]))
  const room = Math.max(3, rows - out.length - 8)
  const recent = [...s.tasks.values()].reverse().slice(0, Math.ceil(room / 2))
  out.push(c(paint.bold, 'recent tasks (held by this node)'))
  for (const t of recent) {
    out.push(`  ${t.id.slice(0, 8)}  ${t.type.padEnd(10)} ${c(statusColour[t.status] ?? '', t.status.padEnd(9))} #${t.attempts} ${(t.worker === null ? '' : names.get(t.worker) ?? t.worker.slice(-6)).padEnd(12)} ${progressText(t.progress)}`)
  }
  out.push('', c(paint.bold, 'leader changes and failures'))
  for (const l of s.log.slice(0, Math.max(2, room - recent.length))) out.push('  ' + l)
  return out.join('\n')
}

function taskLine (at: string, t: TaskLine): string {
  return `${at} task ${t.id} ${t.type} ${t.status} attempt ${t.attempts} ${progressText(t.progress)}`.trimEnd()
}

/** One line for a piped, non-JSON watch; null for events not worth a line (the per-second cluster event). */
export function eventLine (e: ServerEvent, s: WatchState, nowMs: number): string | null {
  const d = e.data as Record<string, unknown>
  const at = new Date(nowMs).toISOString()
  switch (e.event) {
    case 'hello': return [`${at} connected to ${s.cluster?.self.name ?? '?'}; leader ${s.cluster?.leader?.name ?? 'none'}`, ...[...s.tasks.values()].map(t => taskLine(at, t))].join('\n')
    case 'leader': return s.log[0] === undefined ? null : `${at} ${s.log[0].replace(/^\S+ /, '')}`
    case 'member': return s.log[0] === undefined ? null : `${at} member ${s.log[0].replace(/^\S+ /, '')}`
    case 'task': return taskLine(at, d as unknown as TaskLine)
    default: return null
  }
}

/** Runs until Ctrl-C (or, with --task, until every watched task has ended). */
export async function watch (opts: WatchOptions, out: NodeJS.WriteStream): Promise<void> {
  const tty = out.isTTY === true && opts.json !== true
  const state = new WatchState()
  const abort = new AbortController()
  const watched = new Set(opts.task ?? [])
  process.once('SIGINT', () => { abort.abort() })
  const client = clientFor(opts.node)
  // An unknown id is an error, not an endless wait.
  for (const id of watched) await client.get(id)
  let drawQueued = false
  const draw = (): void => {
    if (drawQueued) return
    drawQueued = true
    setTimeout(() => {
      drawQueued = false
      out.write('\x1b[H\x1b[2J' + renderScreen(state, true, out.rows ?? 40) + '\n')
    }, 250)
  }
  const lost = (node: string, err: Error): void => {
    const why = `${new Date().toISOString()} lost ${node} (${err.message}); reconnecting`
    if (tty) out.write('\x1b[H\x1b[2J' + why + '\n')
    else if (opts.json !== true) out.write(why + '\n')
  }
  if (tty) out.write('\x1b[?25l')
  try {
    for await (const e of client.events({ tasks: [...watched], signal: abort.signal, onDisconnect: lost })) {
      state.apply(e, Date.now())
      if (opts.json === true) out.write(JSON.stringify({ event: e.event, data: e.data }) + '\n')
      else if (tty) draw()
      else { const line = eventLine(e, state, Date.now()); if (line !== null) out.write(line + '\n') }
      if (watched.size > 0 && [...watched].every(id => isTerminalStatus(state.tasks.get(id)?.status ?? 'queued'))) return
    }
  } catch (err) {
    if (err instanceof TaskmeshApiError) throw new CliError(err.message)
    throw err
  } finally {
    if (tty) out.write('\x1b[?25h\n')
  }
}
