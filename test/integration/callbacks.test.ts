import { createHmac } from 'node:crypto'
import { createServer } from 'node:http'
import type { IncomingHttpHeaders, Server } from 'node:http'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { agreedLeader, holdsFor, nodesPerTest, waitFor } from '../support/nodes.ts'
import type { NodeSet, TestNode } from '../support/nodes.ts'

const SECRET = 'test-webhook-secret-0123456789'

interface Received { path: string, headers: IncomingHttpHeaders, body: string, answered: number }

/**
 * An HTTP receiver on loopback inside the test's network namespace: `answer`
 * decides each request's status from the requests to its path so far.
 */
async function receiver (answer: (path: string, nth: number) => number): Promise<{ url: string, got: Received[], server: Server }> {
  const got: Received[] = []
  const server = createServer((req, res) => {
    let body = ''
    req.on('data', (d: Buffer) => { body += d.toString() })
    req.on('end', () => {
      const path = req.url ?? '/'
      const status = answer(path, got.filter(g => g.path === path).length + 1)
      got.push({ path, headers: req.headers, body, answered: status })
      res.writeHead(status, { 'content-type': 'text/plain' }).end(status < 300 ? 'ok' : 'not now')
    })
  })
  await new Promise<void>(resolve => { server.listen(0, '127.0.0.1', resolve) })
  const address = server.address()
  if (address === null || typeof address === 'string') throw new Error('no address')
  return { url: `http://127.0.0.1:${address.port}`, got, server }
}

function verifies (r: Received): boolean {
  const ts = String(r.headers['x-taskmesh-timestamp'])
  const expected = 'sha256=' + createHmac('sha256', SECRET).update(`${ts}.${r.body}`).digest('hex')
  return r.headers['x-taskmesh-signature'] === expected
}

