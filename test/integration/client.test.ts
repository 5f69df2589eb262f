/**
 * The client library (`taskmesh/client`, src/client) against three real
 * nodes that require a bearer token: every method, typed errors, failover of
 * reads to another member, and the event feed reconnecting to another member
 * when the one it follows is killed.
 */
import { describe, expect, it } from 'vitest'
import { TaskmeshApiError, TaskmeshClient } from '../../src/client/index.ts'
import type { TaskmeshEvent } from '../../src/client/index.ts'
import { nodesPerTest, waitFor } from '../support/nodes.ts'
import type { TestNode } from '../support/nodes.ts'

const TOKEN = 'client-test-token-0123456789abcdef'

/** The next event `match` accepts, or an error after `timeoutMs`. */
async function nextEvent (events: AsyncIterator<TaskmeshEvent>, match: (e: TaskmeshEvent) => boolean, timeoutMs: number, what: string): Promise<TaskmeshEvent> {
  const deadline = Date.now() + timeoutMs
  for (;;) {
    let timer: NodeJS.Timeout | undefined
    const timeout = new Promise<never>((_, reject) => { timer = setTimeout(() => { reject(new Error(`no event within ${timeoutMs} ms: ${what}`)) }, Math.max(0, deadline - Date.now())) })
    try {
      const r = await Promise.race([events.next(), timeout])
      if (r.done === true) throw new Error(`the events ended before ${what}`)
      if (match(r.value)) return r.value
    } finally {
      clearTimeout(timer)
    }
  }
}

