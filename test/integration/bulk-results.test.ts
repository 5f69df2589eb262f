/**
 * Results in bulk on real nodes: a batch submitted to one node is waited for
 * through another that holds none of it (POST /v1/tasks/wait: one request per
 * round, one `wait` RPC per member per round, not one per task), the answer
 * comes as soon as one task ended, batch?wait submits and waits in one
 * request, the client and the CLI use the bulk wait, and bad input gets
 * clear answers.
 */
import { spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { TaskmeshClient } from '../../src/client/index.ts'
import type { Task } from '../../src/client/index.ts'
import { agreedLeader, nodesPerTest, waitFor } from '../support/nodes.ts'
import type { TestNode } from '../support/nodes.ts'

const CLI = resolve(import.meta.dirname, '../../src/cli.ts')

interface BulkWaited { tasks: Task[], pending: string[], missing: string[] }

async function post (url: string, body: unknown, timeoutMs = 30_000): Promise<{ status: number, body: any }> {
  const res = await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(timeoutMs) })
  return { status: res.status, body: await res.json() }
}

/** A metric's value on a node (0 when absent). */
async function metric (node: TestNode, line: RegExp): Promise<number> {
  const text = await (await fetch(`${node.url}/metrics`, { signal: AbortSignal.timeout(5_000) })).text()
  const m = text.split('\n').find(l => line.test(l))
  return m === undefined ? 0 : Number(m.split(' ').at(-1))
}
const sentRpc = async (node: TestNode, kind: string): Promise<number> => await metric(node, new RegExp(`^taskmesh_rpc_messages_total\\{direction="sent",kind="${kind}"\\} `))
const bulkWaits = async (node: TestNode): Promise<number> => await metric(node, /^taskmesh_long_poll_requests_total\{route="wait"\} /)
const taskLongPolls = async (node: TestNode): Promise<number> => await metric(node, /^taskmesh_long_poll_requests_total\{route="task"\} /)

/** The ids of `ids` that the node holds a copy of (GET /v1/tasks lists what a node holds). */
async function heldBy (node: TestNode, ids: readonly string[]): Promise<string[]> {
  const listed = await (await fetch(`${node.url}/v1/tasks?limit=1000`)).json() as { tasks: Array<{ id: string }> }
  const mine = new Set(listed.tasks.map(t => t.id))
  return ids.filter(id => mine.has(id))
}

