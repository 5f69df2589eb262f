import { readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { agreedLeader, nodesPerTest, waitFor } from '../support/nodes.ts'
import type { TestNode } from '../support/nodes.ts'
import { dispatchingAt } from '../support/recording.ts'

interface TypeRow { type: string, maxConcurrent?: number, perSecond?: number, queued: number, running: number, limited: number }

async function types (node: TestNode): Promise<TypeRow[]> {
  const res = await fetch(`${node.url}/v1/types`, { signal: AbortSignal.timeout(5_000) })
  if (res.status !== 200) throw new Error(`GET /v1/types: ${res.status}`)
  return (await res.json() as { types: TypeRow[] }).types
}

async function put (node: TestNode, type: string, body: unknown): Promise<{ status: number, json: any }> {
  const res = await fetch(`${node.url}/v1/types/${type}`, { method: 'PUT', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
  return { status: res.status, json: await res.json() }
}

/**
 * The most `span` handlers that ran at once, from their start and end lines. A start
 * without an end ran in a process killed at `killedAt` (its handler died with it).
 */
function mostAtOnce (file: string, killedPid: number | undefined, killedAt: number): number {
  const events: Array<[number, number]> = []
  const open = new Map<string, number>()
  for (const line of readFileSync(file, 'utf8').trim().split('\n').filter(l => l !== '')) {
    const [ms, what, id, pid] = line.split(' ')
    const key = `${id!} ${pid!}`
    if (what === 'start') { open.set(key, Number(ms)); events.push([Number(ms), 1]) } else { open.delete(key); events.push([Number(ms), -1]) }
  }
  for (const key of open.keys()) if (Number(key.split(' ')[1]) === killedPid) events.push([killedAt, -1])
  // Ends before starts at the same millisecond: a slot freed and taken again is not two at once.
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1])
  let now = 0
  let most = 0
  for (const [, d] of events) { now += d; most = Math.max(most, now) }
  return most
}

describe('per-type limits (real nodes)', () => {
  const set = nodesPerTest()

  it('a type limited to 2 at runtime never has more than 2 running across the cluster under 200 submits and a leader SIGKILL, and the limit survives a restart', async () => {
    const dir = await set.tempDir()
    const spans = join(dir, 'spans.log')
    writeFileSync(spans, '')
    const config = join(dir, 'cluster.config.json')
    // The config allows 5; the runtime setting (2) must win, on every node, across the failover and the restart.
    writeFileSync(config, JSON.stringify({ handlers: { span: resolve(import.meta.dirname, '../fixtures/span-handler.js') }, types: { span: { maxConcurrent: 5 } } }))
    const opts = { args: ['--config', config, '--capacity', '4'], env: { TASKMESH_SPAN_FILE: spans } }
    const nodes = [await set.start({ name: 'l1', ...opts }), await set.start({ name: 'l2', ...opts }), await set.start({ name: 'l3', ...opts })]
    const first = await waitFor(async () => await agreedLeader(nodes, 3), 5_000, 'three nodes to agree')
    const leader = nodes.find(n => n.id === first.id)!
    const survivors = nodes.filter(n => n !== leader)

    expect((await put(nodes[0]!, 'span', { maxConcurrent: 0 })).status).toBe(400)
    const set2 = await put(survivors[0]!, 'span', { maxConcurrent: 2 })
    expect(set2.status, JSON.stringify(set2.json)).toBe(200)
    expect(set2.json).toMatchObject({ type: 'span', maxConcurrent: 2, stored: 3, members: 3 })
    expect(set2.json.perSecond).toBeUndefined()

    const ids: string[] = []
    for (let b = 0; b < 8; b++) {
      const res = await fetch(`${nodes[b % 3]!.url}/v1/tasks/batch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ tasks: Array.from({ length: 25 }, () => ({ type: 'span', payload: { ms: 40 } })) }) })
      expect(res.status).toBe(202)
      ids.push(...(await res.json() as { ids: string[] }).ids)
    }
    const during = await waitFor(async () => (await types(survivors[1]!)).find(t => t.type === 'span' && t.limited > 0), 10_000, 'the leader to hold span tasks back')
    expect(during).toMatchObject({ maxConcurrent: 2 })
    expect(during.running).toBeLessThanOrEqual(2)
    // Half-way, the leader dies: the new leader enforces the same limit.
    await waitFor(() => readFileSync(spans, 'utf8').split('\n').filter(l => l.includes(' end ')).length >= 60 || undefined, 60_000, 'a third of the tasks to end')
    const killedAt = Date.now()
    leader.signal('SIGKILL')
    await waitFor(() => dispatchingAt(survivors, killedAt), 5_000, 'a new leader to dispatch')
    const done = await Promise.all(ids.map(async id => await (await fetch(`${survivors[0]!.url}/v1/tasks/${id}?wait=60000`, { signal: AbortSignal.timeout(65_000) })).json() as { status: string }))
    for (const t of done) expect(t.status).toBe('succeeded')
    const most = mostAtOnce(spans, leader.proc.pid, killedAt)
    console.log(`per-type limit: at most ${most} span tasks ran at once (limit 2) over ${ids.length} tasks and a leader SIGKILL`)
    expect(most).toBeLessThanOrEqual(2)
    expect(most).toBe(2)
    expect((await types(survivors[0]!)).find(t => t.type === 'span')).toMatchObject({ maxConcurrent: 2, queued: 0, running: 0, limited: 0 })

    // A restart of the survivors (data kept): the runtime setting still wins over the config's 5.
    const dirs = survivors.map(n => n.dataDir)
    for (const n of survivors) { n.signal('SIGKILL'); await n.exited }
    const again = [await set.start({ name: 'l4', dataDir: dirs[0], ...opts }), await set.start({ name: 'l5', dataDir: dirs[1], ...opts })]
    await waitFor(async () => await agreedLeader(again, 2), 10_000, 'the restarted nodes to agree')
    expect((await types(again[1]!)).find(t => t.type === 'span')).toMatchObject({ maxConcurrent: 2 })
    // Removing the limit ({}) is a setting too.
    const removed = await put(again[0]!, 'span', {})
    expect(removed.json).toMatchObject({ type: 'span', stored: 2 })
    expect((await types(again[1]!)).find(t => t.type === 'span')).toBeUndefined()
  })
})
