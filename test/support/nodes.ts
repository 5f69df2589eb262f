/**
 * Starts real taskmesh nodes as child processes (the same `taskmesh start`
 * a user runs) and cleans up after each test. Tests run inside a private
 * network namespace (see scripts/isolated.sh), so mDNS stays on loopback.
 */
import { spawn } from 'node:child_process'
import type { ChildProcess } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import { join, resolve } from 'node:path'
import { afterEach } from 'vitest'

const CLI = resolve(import.meta.dirname, '../../bin/taskmesh.js')

export type { ClusterView } from '../../src/cli/table.ts'
import type { ClusterView } from '../../src/cli/table.ts'

export interface TestNode {
  name: string
  id: string
  url: string
  dataDir: string
  proc: ChildProcess
  output: () => string
  signal: (sig: NodeJS.Signals) => void
  cluster: () => Promise<ClusterView>
  exited: Promise<number | null>
}

export interface StartNodeOptions {
  name: string
  cluster?: string
  dataDir?: string
  args?: string[]
  env?: Record<string, string>
}

export class NodeSet {
  readonly nodes: TestNode[] = []
  readonly #dirs: string[] = []

  async tempDir (): Promise<string> {
    const dir = await mkdtemp(join(os.tmpdir(), 'taskmesh-test-'))
    this.#dirs.push(dir)
    return dir
  }

  /** Starts `taskmesh start` and resolves once it logs "node started". */
  async start (opts: StartNodeOptions): Promise<TestNode> {
    const dataDir = opts.dataDir ?? await this.tempDir()
    const args = [CLI, 'start', '--name', opts.name, '--cluster', opts.cluster ?? 'test', '--http-port', '0',
      '--data-dir', dataDir, '--listen', '/ip4/127.0.0.1/tcp/0', ...(opts.args ?? [])]
    const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...opts.env } })
    let out = ''
    proc.stdout.on('data', (d: Buffer) => { out += d.toString() })
    proc.stderr.on('data', (d: Buffer) => { out += d.toString() })
    const exited = new Promise<number | null>(res => proc.on('exit', code => { res(code) }))
    const started = await waitFor(async () => {
      if (proc.exitCode !== null) throw new Error(`node ${opts.name} exited ${proc.exitCode}:\n${out}`)
      const line = out.split('\n').find(l => l.includes('"node started"'))
      return line === undefined ? undefined : JSON.parse(line) as { id: string, http: string }
    }, 20_000, `node ${opts.name} to start`)
    const node: TestNode = {
      name: opts.name,
      id: started.id,
      url: started.http,
      dataDir,
      proc,
      output: () => out,
      signal: sig => { proc.kill(sig) },
      cluster: async () => await getJson<ClusterView>(`${started.http}/v1/cluster`),
      exited
    }
    this.nodes.push(node)
    return node
  }

  /** The membership-related log lines of every node, condensed, for failure reports. */
  dump (): string {
    return this.nodes.map(n => n.output().split('\n').filter(l => /leader|member|incarnation|rejected|stalled|started/.test(l)).map(l => {
      try {
        const j = JSON.parse(l) as Record<string, unknown>
        return `${String(j.time)} ${String(j.node)} ${String(j.msg)} ${String(j.member ?? j.leader ?? '')} ${String(j.term ?? '')} ${String(j.reason ?? '')}`
      } catch { return l }
    }).join('\n')).join('\n---\n')
  }

  async stopAll (): Promise<void> {
    for (const n of this.nodes) {
      if (n.proc.exitCode === null && n.proc.signalCode === null) {
        n.proc.kill('SIGCONT')
        n.proc.kill('SIGKILL')
        await n.exited
      }
    }
    this.nodes.length = 0
    await Promise.all(this.#dirs.map(async d => { await rm(d, { recursive: true, force: true }) }))
    this.#dirs.length = 0
  }
}

export async function getJson<T> (url: string): Promise<T> {
  const res = await fetch(url, { signal: AbortSignal.timeout(2_000) })
  if (!res.ok) throw new Error(`${url}: ${res.status}`)
  return await res.json() as T
}

/** Polls `check` until it returns a value other than undefined/false, or fails after `timeoutMs`. */
export async function waitFor<T> (check: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs: number, what: string, intervalMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let lastError: unknown
  for (;;) {
    try {
      const v = await check()
      if (v !== undefined && v !== false) return v
    } catch (err) {
      lastError = err
      if (err instanceof Error && /exited/.test(err.message)) throw err
    }
    if (Date.now() >= deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError === undefined ? '' : `: ${String(lastError)}`}`)
    await new Promise(r => setTimeout(r, intervalMs))
  }
}

/**
 * A negative assertion over time: runs `check` (which throws or fails an
 * expect when the thing that must not happen did) every `intervalMs` for
 * `boundMs`, failing at the first violation. The caller says in a comment why
 * `boundMs` is long enough for the thing to have shown if it were going to.
 */
export async function holdsFor (check: () => Promise<void> | void, boundMs: number, intervalMs = 100): Promise<void> {
  const until = Date.now() + boundMs
  for (;;) {
    await check()
    const left = until - Date.now()
    if (left <= 0) return
    await new Promise(r => setTimeout(r, Math.min(intervalMs, left)))
  }
}

/**
 * The leader all given nodes agree on (one of them, claiming the same term),
 * with `expectAlive` alive members in each view; undefined otherwise.
 */
export async function agreedLeader (nodes: TestNode[], expectAlive: number): Promise<{ id: string, term: number } | undefined> {
  const views = await Promise.all(nodes.map(async n => await n.cluster()))
  const first = views[0]?.leader
  if (first == null || !nodes.some(n => n.id === first.id)) return undefined
  for (const v of views) {
    if (v.leader === null || v.leader.id !== first.id || v.leader.term !== first.term) return undefined
    if (v.members.filter(m => m.status === 'alive').length !== expectAlive) return undefined
  }
  return { id: first.id, term: first.term }
}

/**
 * A NodeSet for a describe block: after each test its nodes are stopped, and
 * after a failed one their election and membership log lines are printed.
 */
export function nodesPerTest (): NodeSet {
  const set = new NodeSet()
  afterEach(async (ctx) => {
    if (ctx.task.result?.state === 'fail') console.log(set.dump())
    await set.stopAll()
  })
  return set
}
