import { spawnSync } from 'node:child_process'
import { join, resolve } from 'node:path'
import { describe, expect, it } from 'vitest'
import { nodesPerTest, agreedLeader, getJson, holdsFor, waitFor } from '../support/nodes.ts'
import type { TestNode } from '../support/nodes.ts'

const CLI = resolve(import.meta.dirname, '../../src/cli.ts')

function taskmesh (args: string[], env: Record<string, string> = {}): { status: number | null, stdout: string, stderr: string } {
  const run = spawnSync(process.execPath, [CLI, ...args], { encoding: 'utf8', timeout: 30_000, env: { ...process.env, ...env } })
  return { status: run.status, stdout: run.stdout, stderr: run.stderr }
}

async function names (n: TestNode): Promise<string[]> {
  return (await n.cluster()).members.map(m => m.name).sort()
}

describe('strangers stay out', () => {
  const set = nodesPerTest()

  it('a node with another cluster key, or none, never appears among the keyed members, and the keyed nodes log the refused connections', async () => {
    const dir = await set.tempDir()
    const keyA = join(dir, 'a.json')
    const keyB = join(dir, 'b.json')
    for (const out of [keyA, keyB]) {
      const init = taskmesh(['init', '--out', out])
      expect(init.status, init.stderr).toBe(0)
      expect(init.stdout).toMatch(/wrote .*\.key/)
    }
    const k1 = await set.start({ name: 'k1', cluster: 'shared', args: ['--config', keyA] })
    const k2 = await set.start({ name: 'k2', cluster: 'shared', args: ['--config', keyA] })
    const other = await set.start({ name: 'other-key', cluster: 'shared', args: ['--config', keyB] })
    const none = await set.start({ name: 'no-key', cluster: 'shared' })
    expect(none.output()).toMatch(/no cluster key .*any host on this LAN can join/)
    expect(k1.output()).not.toMatch(/no cluster key/)
    await waitFor(async () => await agreedLeader([k1, k2], 2), 10_000, 'the keyed nodes to agree')
    // Both strangers discover the keyed nodes by mDNS (one namespace, one cluster name) and dial them, and
    // the keyed nodes dial them: every such connection fails, and the keyed side says so.
    await waitFor(() => [k1, k2].every(n => /refused a connection without the cluster key/.test(n.output())), 15_000, 'both keyed nodes to log a refused connection')
    const refused = k1.output().split('\n').find(l => l.includes('refused a connection without the cluster key'))!
    expect(JSON.parse(refused)).toMatchObject({ level: 40, remoteAddr: expect.stringMatching(/^\/ip4\/127\.0\.0\.1\/tcp\/\d+/) })
    // Keep looking for a few heartbeat rounds and mDNS intervals: the strangers stay out of both views, and alone in theirs.
    // 6 s: more than one mDNS interval (5 s), so every node has queried again and redialled, and 24 heartbeats.
    await holdsFor(async () => {
      expect(await names(k1)).toEqual(['k1', 'k2'])
      expect(await names(k2)).toEqual(['k1', 'k2'])
      expect(await names(other)).toEqual(['other-key'])
      expect(await names(none)).toEqual(['no-key'])
    }, 6_000, 500)
  })

  it('refuses to start with the API off loopback without a token; with one, every route but /healthz needs it', async () => {
    const dir = await set.tempDir()
    const refused = taskmesh(['start', '--http-host', '0.0.0.0', '--http-port', '0', '--data-dir', join(dir, 'x'), '--listen', '/ip4/127.0.0.1/tcp/0'])
    expect(refused.status).toBe(2)
    expect(refused.stderr).toMatch(/"httpHost" \(0\.0\.0\.0\) is not a loopback address.*token.*TASKMESH_TOKEN/)

    const token = 'correct-horse-battery-staple-42'
    const node = await set.start({ name: 'guarded', args: ['--http-host', '0.0.0.0'], env: { TASKMESH_TOKEN: token, TASKMESH_MAX_LONG_POLLS: '2' } })
    const base = node.url.replace('0.0.0.0', '127.0.0.1')
    const call = async (method: string, path: string, auth?: string, body?: unknown): Promise<{ status: number, body: any, headers: Headers }> => {
      const headers: Record<string, string> = body === undefined ? {} : { 'content-type': 'application/json' }
      if (auth !== undefined) headers.authorization = auth
      const res = await fetch(base + path, { method, headers, body: body === undefined ? undefined : JSON.stringify(body), signal: AbortSignal.timeout(20_000) })
      return { status: res.status, body: await res.json(), headers: res.headers }
    }
    expect((await call('GET', '/healthz')).status).toBe(200)
    for (const [method, path, body] of [['GET', '/v1/cluster'], ['GET', '/v1/tasks'], ['POST', '/v1/tasks', { type: 'echo' }], ['POST', '/v1/tasks/batch', { tasks: [{ type: 'echo' }] }],
      ['GET', '/v1/tasks/some-id'], ['DELETE', '/v1/tasks/some-id'], ['GET', '/no/such/route'], ['GET', '/healthz/../v1/cluster']] as Array<[string, string, unknown]>) {
      for (const auth of [undefined, 'Bearer wrong-token-of-some-length', `Basic ${token}`, `Bearer ${token}x`, token]) {
        const r = await call(method, path, auth, body)
        expect(r.status, `${method} ${path} with ${String(auth)}`).toBe(401)
        expect(r.body.error.code).toBe('UNAUTHORIZED')
        expect(r.headers.get('www-authenticate')).toMatch(/^Bearer/)
      }
    }
    // The dashboard, metrics, docs and event feed too; a browser signs in once with /?token= and then carries a cookie.
    for (const path of ['/', '/metrics', '/docs/json', '/v1/events', '/?token=wrong', `/?token=${token}x`]) {
      const res = await fetch(base + path, { redirect: 'manual', signal: AbortSignal.timeout(5_000) })
      expect(res.status, path).toBe(401)
      await res.body?.cancel()
    }
    const signIn = await fetch(`${base}/?token=${token}`, { redirect: 'manual' })
    expect(signIn.status).toBe(303)
    expect(signIn.headers.get('location')).toBe('/')
    const cookie = signIn.headers.get('set-cookie')!
    expect(cookie).toMatch(/^taskmesh_token=.*HttpOnly; SameSite=Strict; Path=\//)
    const jar = { cookie: cookie.split(';')[0]! }
    for (const path of ['/', '/metrics', '/docs/json', '/v1/cluster']) {
      const res = await fetch(base + path, { headers: jar })
      expect(res.status, `${path} with the cookie`).toBe(200)
      await res.body?.cancel()
    }
    const events = new AbortController()
    const feed = await fetch(`${base}/v1/events`, { headers: jar, signal: events.signal })
    expect(feed.status).toBe(200)
    expect(feed.headers.get('content-type')).toMatch(/text\/event-stream/)
    events.abort()
    expect((await fetch(`${base}/v1/cluster`, { headers: { cookie: 'taskmesh_token=wrong' } })).status).toBe(401)
    // Nothing was submitted by the refused requests.
    const list = await call('GET', '/v1/tasks', `Bearer ${token}`)
    expect(list.status).toBe(200)
    expect(list.body.tasks).toEqual([])
    const ok = await call('POST', '/v1/tasks?wait=10000', `Bearer ${token}`, { type: 'echo', payload: 'authorised' })
    expect(ok.status).toBe(200)
    expect(ok.body.result).toBe('authorised')
    // The CLI sends TASKMESH_TOKEN.
    const status = taskmesh(['status', '--node', base, '--json'], { TASKMESH_TOKEN: token })
    expect(status.status, status.stderr).toBe(0)
    expect(JSON.parse(status.stdout).members.map((m: { name: string }) => m.name)).toEqual(['guarded'])
    expect(taskmesh(['status', '--node', base], { TASKMESH_TOKEN: '' }).stderr).toMatch(/401 UNAUTHORIZED/)

    // At most maxLongPolls (2) requests wait at once; the third is refused with 429 and changes nothing.
    const sleeper = await call('POST', '/v1/tasks', `Bearer ${token}`, { type: 'sleep', payload: { ms: 1_500 } })
    const waits = [call('GET', `/v1/tasks/${sleeper.body.id}?wait=10000`, `Bearer ${token}`), call('GET', `/v1/tasks/${sleeper.body.id}?wait=10000`, `Bearer ${token}`)]
    await waitFor(async () => {
      const res = await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${token}` } })
      return /^taskmesh_long_polls 2$/m.test(await res.text())
    }, 5_000, 'both long-polls to be waiting')
    const third = await call('POST', '/v1/tasks?wait=5000', `Bearer ${token}`, { type: 'echo', payload: 'third' })
    expect(third.status).toBe(429)
    expect(third.body.error.code).toBe('TOO_MANY_LONG_POLLS')
    expect(third.headers.get('retry-after')).toBe('1')
    expect((await call('GET', '/v1/tasks', `Bearer ${token}`)).body.tasks.map((t: { payload?: unknown, id: string }) => t.id).sort()).toEqual([ok.body.id, sleeper.body.id].sort())
    for (const w of await Promise.all(waits)) expect(w.body.status).toBe('succeeded')
    expect((await call('GET', `/v1/tasks/${sleeper.body.id}?wait=100`, `Bearer ${token}`)).status).toBe(200)
  })

  it('a node without a leader holds at most maxQueuedTasksPerNode accepted tasks; more submits get 429 and change nothing', async () => {
    const node = await set.start({ name: 'lonely', env: { TASKMESH_QUORUM: '2', TASKMESH_MAX_QUEUED_TASKS_PER_NODE: '3' } })
    const post = async (path: string, body: unknown): Promise<{ status: number, body: any, retryAfter: string | null }> => {
      const res = await fetch(node.url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) })
      return { status: res.status, body: await res.json(), retryAfter: res.headers.get('retry-after') }
    }
    const ids: string[] = []
    for (let i = 0; i < 3; i++) {
      const r = await post('/v1/tasks', { type: 'echo', payload: i })
      expect(r.status).toBe(202)
      ids.push(r.body.id)
    }
    expect((await node.cluster()).leader).toBeNull()
    const one = await post('/v1/tasks', { type: 'echo', payload: 'one too many' })
    expect(one.status).toBe(429)
    expect(one.body.error).toMatchObject({ code: 'QUEUE_FULL', message: expect.stringMatching(/maxQueuedTasksPerNode/) })
    expect(one.retryAfter).toBe('1')
    expect((await post('/v1/tasks/batch', { tasks: [{ type: 'echo' }] })).status).toBe(429)
    const listed = await getJson<{ tasks: Array<{ id: string, status: string }> }>(`${node.url}/v1/tasks`)
    expect(listed.tasks.map(t => t.id).sort()).toEqual([...ids].sort())
    expect(listed.tasks.every(t => t.status === 'queued')).toBe(true)
  })
})
