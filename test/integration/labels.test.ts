import { describe, expect, it } from 'vitest'
import { holdsFor, nodesPerTest, waitFor } from '../support/nodes.ts'
import type { TestNode } from '../support/nodes.ts'
import { executions, recordingCluster, task } from '../support/recording.ts'

async function submit (node: TestNode, body: unknown): Promise<{ status: number, json: any }> {
  const res = await fetch(`${node.url}/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(15_000) })
  return { status: res.status, json: await res.json() }
}

describe('placement by labels (real nodes)', () => {
  const set = nodesPerTest()

  it('a task requiring a label runs only on the node that has it; an unsatisfiable requirement gets 422; a task whose only match died waits until it is back', async () => {
    // Three nodes, 2 slots each; only the third carries gpu=a100 (given by flag).
    const { record, opts, nodes } = await recordingCluster(set, 'lb', ['--label', 'gpu=a100', '--label', 'zone=rack2'])
    const [plain, , gpu] = nodes as [TestNode, TestNode, TestNode]
    const view = await plain.cluster() as unknown as { members: Array<{ id: string, labels?: Record<string, string> }> }
    expect(view.members.find(m => m.id === gpu.id)?.labels).toEqual({ gpu: 'a100', zone: 'rack2' })
    expect(view.members.filter(m => m.id !== gpu.id).every(m => m.labels === undefined)).toBe(true)

    // Submitted to a node without the label (the origin, preferred by least-loaded placement otherwise): 8 tasks, more than gpu's slots.
    const ids: string[] = []
    for (let i = 0; i < 8; i++) {
      const r = await submit(plain, { type: 'record', payload: { ms: 50 }, require: i % 2 === 0 ? { gpu: '*' } : { gpu: 'a100', zone: 'rack2' } })
      expect(r.status, JSON.stringify(r.json)).toBe(202)
      ids.push(r.json.id)
    }
    for (const id of ids) {
      const t = await task(plain, id, 30_000) as Awaited<ReturnType<typeof task>> & { require?: Record<string, string> }
      expect(t.status).toBe('succeeded')
      expect(t.worker).toBe(gpu.id)
      expect(t.require).toBeDefined()
    }
    const ran = executions(record).filter(e => ids.includes(e.id))
    expect(ran).toHaveLength(8)
    expect(new Set(ran.map(e => e.pid))).toEqual(new Set([gpu.proc.pid]))

    // No live member has gpu=h100, nor runs "echo" with a gpu: 422 naming the requirement, nothing stored.
    const h100 = await submit(plain, { type: 'record', payload: null, require: { gpu: 'h100' } })
    expect(h100.status).toBe(422)
    expect(h100.json.error.code).toBe('REQUIREMENT_UNMET')
    expect(h100.json.error.message).toContain('gpu=h100')
    const batch = await fetch(`${plain.url}/v1/tasks/batch`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ tasks: [{ type: 'record' }, { type: 'record', require: { zone: 'rack9' } }] }) })
    expect(batch.status).toBe(422)
    expect(((await batch.json()) as any).error.message).toMatch(/tasks\[1\]\.require.*zone=rack9/)
    expect((await submit(plain, { type: 'record', require: {} })).status).toBe(400)
    expect((await submit(plain, { type: 'record', require: { gpu: 'a*' } })).status).toBe(400)

    // The OpenAPI document names the new fields.
    const paths = (await (await fetch(`${plain.url}/docs/json`)).json() as { paths: Record<string, Record<string, any>> }).paths
    expect(JSON.stringify(paths['/v1/tasks']!.post.requestBody)).toContain('"require"')
    expect(JSON.stringify(paths['/v1/tasks/{id}']!.get.responses)).toContain('"unplaceable"')
    expect(JSON.stringify(paths['/v1/cluster']!.get.responses)).toContain('"labels"')

    // A delayed task accepted while gpu lives; gpu dies before it is due: it waits, and says why.
    const delayed = await submit(plain, { type: 'record', payload: null, delayMs: 1_500, require: { gpu: '*' } })
    expect(delayed.status).toBe(202)
    const dataDir = gpu.dataDir
    gpu.signal('SIGKILL')
    await gpu.exited
    const waiting = await waitFor(async () => {
      const t = await task(plain, delayed.json.id) as Awaited<ReturnType<typeof task>> & { unplaceable?: string }
      return t.unplaceable !== undefined ? t : undefined
    }, 10_000, 'the task to say it waits for a member with gpu')
    expect(waiting.unplaceable).toContain('gpu=*')
    // Well past its runAt and a failover, it has not run anywhere: 3 s covers the due time, the failure detection (1.5 s) and a new leader's gather.
    await holdsFor(async () => {
      const t = await task(plain, delayed.json.id)
      expect(['scheduled', 'queued']).toContain(t.status)
      expect(executions(record).some(e => e.id === delayed.json.id)).toBe(false)
    }, 3_000)
    // The labelled node comes back (same identity, labels now from the environment): the task runs there.
    const back = await set.start({ name: 'lb3b', dataDir, args: opts.args, env: { ...opts.env, TASKMESH_LABELS: '{"gpu":"a100"}' } })
    const done = await task(plain, delayed.json.id, 30_000) as Awaited<ReturnType<typeof task>> & { unplaceable?: string }
    expect(done.status).toBe('succeeded')
    expect(done.worker).toBe(back.id)
    expect(done.unplaceable).toBeUndefined()
    expect(executions(record).filter(e => e.id === delayed.json.id).map(e => e.pid)).toEqual([back.proc.pid])
  })
})
