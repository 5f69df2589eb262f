import { join, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { agreedLeader, nodesPerTest, waitFor } from '../support/nodes.ts'
import type { NodeSet, TestNode } from '../support/nodes.ts'
import { post, readTask, threeNodes } from '../support/task-http.ts'
import { dispatchingAt } from '../support/recording.ts'

/** A task as GET /v1/tasks/:id answers it, with the fields of delayed and retried tasks. */
interface Rec { id: string, status: string, attempts: number, maxAttempts: number, runAt?: number, retries?: number, worker: string | null, result: unknown, error: string | null, startedAt: number | null }

async function read (node: TestNode, id: string, waitMs = 0): Promise<Rec> {
  return await readTask<Rec>(node, id, waitMs)
}

/** Three nodes (2 slots each) with the `flaky` handler (fails its attempts up to payload.failThrough). */
async function cluster (set: NodeSet, prefix: string): ReturnType<typeof threeNodes> {
  return await threeNodes(set, prefix, { flaky: resolve(import.meta.dirname, '../fixtures/flaky-handler.js') })
}

/**
 * Starts every node's handler threads (a pool starts a thread for its first
 * attempt, which can take a while on a loaded machine): 12 tasks of 200 ms on
 * 3 x 2 slots run at once, so every slot's thread starts. What is measured
 * afterwards is then the dispatch of delayed tasks, not a thread's start.
 */
async function warm (node: TestNode): Promise<void> {
  const r = await post(node, '/v1/tasks/batch?wait=20000', { tasks: Array.from({ length: 12 }, () => ({ type: 'sleep', payload: { ms: 200 } })) })
  expect(r.status, JSON.stringify(r.json)).toBe(200)
}

/** How long after its runAt each task began to run (the worker's startedAt; all nodes share this machine's clock). */
/**
 * How late a delayed task may begin here. Speed targets live in benchmarks:
 * the 100 ms one is measured by `npm run bench -- --only latency` ("delayed
 * tasks: start after runAt"), on a machine not running the test suite. This
 * bound checks that the due time itself started the task: one that waited
 * for some later event (a heartbeat round, a failure detection, a new
 * leader's gather) would begin more than a second late.
 */
const ON_TIME_MS = 1_000

function lateness (recs: Rec[]): number[] {
  return recs.map(r => r.startedAt! - r.runAt!)
}

describe('delayed tasks (real nodes)', () => {
  const set = nodesPerTest()

  it('holds a delayed task as scheduled until its runAt, then starts it on time, never before', async () => {
    const { nodes } = await cluster(set, 'd')
    await warm(nodes[0]!)
    const base = Date.now() + 2_000
    const ids: string[] = []
    for (let i = 0; i < 20; i++) {
      const node = nodes[i % 3]!
      const body = i % 2 === 0 ? { type: 'echo', payload: { i }, runAt: base + i * 97 } : { type: 'echo', payload: { i }, delayMs: base + i * 97 - Date.now() }
      const r = await post(node, '/v1/tasks', body)
      expect(r.status, JSON.stringify(r.json)).toBe(202)
      expect(r.json.status).toBe('scheduled')
      ids.push(r.json.id as string)
    }
    const early = await Promise.all(ids.map(async id => await read(nodes[0]!, id)))
    for (const r of early) if (Date.now() < r.runAt! - 200) expect(r.status).toBe('scheduled')
    const done = await Promise.all(ids.map(async id => await read(nodes[1]!, id, 20_000)))
    for (const r of done) expect(r.status, JSON.stringify(r)).toBe('succeeded')
    const late = lateness(done)
    console.log(`delay accuracy, 20 tasks on 3 nodes: startedAt - runAt min ${Math.min(...late)} ms, max ${Math.max(...late)} ms, mean ${(late.reduce((a, b) => a + b, 0) / late.length).toFixed(1)} ms`)
    for (const l of late) {
      expect(l).toBeGreaterThanOrEqual(0)
      expect(l).toBeLessThanOrEqual(ON_TIME_MS)
    }
  })

  it('a delayed task survives a leader SIGKILL and fires on time on the new leader', async () => {
    const { nodes, leader } = await cluster(set, 'k')
    const survivors = nodes.filter(n => n !== leader)
    await warm(survivors[0]!)
    // Due 4 s from now: the new leader (about a second after the kill) has dispatched well before.
    const runAt = Date.now() + 4_000
    const ids: string[] = []
    for (const origin of [leader, ...survivors]) {
      const r = await post(origin, '/v1/tasks/batch', { tasks: Array.from({ length: 5 }, (_, i) => ({ type: 'echo', payload: { i }, runAt: runAt + i * 50 })) })
      expect(r.status, JSON.stringify(r.json)).toBe(202)
      expect(r.json.copies).toBe(2)
      ids.push(...r.json.ids as string[])
    }
    const killedAt = Date.now()
    leader.signal('SIGKILL')
    const dispatching = await waitFor(() => dispatchingAt(survivors, killedAt), 5_000, 'a new leader to dispatch')
    expect(dispatching).toBeLessThan(runAt)
    const done = await Promise.all(ids.map(async id => await read(survivors[0]!, id, 20_000)))
    for (const r of done) expect(r.status, JSON.stringify(r)).toBe('succeeded')
    for (const r of done) expect(survivors.map(n => n.id)).toContain(r.worker)
    const late = lateness(done)
    console.log(`delay accuracy across a leader SIGKILL, 15 tasks: startedAt - runAt min ${Math.min(...late)} ms, max ${Math.max(...late)} ms (new leader dispatching ${runAt - dispatching} ms before the first runAt)`)
    console.log(done.map(r => `${r.id.slice(0, 8)} ${r.runAt! - runAt} +${r.startedAt! - r.runAt!} ms on ${survivors.find(n => n.id === r.worker)?.name ?? '?'}`).join('\n'))
    for (const l of late) {
      expect(l).toBeGreaterThanOrEqual(0)
      expect(l).toBeLessThanOrEqual(ON_TIME_MS)
    }
  })

  it('a delayed task survives a restart of the whole cluster (data directories kept) and is not run before its runAt', async () => {
    const { nodes, opts } = await cluster(set, 'r')
    const runAt = Date.now() + 9_000
    const r = await post(nodes[1]!, '/v1/tasks/batch', { tasks: Array.from({ length: 6 }, (_, i) => ({ type: 'echo', payload: { i }, runAt })) })
    expect(r.status).toBe(202)
    const ids = r.json.ids as string[]
    const dirs = nodes.map(n => n.dataDir)
    for (const n of nodes) { n.signal('SIGKILL'); await n.exited }
    set.nodes.length = 0
    const again = [
      await set.start({ name: 'r1', dataDir: dirs[0], ...opts }),
      await set.start({ name: 'r2', dataDir: dirs[1], ...opts }),
      await set.start({ name: 'r3', dataDir: dirs[2], ...opts })
    ]
    await waitFor(async () => await agreedLeader(again, 3), 10_000, 'the restarted nodes to agree')
    const before = await Promise.all(ids.map(async id => await read(again[0]!, id)))
    if (Date.now() < runAt - 200) for (const t of before) expect(t.status).toBe('scheduled')
    const done = await Promise.all(ids.map(async id => await read(again[2]!, id, 30_000)))
    for (const t of done) expect(t.status, JSON.stringify(t)).toBe('succeeded')
    const late = lateness(done)
    const restartedAt = dispatchingAt(again, 0)!
    console.log(`delay accuracy across a full restart (dispatching again ${runAt - restartedAt} ms before runAt): startedAt - runAt min ${Math.min(...late)} ms, max ${Math.max(...late)} ms`)
    for (const l of late) expect(l).toBeGreaterThanOrEqual(0)
    // On time when the restarted cluster dispatched before the runAt (it does, by seconds, unless the machine is very slow).
    if (restartedAt < runAt - 1_000) for (const l of late) expect(l).toBeLessThanOrEqual(ON_TIME_MS)
  })

  it('refuses bad delays with 400 and a message naming the field, and accepts nothing of a batch with one', async () => {
    const { nodes } = await cluster(set, 'b')
    const cases: Array<[unknown, RegExp]> = [
      [{ type: 'echo', delayMs: -1 }, /delayMs/],
      [{ type: 'echo', delayMs: 1.5 }, /delayMs/],
      [{ type: 'echo', delayMs: 400 * 86_400_000 }, /delayMs/],
      [{ type: 'echo', runAt: Date.now() + 5_000, delayMs: 100 }, /runAt .*delayMs, not both/],
      [{ type: 'echo', runAt: 'tomorrow' }, /runAt/],
      [{ type: 'echo', runAt: Date.now() + 400 * 86_400_000 }, /runAt .* ahead/]
    ]
    for (const [body, message] of cases) {
      const r = await post(nodes[0]!, '/v1/tasks', body)
      expect(r.status, JSON.stringify(body)).toBe(400)
      expect(r.json.error.message, JSON.stringify(body)).toMatch(message)
    }
    const batch = await post(nodes[0]!, '/v1/tasks/batch', { tasks: [{ type: 'echo', delayMs: 10 }, { type: 'echo', delayMs: 10, runAt: Date.now() }] })
    expect(batch.status).toBe(400)
    expect(batch.json.error.message).toMatch(/^tasks\[1\]: /)
    const listed = await (await fetch(`${nodes[0]!.url}/v1/tasks?scope=cluster`)).json() as { tasks: unknown[] }
    expect(listed.tasks).toEqual([])
    // The OpenAPI document names the new fields and the retry route.
    const doc = JSON.stringify(await (await fetch(`${nodes[0]!.url}/docs/json`)).json())
    const paths = (JSON.parse(doc) as { paths: Record<string, Record<string, any>> }).paths
    const submitProps = JSON.stringify(paths['/v1/tasks']!.post.requestBody)
    for (const field of ['runAt', 'delayMs']) expect(submitProps).toContain(`"${field}"`)
    expect(Object.keys(paths['/v1/tasks/{id}/retry'] ?? {})).toContain('post')
    expect(JSON.stringify(paths['/v1/tasks/{id}/retry']!.post.responses)).toContain('maxAttempts')
  })
})

describe('retry of failed and cancelled tasks (real nodes)', () => {
  const set = nodesPerTest()

  it('retries a failed task through the leader: same id, the next attempt succeeds, every holder agrees, and it survives a restart', async () => {
    const { nodes, leader, opts } = await cluster(set, 't')
    const origin = nodes.find(n => n !== leader)!
    const sub = await post(origin, '/v1/tasks', { type: 'flaky', payload: { failThrough: 2 }, maxAttempts: 2 })
    const id = sub.json.id as string
    const failed = await read(origin, id, 20_000)
    expect([failed.status, failed.attempts]).toEqual(['failed', 2])
    // A maxAttempts that leaves no attempt is bad input.
    const bad = await post(origin, `/v1/tasks/${id}/retry`, { maxAttempts: 2 })
    expect(bad.status).toBe(400)
    expect(bad.json.error.message).toMatch(/maxAttempts 2 leaves no attempt/)
    const other = nodes.find(n => n !== leader && n !== origin)!
    const r = await post(other, `/v1/tasks/${id}/retry`)
    expect(r.status, JSON.stringify(r.json)).toBe(202)
    expect(r.json).toMatchObject({ id, status: 'queued', attempts: 2, maxAttempts: 4, retries: 1 })
    expect(r.json.copies).toBeGreaterThanOrEqual(2)
    const done = await read(origin, id, 20_000)
    expect(done).toMatchObject({ status: 'succeeded', attempts: 3, retries: 1, maxAttempts: 4, result: { attempt: 3 }, error: null })
    for (const n of nodes) expect(await waitFor(async () => { const t = await read(n, id); return t.status === 'succeeded' ? t : undefined }, 5_000, `${n.name} to read the success`)).toMatchObject({ attempts: 3, retries: 1 })
    // Durable on its holders: the origin restarted on its data directory still has it.
    origin.signal('SIGKILL')
    await origin.exited
    const back = await set.start({ name: 't-back', dataDir: origin.dataDir, ...opts })
    expect(await read(back, id)).toMatchObject({ status: 'succeeded', attempts: 3, retries: 1, maxAttempts: 4 })
  })

  it('a retry accepted just before the leader is SIGKILLed still runs, on the new leader', async () => {
    const { nodes, leader } = await cluster(set, 'u')
    const survivors = nodes.filter(n => n !== leader)
    const sub = await post(survivors[0]!, '/v1/tasks', { type: 'flaky', payload: { failThrough: 1, ms: 1_500 }, maxAttempts: 1 })
    const id = sub.json.id as string
    expect((await read(survivors[0]!, id, 20_000)).status).toBe('failed')
    const r = await post(survivors[1]!, `/v1/tasks/${id}/retry`, { maxAttempts: 3 })
    expect(r.status, JSON.stringify(r.json)).toBe(202)
    leader.signal('SIGKILL')
    const done = await read(survivors[0]!, id, 30_000)
    expect(done).toMatchObject({ status: 'succeeded', retries: 1, maxAttempts: 3 })
    expect(done.attempts).toBeGreaterThanOrEqual(2)
  })

  it('answers 409 for a task that is scheduled, running or succeeded, and 404 for an unknown id; retries a cancelled one', async () => {
    const { nodes } = await cluster(set, 'c')
    const running = (await post(nodes[0]!, '/v1/tasks', { type: 'sleep', payload: { ms: 3_000 } })).json.id as string
    await waitFor(async () => (await read(nodes[1]!, running)).status === 'running', 10_000, 'the task to run')
    const whileRunning = await post(nodes[1]!, `/v1/tasks/${running}/retry`)
    expect(whileRunning.status).toBe(409)
    expect(whileRunning.json.error).toMatchObject({ code: 'TASK_NOT_RETRYABLE' })
    expect(whileRunning.json.error.message).toMatch(/is running; only a failed or cancelled task can be retried/)
    expect((await read(nodes[0]!, running, 20_000)).status).toBe('succeeded')
    const afterSuccess = await post(nodes[2]!, `/v1/tasks/${running}/retry`)
    expect(afterSuccess.status).toBe(409)
    expect(afterSuccess.json.error.message).toMatch(/is succeeded/)
    expect((await post(nodes[0]!, '/v1/tasks/no-such-task/retry')).status).toBe(404)
    // A delayed task: 409 while scheduled; cancelled, then retried before its runAt, it waits for it again.
    const delayed = (await post(nodes[0]!, '/v1/tasks', { type: 'echo', payload: 1, delayMs: 4_000 })).json.id as string
    expect((await post(nodes[1]!, `/v1/tasks/${delayed}/retry`)).status).toBe(409)
    const cancel = await fetch(`${nodes[2]!.url}/v1/tasks/${delayed}`, { method: 'DELETE' })
    expect(cancel.status).toBe(202)
    expect((await read(nodes[0]!, delayed, 5_000)).status).toBe('cancelled')
    const again = await post(nodes[1]!, `/v1/tasks/${delayed}/retry`)
    expect(again.status, JSON.stringify(again.json)).toBe(202)
    expect(again.json).toMatchObject({ status: 'scheduled', attempts: 0, retries: 1 })
    const done = await read(nodes[0]!, delayed, 20_000)
    expect(done).toMatchObject({ status: 'succeeded', attempts: 1, retries: 1 })
    expect(done.startedAt!).toBeGreaterThanOrEqual(done.runAt!)
  })
})