describe('the client library against three real nodes', () => {
  const set = nodesPerTest()

  async function three (prefix: string): Promise<{ nodes: TestNode[], leader: TestNode }> {
    const nodes: TestNode[] = []
    for (let i = 1; i <= 3; i++) nodes.push(await set.start({ name: `${prefix}${i}`, env: { TASKMESH_TOKEN: TOKEN } }))
    // TestNode.cluster() sends no token, so ask through a client.
    const client = new TaskmeshClient({ nodes: nodes[0]!.url, token: TOKEN })
    const leader = await waitFor(async () => {
      const views = await Promise.all(nodes.map(async n => await new TaskmeshClient({ nodes: n.url, token: TOKEN }).cluster()))
      const l = views[0]!.leader
      return l !== null && views.every(v => v.leader?.id === l.id && v.members.filter(m => m.status === 'alive').length === 3) ? l : undefined
    }, 15_000, 'three nodes to agree on a leader')
    expect((await client.cluster()).leader?.id).toBe(leader.id)
    return { nodes, leader: nodes.find(n => n.id === leader.id)! }
  }

  it('submits, waits, reads, lists and cancels with a bearer token, with typed errors, and moves reads to another member when its node dies', async () => {
    const { nodes, leader } = await three('cl')
    const viewed = nodes.find(n => n !== leader)!

    // Without the token: 401, as a typed error.
    const err = await new TaskmeshClient({ nodes: viewed.url }).cluster().catch((e: unknown) => e)
    expect(err).toBeInstanceOf(TaskmeshApiError)
    expect(err).toMatchObject({ status: 401, code: 'UNAUTHORIZED' })

    const client = new TaskmeshClient({ nodes: viewed.url, token: TOKEN })
    const view = await client.cluster()
    expect(view.self.id).toBe(viewed.id)
    expect(view.members.map(m => m.id).sort()).toEqual(nodes.map(n => n.id).sort())
    // cluster() taught it every member's URL, its own node first.
    expect(client.node).toBe(viewed.url)
    expect([...client.nodes].sort()).toEqual(nodes.map(n => n.url).sort())
    expect((await client.health()).id).toBe(viewed.id)

    // One task, waited for.
    const submitted = await client.submit({ type: 'echo', payload: { hello: 'client' } })
    expect(submitted.status).toBe('queued')
    const done = await client.wait(submitted.id, { timeoutMs: 15_000 })
    expect(done).toMatchObject({ id: submitted.id, status: 'succeeded', result: { hello: 'client' } })
    expect(await client.get(submitted.id)).toEqual(done)

    // Submitted and waited for in one request.
    const begun = async (): Promise<{ submit: number, task: number }> => {
      const text = await (await fetch(`${viewed.url}/metrics`, { headers: { authorization: `Bearer ${TOKEN}` } })).text()
      const count = (route: string): number => Number(new RegExp(`taskmesh_long_poll_requests_total\\{route="${route}"\\} (\\d+)`).exec(text)?.[1] ?? 0)
      return { submit: count('submit'), task: count('task') }
    }
    const before = await begun()
    const both = await client.submitAndWait({ type: 'echo', payload: { both: true } }, { timeoutMs: 15_000 })
    expect(both).toMatchObject({ status: 'succeeded', result: { both: true } })
    expect(await begun()).toEqual({ submit: before.submit + 1, task: before.task })
    // Its timeout: a 5 s task is answered as it stands after 300 ms.
    const t0 = Date.now()
    const slow = await client.submitAndWait({ type: 'sleep', payload: { ms: 5_000 } }, { timeoutMs: 300 })
    expect(['queued', 'assigned', 'running']).toContain(slow.status)
    expect(Date.now() - t0).toBeLessThan(4_000)

    // A refused submit names the API's code.
    await expect(client.submit({ type: 'no-such-type' })).rejects.toMatchObject({ name: 'TaskmeshApiError', status: 422, code: 'UNKNOWN_TASK_TYPE' })

    // Many: 1,200 tasks go in two batches (1,000 + 200); waitMany returns them in order.
    const batches: number[] = []
    const ids = await client.submitMany(Array.from({ length: 1_200 }, (_, i) => ({ type: 'echo', payload: i })), accepted => { batches.push(accepted.length) })
    expect(batches).toEqual([1_000, 1_200])
    expect(new Set(ids).size).toBe(1_200)
    const tasks = await client.waitMany(ids, { timeoutMs: 60_000 })
    expect(tasks.map(t => t.id)).toEqual(ids)
    expect(tasks.every(t => t.status === 'succeeded')).toBe(true)
    expect(tasks.map(t => t.result)).toEqual(ids.map((_, i) => i))

    // Listing: the tasks this node holds.
    const listed = await client.list({ status: 'succeeded', limit: 1000 })
    expect(listed.length).toBeGreaterThan(0)
    expect(listed.every(t => t.status === 'succeeded')).toBe(true)

    // Cancel a running task; its task events come through the feed, filtered to it.
    const long = await client.submit({ type: 'sleep', payload: { ms: 30_000 } })
    const stop = new AbortController()
    const events = client.events({ tasks: [long.id], kinds: ['task'], signal: stop.signal })
    try {
      await nextEvent(events, e => e.event === 'task' && e.data.id === long.id && e.data.status === 'running', 10_000, 'the sleep task to run')
      expect(['cancelled', 'cancelling']).toContain((await client.cancel(long.id)).status)
      const ended = await nextEvent(events, e => e.event === 'task' && e.data.id === long.id && e.data.status === 'cancelled', 10_000, 'the sleep task to be cancelled')
      expect(ended.node).toBe(viewed.url)
    } finally {
      // Aborting ends a pending next() too, so return() cannot wait on a stream.
      stop.abort()
      await events.return()
    }
    expect((await client.wait(long.id, { timeoutMs: 10_000 })).status).toBe('cancelled')

    // Its node dies: reads go to another member it learned of.
    viewed.signal('SIGKILL')
    await viewed.exited
    expect(await client.get(submitted.id)).toMatchObject({ id: submitted.id, status: 'succeeded' })
    expect(client.node).not.toBe(viewed.url)
    expect(nodes.filter(n => n !== viewed).map(n => n.url)).toContain(client.node)
  })

  it('events(): an async iterator that, when its node is killed, reconnects to another member and starts again with hello', async () => {
    const { nodes, leader } = await three('ev')
    const viewed = nodes.find(n => n !== leader)!
    const client = new TaskmeshClient({ nodes: viewed.url, token: TOKEN })
    const lost: string[] = []
    const stop = new AbortController()
    const events = client.events({ kinds: ['leader', 'member'], signal: stop.signal, onDisconnect: node => { lost.push(node) }, retryDelayMs: 200 })
    try {
      const hello = await nextEvent(events, e => e.event === 'hello', 5_000, 'hello')
      expect(hello.node).toBe(viewed.url)
      if (hello.event !== 'hello') throw new Error('unreachable')
      expect(hello.data.cluster?.members).toHaveLength(3)
      // The hello taught the client the other members.
      expect([...client.nodes].sort()).toEqual(nodes.map(n => n.url).sort())

      viewed.signal('SIGKILL')
      const again = await nextEvent(events, e => e.event === 'hello', 10_000, 'hello from another member')
      expect(lost[0]).toBe(viewed.url)
      expect(again.node).not.toBe(viewed.url)
      expect(nodes.filter(n => n !== viewed).map(n => n.url)).toContain(again.node)
      // And it goes on: the survivors see the killed member go. A kill closes its connections, so they may
      // have declared it dead before the client reconnected: then the new hello's view already says so.
      if (again.event !== 'hello') throw new Error('unreachable')
      const seenDead = again.data.cluster?.members.some(m => m.id === viewed.id && m.status === 'dead') === true
      if (!seenDead) {
        const dead = await nextEvent(events, e => e.event === 'member' && e.data.change === 'status' && e.data.id === viewed.id && e.data.status === 'dead', 10_000, 'the killed member to be dead')
        expect(dead.node).toBe(again.node)
      }
    } finally {
      // Aborting ends a pending next() too, so return() cannot wait on a stream.
      stop.abort()
      await events.return()
    }
  })
})