async function post (node: TestNode, body: unknown): Promise<{ status: number, json: any }> {
  const res = await fetch(`${node.url}/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body), signal: AbortSignal.timeout(15_000) })
  return { status: res.status, json: await res.json() }
}

async function read (node: TestNode, id: string, waitMs = 0): Promise<any> {
  return await (await fetch(`${node.url}/v1/tasks/${id}${waitMs > 0 ? `?wait=${waitMs}` : ''}`, { signal: AbortSignal.timeout(waitMs + 5_000) })).json()
}

async function twoNodes (set: NodeSet, prefix: string, extra: Record<string, unknown>): Promise<[TestNode, TestNode, string[]]> {
  const config = join(await set.tempDir(), 'cluster.config.json')
  writeFileSync(config, JSON.stringify({ webhookSecret: SECRET, callbackRetryBaseMs: 200, ...extra }))
  const opts = { args: ['--config', config, '--capacity', '2'] }
  const nodes = [await set.start({ name: `${prefix}1`, ...opts }), await set.start({ name: `${prefix}2`, ...opts })] as [TestNode, TestNode]
  await waitFor(async () => await agreedLeader(nodes, 2), 5_000, 'two nodes to agree')
  return [...nodes, opts.args]
}

describe('completion callbacks (real nodes, a receiver on loopback)', () => {
  const set = nodesPerTest()
  const servers: Server[] = []
  afterEach(async () => {
    for (const s of servers.splice(0)) await new Promise(resolve => { s.close(resolve) })
  })

  it('delivers the final record once per ending, signed, with one delivery id across a receiver that fails twice; webhooks get the endings they ask for', async () => {
    // /cb fails its first two requests, then succeeds; /hook always succeeds.
    const rx = await receiver((path, nth) => path === '/cb' && nth <= 2 ? 500 : 200)
    servers.push(rx.server)
    const [a, b] = await twoNodes(set, 'cb', { webhooks: [{ url: `${rx.url}/hook`, events: ['failed'] }] })

    const sub = await post(a, { type: 'echo', payload: { n: 1 }, callback: { url: `${rx.url}/cb`, headers: { authorization: 'Bearer receiver-token' } } })
    expect(sub.status, JSON.stringify(sub.json)).toBe(202)
    const id = sub.json.id as string
    expect((await read(a, id, 10_000)).status).toBe('succeeded')
    await waitFor(() => rx.got.some(r => r.path === '/cb' && r.answered === 200) || undefined, 20_000, 'the callback to be delivered')
    const tries = rx.got.filter(r => r.path === '/cb')
    expect(tries.map(r => r.answered)).toEqual([500, 500, 200])
    // One delivery: the same id on every try, each signed, with the submit's header and the final record.
    expect(new Set(tries.map(r => r.headers['x-taskmesh-delivery'])).size).toBe(1)
    for (const r of tries) {
      expect(verifies(r)).toBe(true)
      expect(r.headers.authorization).toBe('Bearer receiver-token')
      expect(r.headers['x-taskmesh-event']).toBe('task.succeeded')
      const body = JSON.parse(r.body)
      expect(body).toMatchObject({ deliveryId: r.headers['x-taskmesh-delivery'], event: 'task.succeeded', task: { id, status: 'succeeded', result: { n: 1 }, attempts: 1 } })
    }
    // Tampered bodies do not verify.
    expect(verifies({ ...tries[0]!, body: tries[0]!.body.replace('succeeded', 'failed') })).toBe(false)
    // The state is on the task, from either holder (the deliverer tells the other).
    for (const n of [a, b]) {
      const t = await waitFor(async () => { const r = await read(n, id); return r.callbacks?.[0]?.state === 'delivered' ? r : undefined }, 5_000, `${n.name} to show the delivery`)
      expect(t.callback).toEqual({ url: `${rx.url}/cb` })
      expect(t.callbacks).toEqual([expect.objectContaining({ deliveryId: tries[0]!.headers['x-taskmesh-delivery'], url: `${rx.url}/cb`, source: 'callback', event: 'task.succeeded', state: 'delivered', attempts: 3, lastStatus: 500 })])
    }
    // Delivered once: no holder tries again. 2.5 s covers two of the other holder's rechecks (every second) and ten backoff bases.
    await holdsFor(() => { expect(rx.got.filter(r => r.path === '/cb')).toHaveLength(3) }, 2_500)

    // A failed task goes to the webhook (it asks for failed endings only); the succeeded one did not.
    const failing = await post(b, { type: 'fail', payload: { message: 'no' }, maxAttempts: 1 })
    expect((await read(b, failing.json.id, 10_000)).status).toBe('failed')
    await waitFor(() => rx.got.some(r => r.path === '/hook') || undefined, 10_000, 'the webhook delivery')
    const hooks = rx.got.filter(r => r.path === '/hook')
    expect(hooks).toHaveLength(1)
    expect(verifies(hooks[0]!)).toBe(true)
    expect(JSON.parse(hooks[0]!.body)).toMatchObject({ event: 'task.failed', task: { id: failing.json.id, status: 'failed', error: 'no' } })
    // The receiver has the request before its sender records the answer and tells the other holder.
    const recorded = await waitFor(async () => { const t = await read(a, failing.json.id); const st = t.callbacks?.[0]?.state; return st === undefined || st === 'pending' ? undefined : t }, 5_000, 'the delivery recorded on a')
    expect(recorded.callbacks).toEqual([expect.objectContaining({ source: 'webhook', state: 'delivered', attempts: 1 })])
    // The OpenAPI document lists the new fields.
    const paths = (await (await fetch(`${a.url}/docs/json`)).json() as { paths: Record<string, Record<string, any>> }).paths
    expect(JSON.stringify(paths['/v1/tasks']!.post.requestBody)).toContain('"callback"')
    expect(JSON.stringify(paths['/v1/tasks/{id}']!.get.responses)).toContain('"callbacks"')
  })

  it('the second copy takes over a delivery when the delivering holder dies, with the same delivery id; the first, restarted, learns it was delivered and sends nothing', async () => {
    let up = false
    const rx = await receiver(() => up ? 200 : 503)
    servers.push(rx.server)
    const [a, b, args] = await twoNodes(set, 'tk', {})
    // Submitted to a: a is the origin, the first holder, so it delivers while it lives.
    const sub = await post(a, { type: 'echo', payload: 'x', callback: { url: `${rx.url}/cb` } })
    expect((await read(a, sub.json.id, 10_000)).status).toBe('succeeded')
    await waitFor(() => rx.got.length >= 2 || undefined, 10_000, 'two failed tries')
    const first = rx.got[0]!.headers['x-taskmesh-delivery']
    a.signal('SIGKILL')
    await a.exited
    const triedByA = rx.got.length
    up = true
    await waitFor(() => rx.got.some(r => r.answered === 200) || undefined, 20_000, 'the other holder to deliver')
    expect(new Set(rx.got.map(r => r.headers['x-taskmesh-delivery']))).toEqual(new Set([first]))
    expect(rx.got.every(verifies)).toBe(true)
    const t = await waitFor(async () => { const r = await read(b, sub.json.id); return r.callbacks?.[0]?.state === 'delivered' ? r : undefined }, 5_000, 'b to show the delivery')
    // b continued the count a told it of.
    expect(t.callbacks[0].attempts).toBeGreaterThanOrEqual(triedByA)

    // a comes back with its data (its delivery still pending there): it learns from b that it was delivered, and sends nothing.
    const sent = rx.got.length
    const back = await set.start({ name: 'tk1b', dataDir: a.dataDir, args })
    await waitFor(async () => await agreedLeader([back, b], 2), 10_000, 'a back in the cluster')
    await waitFor(async () => { const r = await read(back, sub.json.id); return r.callbacks?.[0]?.state === 'delivered' || undefined }, 10_000, 'a to learn of the delivery')
    // 2.5 s after a is back: its join window (1.5 s) and a due try's backoff (200 ms) have passed.
    await holdsFor(() => { expect(rx.got).toHaveLength(sent) }, 2_500)
  })
})
