/**
 * The event feed behind GET /v1/events, on a real HTTP server on loopback:
 * filters, the one-second samples, and a client that stops reading is
 * dropped once its backlog passes the bound (memory stays bounded).
 */
import { connect } from 'node:net'
import Fastify from 'fastify'
import type { FastifyInstance } from 'fastify'
import { afterEach, describe, expect, it } from 'vitest'
import { newRecord } from '../../src/core/tasks.ts'
import type { TaskRecord } from '../../src/core/tasks.ts'
import { EventFeed } from '../../src/http/events.ts'
import { openEvents } from '../support/events.ts'
import { waitFor } from '../support/nodes.ts'

function record (id: string, status: TaskRecord['status'] = 'queued', progress: unknown = null): TaskRecord {
  return { ...newRecord({ id, type: 'echo', payload: 'x'.repeat(100), priority: 0, timeoutMs: 1000, maxAttempts: 1, idempotencyKey: null, createdAt: 1, origin: 'o', replicas: [] }), status, progress }
}

describe('EventFeed over HTTP', () => {
  let app: FastifyInstance | undefined
  let feed: EventFeed | undefined
  afterEach(async () => {
    feed?.stop()
    await app?.close()
  })

  async function serve (maxBacklogBytes: number): Promise<{ url: string, feed: EventFeed }> {
    feed = new EventFeed({ maxStreams: 8, maxBacklogBytes, now: () => Date.now(), snapshot: () => undefined, recentTasks: () => [record('old', 'succeeded')] })
    app = Fastify()
    feed.register(app)
    app.addHook('preClose', async () => { feed?.stop() })
    const address = await app.listen({ host: '127.0.0.1', port: 0 })
    return { url: address, feed }
  }

  it('sends hello first, then only the selected kinds and tasks', async () => {
    const { url, feed } = await serve(1 << 20)
    const all = await openEvents(`${url}/v1/events`)
    const one = await openEvents(`${url}/v1/events?kinds=task&task=b`)
    await all.next(e => e.event === 'hello', 1_000, 'hello')
    await one.next(e => e.event === 'hello', 1_000, 'hello')
    expect(feed.streams).toBe(2)
    feed.onCoreEvent({ type: 'leader-changed', leader: { id: 'n1', name: 'n1', term: 3 }, previous: null })
    feed.onTasks([record('a'), record('b', 'running', 0.5)])
    await all.next(e => e.event === 'task' && (e.data as { id: string }).id === 'b', 1_000, 'task b')
    await one.next(e => e.event === 'task', 1_000, 'task b')
    expect(all.events.map(e => e.event)).toEqual(['hello', 'leader', 'task', 'task'])
    expect(all.events[1]!.data).toMatchObject({ leader: { name: 'n1', term: 3 }, term: 3 })
    expect(one.events.map(e => e.event)).toEqual(['hello', 'task'])
    expect(one.events[1]!.data).toMatchObject({ id: 'b', status: 'running', progress: 0.5 })
    expect((one.events[0]!.data as { tasks: unknown[] }).tasks).toEqual([])
    expect(JSON.stringify(all.events)).not.toContain('xxxx') // never the payload
    // The ending of a task the stream named carries its result; an unfiltered stream never gets results.
    feed.onTasks([{ ...record('b', 'succeeded', 1), result: { answer: 42 } }, { ...record('a', 'succeeded', 1), result: { answer: 'a' } }])
    await one.next(e => e.event === 'task' && (e.data as { status: string }).status === 'succeeded', 1_000, 'task b ended')
    await all.next(e => e.event === 'task' && (e.data as { id: string, status: string }).id === 'a' && (e.data as { status: string }).status === 'succeeded', 1_000, 'task a ended')
    expect(one.events.at(-1)!.data).toMatchObject({ id: 'b', status: 'succeeded', result: { answer: 42 } })
    expect(one.events[1]!.data).not.toHaveProperty('result')
    expect(all.events.filter(e => e.event === 'task').every(e => !('result' in (e.data as object)))).toBe(true)
    all.close()
    one.close()
    await waitFor(() => feed.streams === 0, 2_000, 'both streams closed')
  })

  it('drops a client that stops reading once its backlog passes the bound, and keeps serving the others', async () => {
    const { url, feed } = await serve(64 * 1024)
    const { port } = new URL(url)
    const stalled = connect({ host: '127.0.0.1', port: Number(port) })
    stalled.on('error', () => {})
    await new Promise<void>(resolve => stalled.once('connect', () => { resolve() }))
    stalled.write('GET /v1/events HTTP/1.1\r\nHost: x\r\n\r\n')
    stalled.pause() // never reads again
    const healthy = await openEvents(`${url}/v1/events?kinds=task&task=last`)
    await waitFor(() => feed.streams === 2, 2_000, 'two streams')
    const closed = new Promise<void>(resolve => stalled.once('close', () => { resolve() }))
    // Up to 200,000 events of ~400 bytes: far more than the kernel's socket buffers and the 64 KiB bound.
    for (let i = 0; i < 2_000 && feed.streams === 2; i++) {
      feed.onTasks(Array.from({ length: 100 }, (_, j) => record(`t${i}-${j}`)))
      await new Promise(resolve => setImmediate(resolve))
    }
    await waitFor(() => feed.streams === 1, 5_000, 'the stalled client to be dropped')
    stalled.resume() // reads what the kernel still holds, then sees the server's close
    await closed
    feed.onTasks([record('last', 'succeeded')])
    await healthy.next(e => e.event === 'task', 2_000, 'the healthy client still served')
    healthy.close()
  })
})