describe('results in bulk on real nodes', () => {
  const set = nodesPerTest()

  /**
   * Three nodes; tasks submitted to `origin` (not the leader) are stored there
   * and on the leader (the preferred second holder), so `reader` holds none.
   */
  async function three (prefix: string, env: Record<string, string> = {}): Promise<{ origin: TestNode, reader: TestNode }> {
    const nodes: TestNode[] = []
    for (let i = 1; i <= 3; i++) nodes.push(await set.start({ name: `${prefix}${i}`, cluster: prefix, args: ['--capacity', '4'], env }))
    const leader = await waitFor(async () => await agreedLeader(nodes, 3), 10_000, 'three nodes to agree')
    const [origin, reader] = nodes.filter(n => n.id !== leader.id)
    return { origin: origin!, reader: reader! }
  }

  it('a batch submitted to one node is waited for in bulk through a node that holds none of it: the first answer holds the shortest task alone', async () => {
    const { origin: a, reader: c } = await three('bw')
    // Sleeps of different lengths, the shortest first in time but not first in the list.
    const lengths = [4_000, 1_500, 5_000, 4_500]
    const sub = await post(`${a.url}/v1/tasks/batch`, { tasks: lengths.map(ms => ({ type: 'sleep', payload: { ms } })) })
    expect(sub.status).toBe(202)
    const ids = sub.body.ids as string[]
    expect(await heldBy(c, ids)).toEqual([])
    const getsBefore = await sentRpc(c, 'get')
    const waitsBefore = await sentRpc(c, 'wait')

    const first = await post(`${c.url}/v1/tasks/wait`, { ids, waitMs: 20_000 })
    expect(first.status).toBe(200)
    const r1 = first.body as BulkWaited
    expect(r1.tasks.map(t => t.id)).toEqual([ids[1]])
    expect(r1.tasks[0]).toMatchObject({ status: 'succeeded', result: { sleptMs: 1_500 } })
    expect(r1.pending).toEqual([ids[0], ids[2], ids[3]])
    expect(r1.missing).toEqual([])

    // The client loops on what is left until every task ended.
    let remaining = r1.pending
    const ended = new Map(r1.tasks.map(t => [t.id, t]))
    let rounds = 1
    while (remaining.length > 0) {
      const r = (await post(`${c.url}/v1/tasks/wait`, { ids: remaining, waitMs: 20_000 })).body as BulkWaited
      expect(r.tasks.length).toBeGreaterThan(0)
      for (const t of r.tasks) ended.set(t.id, t)
      remaining = r.pending
      rounds++
    }
    expect(ids.map(id => ended.get(id)?.status)).toEqual(lengths.map(() => 'succeeded'))
    expect(rounds).toBeLessThanOrEqual(lengths.length)
    // Every round was one bulk long-poll on c, and c asked the members with `wait` requests, never per-task `get`s.
    expect(await bulkWaits(c)).toBe(rounds)
    expect(await sentRpc(c, 'get')).toBe(getsBefore)
    expect(await sentRpc(c, 'wait')).toBeGreaterThan(waitsBefore)
  })

  it('200 tasks from one node waited for in bulk through another, with the client: one request per round, wait RPCs per round and member, never per task', async () => {
    const { origin: a, reader: c } = await three('bc')
    const ids = await new TaskmeshClient({ nodes: a.url }).submitMany(Array.from({ length: 200 }, (_, i) => ({ type: 'sleep', payload: { ms: 200 + (i % 5) * 300 } })))
    expect(await heldBy(c, ids)).toEqual([])
    const waitsBefore = await sentRpc(c, 'wait')
    const getsBefore = await sentRpc(c, 'get')
    const seen: string[] = []
    const started = Date.now()
    const tasks = await new TaskmeshClient({ nodes: c.url }).waitMany(ids, { timeoutMs: 60_000, onTask: t => { seen.push(t.id) } })
    expect(tasks.map(t => t.id)).toEqual(ids)
    expect(tasks.every(t => t.status === 'succeeded')).toBe(true)
    const elapsedMs = Date.now() - started
    expect(seen.sort()).toEqual([...ids].sort())
    const rounds = await bulkWaits(c)
    expect(rounds).toBeGreaterThan(0)
    expect(rounds).toBeLessThan(200)
    expect(await taskLongPolls(c)).toBe(0)
    // Never a request per task: per round one locating request to each of the two members, and one
    // waiting request to each per slice of at most 1 s (a round of t ms has at most ceil(t / 1000) slices).
    expect(await sentRpc(c, 'get')).toBe(getsBefore)
    expect(await sentRpc(c, 'wait') - waitsBefore).toBeLessThanOrEqual(2 * rounds + 2 * (rounds + Math.ceil(elapsedMs / 1000)))
  })

  it('batch?wait submits and waits in one request: 200 with every task once all ended, 202 with those that did when the wait expired', async () => {
    const a = await set.start({ name: 'bb1', cluster: 'bb' })
    const b = await set.start({ name: 'bb2', cluster: 'bb' })
    await waitFor(async () => await agreedLeader([a, b], 2), 10_000, 'two nodes to agree')
    const all = await post(`${b.url}/v1/tasks/batch?wait=20000`, { tasks: Array.from({ length: 50 }, (_, i) => ({ type: 'echo', payload: i })) })
    expect(all.status).toBe(200)
    expect(all.body.ids).toHaveLength(50)
    expect(all.body.pending).toEqual([])
    expect(all.body.tasks.map((t: Task) => t.id)).toEqual(all.body.ids)
    expect(all.body.tasks.map((t: Task) => t.result)).toEqual(Array.from({ length: 50 }, (_, i) => i))

    const some = await post(`${b.url}/v1/tasks/batch?wait=3000`, { tasks: [{ type: 'echo', payload: 'quick' }, { type: 'sleep', payload: { ms: 30_000 } }] })
    expect(some.status).toBe(202)
    expect(some.body.tasks.map((t: Task) => t.result)).toEqual(['quick'])
    expect(some.body.pending).toEqual([some.body.ids[1]])
    // The client's submitMany with { wait } takes the same route for one batch.
    const client = new TaskmeshClient({ nodes: a.url })
    const done = await client.submitMany([{ type: 'echo', payload: 'x' }, { type: 'echo', payload: 'y' }], { wait: { timeoutMs: 20_000 } })
    expect(done.map(t => [t.status, t.result])).toEqual([['succeeded', 'x'], ['succeeded', 'y']])
    expect(await metric(a, /^taskmesh_long_poll_requests_total\{route="batch"\} /)).toBe(1)
  })

  it('bad input gets clear answers: too many ids or none is a 400 naming the limit, unknown ids are listed as missing, and a bulk wait is one long-poll', async () => {
    const a = await set.start({ name: 'bi1', cluster: 'bi', env: { TASKMESH_MAX_BATCH_TASKS: '10', TASKMESH_MAX_LONG_POLLS: '2' } })
    const b = await set.start({ name: 'bi2', cluster: 'bi', env: { TASKMESH_MAX_BATCH_TASKS: '10', TASKMESH_MAX_LONG_POLLS: '2' } })
    await waitFor(async () => await agreedLeader([a, b], 2), 10_000, 'two nodes to agree')
    const tooMany = await post(`${a.url}/v1/tasks/wait`, { ids: Array.from({ length: 11 }, (_, i) => `t${i}`) })
    expect(tooMany.status).toBe(400)
    expect(tooMany.body.error.code).toBe('INVALID_REQUEST')
    expect(tooMany.body.error.message).toMatch(/ids.*10/)
    const none = await post(`${a.url}/v1/tasks/wait`, { ids: [] })
    expect(none.status).toBe(400)
    expect((await post(`${a.url}/v1/tasks/wait`, { ids: ['x'], waitMs: -1 })).status).toBe(400)
    // The OpenAPI document has the bulk wait's body (with this node's bound) and answer, and batch?wait's answers.
    const doc = await (await fetch(`${a.url}/docs/json`)).json() as { paths: Record<string, Record<string, any>> }
    const bulk = doc.paths['/v1/tasks/wait']!.post
    expect(bulk.requestBody.content['application/json'].schema.properties.ids.maxItems).toBe(10)
    expect(Object.keys(bulk.responses['200'].content['application/json'].schema.properties).sort()).toEqual(['missing', 'pending', 'tasks'])
    expect(Object.keys(doc.paths['/v1/tasks/batch']!.post.responses)).toEqual(expect.arrayContaining(['200', '202']))

    const known = (await post(`${b.url}/v1/tasks?wait=10000`, { type: 'echo', payload: 'known' })).body as Task
    expect(known.status).toBe('succeeded')
    const mixed = await post(`${a.url}/v1/tasks/wait`, { ids: ['nobody-has-this', known.id, 'nor-this'], waitMs: 10_000 })
    expect(mixed.status).toBe(200)
    expect(mixed.body).toMatchObject({ pending: [], missing: ['nobody-has-this', 'nor-this'] })
    expect(mixed.body.tasks.map((t: Task) => [t.id, t.result])).toEqual([[known.id, 'known']])
    // Only unknown ids: answered at once (nothing to wait for), still 200.
    const t = Date.now()
    const unknown = await post(`${a.url}/v1/tasks/wait`, { ids: ['nobody-has-this'], waitMs: 20_000 })
    expect(unknown.body).toEqual({ tasks: [], pending: [], missing: ['nobody-has-this'] })
    expect(Date.now() - t).toBeLessThan(10_000)

    // A bulk wait on many ids counts as one of maxLongPolls (2): a second waits too, a third is refused.
    const sleepers = (await post(`${a.url}/v1/tasks/batch`, { tasks: Array.from({ length: 10 }, () => ({ type: 'sleep', payload: { ms: 2_500 } })) })).body.ids as string[]
    const waits = [post(`${a.url}/v1/tasks/wait`, { ids: sleepers, waitMs: 15_000 }), post(`${a.url}/v1/tasks/wait`, { ids: sleepers.slice(0, 5), waitMs: 15_000 })]
    await waitFor(async () => await metric(a, /^taskmesh_long_polls /) === 2, 5_000, 'both bulk waits to be waiting')
    const third = await post(`${a.url}/v1/tasks/wait`, { ids: sleepers, waitMs: 1_000 })
    expect(third.status).toBe(429)
    expect(third.body.error.code).toBe('TOO_MANY_LONG_POLLS')
    for (const w of await Promise.all(waits)) expect(w.body.tasks.length).toBeGreaterThan(0)
  })

  it('taskmesh submit --file --wait waits in bulk through the client and ends with every task succeeded', async () => {
    const a = await set.start({ name: 'bf1', cluster: 'bf', args: ['--capacity', '4'] })
    const b = await set.start({ name: 'bf2', cluster: 'bf', args: ['--capacity', '4'] })
    await waitFor(async () => await agreedLeader([a, b], 2), 10_000, 'two nodes to agree')
    const file = join(await set.tempDir(), 'tasks.jsonl')
    writeFileSync(file, Array.from({ length: 2_500 }, (_, i) => JSON.stringify(i % 10 === 0 ? { type: 'sleep', payload: { ms: 100 } } : { type: 'echo', payload: i })).join('\n') + '\n')
    const r = spawnSync(process.execPath, [CLI, 'submit', '--file', file, '--wait', '--json', '--node', b.url], { encoding: 'utf8', timeout: 120_000 })
    expect(r.status, r.stderr).toBe(0)
    const summary = JSON.parse(r.stdout) as { ids: string[], counts: Record<string, number> }
    expect(summary.ids).toHaveLength(2_500)
    expect(summary.counts).toEqual({ succeeded: 2_500 })
    // Bulk waits (groups of 1,000 ids, one request per group per round), never a long-poll per task.
    expect(await taskLongPolls(b)).toBe(0)
    const rounds = await bulkWaits(b)
    expect(rounds).toBeGreaterThanOrEqual(3)
    expect(rounds).toBeLessThan(2_500)
  })
})
