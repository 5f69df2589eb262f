/**
 * What operators see, on real nodes: server-sent events, Prometheus metrics,
 * the OpenAPI document, and the limit on event streams.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../../src/config.ts'
import { startNode } from '../../src/node.ts'
import type { RunningNode } from '../../src/node.ts'
import { openEvents } from '../support/events.ts'
import { NodeSet, agreedLeader, waitFor } from '../support/nodes.ts'
import type { TestNode } from '../support/nodes.ts'
import { promtoolCheckMetrics } from '../support/promtool.ts'

/** Prometheus text -> sample values by their full name with labels. */
function samples (text: string): Map<string, number> {
  const out = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || line.trim() === '') continue
    const i = line.lastIndexOf(' ')
    out.set(line.slice(0, i), Number(line.slice(i + 1)))
  }
  return out
}

function sum (m: Map<string, number>, prefix: string): number {
  let s = 0
  for (const [k, v] of m) if (k === prefix || k.startsWith(prefix + '{')) s += v
  return s
}

async function submit (node: TestNode, body: unknown): Promise<string> {
  const res = await fetch(`${node.url}/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  expect(res.status).toBe(202)
  return (await res.json() as { id: string }).id
}

describe('events and metrics on three real nodes', () => {
  const set = new NodeSet()
  let nodes: TestNode[] = []
  let leader: TestNode
  let first: { id: string, term: number }
  beforeAll(async () => {
    nodes = [await set.start({ name: 'obs1' }), await set.start({ name: 'obs2' }), await set.start({ name: 'obs3' })]
    first = await waitFor(async () => await agreedLeader(nodes, 3), 10_000, 'three nodes to agree')
    leader = nodes.find(n => n.id === first.id)!
  })
  afterAll(async () => { await set.stopAll() })

  it('streams task events filtered by id: only that task, from queued or running to succeeded with its progress', async () => {
    const node = nodes.find(n => n !== leader)!
    const watched = await submit(node, { type: 'sleep', payload: { ms: 1_200 } })
    const stream = await openEvents(`${node.url}/v1/events?kinds=task&task=${watched}`)
    try {
      const other = await submit(node, { type: 'echo', payload: { other: true } })
      const hello = await stream.next(e => e.event === 'hello', 2_000, 'hello')
      expect((hello.data as { tasks: Array<{ id: string }> }).tasks.map(t => t.id)).toEqual([watched])
      await stream.next(e => e.event === 'task' && (e.data as { status: string }).status === 'succeeded', 15_000, 'the watched task to succeed')
      const taskEvents = stream.events.filter(e => e.event === 'task').map(e => e.data as { id: string, status: string, progress: unknown, worker: string | null })
      expect(new Set(taskEvents.map(t => t.id))).toEqual(new Set([watched]))
      expect(taskEvents.some(t => t.status === 'running' && typeof t.progress === 'number' && t.progress > 0 && t.progress < 1)).toBe(true)
      expect(taskEvents.at(-1)).toMatchObject({ status: 'succeeded', progress: 1, result: { sleptMs: 1_200 } })
      expect(stream.events.every(e => e.event === 'hello' || e.event === 'task')).toBe(true)
      expect(JSON.stringify(stream.events)).not.toContain(other)
    } finally {
      stream.close()
    }
  })

  it('serves taskmesh_ counters and histograms with non-zero values after tasks ran, and Node process metrics, which promtool check metrics passes', async () => {
    const ids = await Promise.all(Array.from({ length: 20 }, async (_, i) => await submit(nodes[i % 3]!, { type: 'echo', payload: i })))
    for (const id of ids) {
      const t = await (await fetch(`${leader.url}/v1/tasks/${id}?wait=10000`)).json() as { status: string }
      expect(t.status).toBe('succeeded')
    }
    // The leader holds every task submitted while it leads, and talks RPC with every member.
    const text = await (await fetch(`${leader.url}/metrics`)).text()
    const m = samples(text)
    expect(sum(m, 'taskmesh_task_transitions_total')).toBeGreaterThan(0)
    expect(m.get('taskmesh_task_transitions_total{state="succeeded",type="echo"}')).toBeGreaterThanOrEqual(20)
    expect(sum(m, 'taskmesh_task_run_seconds_count')).toBeGreaterThanOrEqual(20)
    expect(sum(m, 'taskmesh_task_latency_seconds_count')).toBeGreaterThanOrEqual(20)
    expect(sum(m, 'taskmesh_task_latency_seconds_sum')).toBeGreaterThan(0)
    expect(m.get('taskmesh_tasks{state="succeeded",type="echo"}')).toBeGreaterThanOrEqual(20)
    expect(sum(m, 'taskmesh_rpc_messages_total')).toBeGreaterThan(0)
    expect(sum(m, 'taskmesh_rpc_bytes_total')).toBeGreaterThan(0)
    expect(m.get('taskmesh_members{status="alive"}')).toBe(3)
    expect(m.get('taskmesh_leader_term')).toBe(first.term)
    expect(m.get('taskmesh_is_leader')).toBe(1)
    expect(sum(m, 'taskmesh_leader_changes_total')).toBeGreaterThan(0)
    expect(sum(m, 'taskmesh_heartbeat_lag_seconds')).toBeGreaterThanOrEqual(0)
    expect([...m.keys()].filter(k => k.startsWith('taskmesh_heartbeat_lag_seconds{'))).toHaveLength(2)
    expect(m.has('taskmesh_queue_depth')).toBe(true)
    expect(m.get('process_cpu_user_seconds_total')).toBeGreaterThan(0)
    expect(m.get('nodejs_heap_size_total_bytes')).toBeGreaterThan(0)
    expect(text).toMatch(/# TYPE taskmesh_task_run_seconds histogram/)
    // Prometheus's own linter finds nothing to say about the scrape.
    expect(promtoolCheckMetrics(text)).toEqual({ status: 0, output: '' })
  })

  it('streams a leader-change event within 2 s of SIGKILL of the leader', async () => {
    const survivors = nodes.filter(n => n !== leader)
    const stream = await openEvents(`${survivors[0]!.url}/v1/events?kinds=leader,member`)
    try {
      await stream.next(e => e.event === 'hello', 2_000, 'hello')
      const killedAt = Date.now()
      leader.signal('SIGKILL')
      const change = await stream.next(e => {
        const d = e.data as { leader: { id: string, term: number } | null }
        return e.event === 'leader' && d.leader !== null && survivors.some(s => s.id === d.leader!.id)
      }, 2_000, 'a new leader')
      expect(change.at - killedAt).toBeLessThan(2_000)
      expect((change.data as { term: number }).term).toBeGreaterThan(first.term)
      const dead = await stream.next(e => e.event === 'member' && (e.data as { id: string, status: string }).id === leader.id && (e.data as { status: string }).status === 'dead', 2_000, 'the leader declared dead')
      expect(dead.data).toMatchObject({ change: 'status', name: leader.name })
    } finally {
      stream.close()
    }
  })
})

describe('one node in this process: OpenAPI and the event stream limit', () => {
  let node: RunningNode
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(join(os.tmpdir(), 'taskmesh-test-'))
    const config = loadConfig({ flags: { cluster: `docs-${process.pid}`, httpPort: 0, dataDir: dir, listen: ['/ip4/127.0.0.1/tcp/0'], logLevel: 'silent', maxEventStreams: 2, mdns: false } })
    node = await startNode(config)
  })
  afterAll(async () => {
    await node.stop()
    await rm(dir, { recursive: true, force: true })
  })

  it('/docs serves the OpenAPI document listing every /v1 route fastify has, with its methods', async () => {
    const doc = await (await fetch(`${node.httpUrl}/docs/json`)).json() as { openapi: string, paths: Record<string, Record<string, unknown>> }
    expect(doc.openapi).toMatch(/^3\./)
    const documented = new Set(Object.entries(doc.paths).flatMap(([path, ops]) => Object.keys(ops).map(m => `${m.toUpperCase()} ${path.replace(/\{(\w+)\}/g, ':$1')}`)))
    const actual = routesOf(node.http.printRoutes({ commonPrefix: false })).filter(r => / \/v1\//.test(r) && !r.startsWith('HEAD '))
    expect(actual.length).toBeGreaterThanOrEqual(7)
    for (const r of actual) expect(documented, r).toContain(r)
    expect(documented).toContain('GET /metrics')
    for (const [path, ops] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(ops)) expect((op as { summary?: string }).summary, `${method} ${path}`).toBeTruthy()
    }
    const ui = await fetch(`${node.httpUrl}/docs`, { redirect: 'follow' })
    expect(ui.status).toBe(200)
    expect(await ui.text()).toMatch(/swagger/i)
  })

  it('refuses an event stream beyond maxEventStreams with 503 TOO_MANY_STREAMS, and accepts one again when a client leaves', async () => {
    const a = await openEvents(`${node.httpUrl}/v1/events`)
    const b = await openEvents(`${node.httpUrl}/v1/events`)
    try {
      const res = await fetch(`${node.httpUrl}/v1/events`)
      expect(res.status).toBe(503)
      expect(await res.json()).toMatchObject({ error: { code: 'TOO_MANY_STREAMS' } })
      expect(res.headers.get('retry-after')).not.toBeNull()
      a.close()
      const c = await waitFor(async () => await openEvents(`${node.httpUrl}/v1/events`).catch(() => undefined), 5_000, 'a free stream slot')
      await c.next(e => e.event === 'hello', 2_000, 'hello')
      c.close()
    } finally {
      a.close()
      b.close()
    }
    const bad = await fetch(`${node.httpUrl}/v1/events?kinds=everything`)
    expect(bad.status).toBe(400)
  })
})

/** `printRoutes({ commonPrefix: false })` as "METHOD /path" lines. */
function routesOf (tree: string): string[] {
  const out: string[] = []
  const stack: string[] = []
  for (const line of tree.split('\n')) {
    const m = /^([│ ├└─]*)(\S+) \(([^)]+)\)$/.exec(line) ?? /^([│ ├└─]*)(\S+)$/.exec(line)
    if (m === null) continue
    const depth = m[1]!.length / 4
    stack.length = depth
    const path = (stack[depth - 1] ?? '') + m[2]!
    stack[depth] = path
    for (const method of (m[3] ?? '').split(',').map(s => s.trim()).filter(s => s !== '')) out.push(`${method} ${path.replace(/\/\//g, '/')}`)
  }
  return out
}
