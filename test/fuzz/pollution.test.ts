/**
 * Prototype pollution: a node started in this process (so its Object.prototype
 * is the test's) gets `{"__proto__": {"polluted": true}}` and its variants
 * through every route, query string and config source. Each is refused and
 * nothing, anywhere, gains a `polluted` property.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { loadConfig } from '../../src/config.ts'
import { createLogger } from '../../src/log.ts'
import { startNode } from '../../src/node.ts'
import type { RunningNode } from '../../src/node.ts'
import { decodeRequest } from '../../src/protocol/rpc.ts'

const POISON = [
  '{"__proto__": {"polluted": true}}',
  '{"type": "echo", "__proto__": {"polluted": true}}',
  '{"type": "echo", "payload": {"__proto__": {"polluted": true}}}',
  '{"type": "echo", "payload": [{"x": {"__proto__": {"polluted": true}}}]}',
  '{"type": "echo", "constructor": {"prototype": {"polluted": true}}}',
  '{"type": "echo", "payload": {"constructor": {"prototype": {"polluted": true}}}}',
  '{"tasks": [{"type": "echo", "__proto__": {"polluted": true}}]}',
  '{"tasks": [{"type": "echo", "payload": {"__proto__": {"polluted": true}}}]}',
  '{"tasks": {"__proto__": {"polluted": true}}}'
]

function polluted (): boolean {
  return Object.prototype.hasOwnProperty.call(Object.prototype, 'polluted') || ({} as Record<string, unknown>).polluted !== undefined ||
    Object.prototype.hasOwnProperty.call(Array.prototype, 'polluted')
}

describe('prototype pollution', () => {
  let node: RunningNode | undefined
  let dir: string | undefined
  afterAll(async () => {
    await node?.stop()
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true })
  })

  it('a body, query or config with __proto__ or constructor.prototype keys is refused and pollutes nothing', async () => {
    dir = mkdtempSync(join(os.tmpdir(), 'taskmesh-pollution-'))
    const config = loadConfig({ flags: { cluster: 'pollution', httpPort: 0, dataDir: join(dir, 'data'), listen: ['/ip4/127.0.0.1/tcp/0'], mdns: false, logLevel: 'silent' }, env: {}, cwd: dir })
    node = await startNode(config, { log: createLogger('silent', { pretty: false }) })
    const url = node.httpUrl
    for (const body of POISON) {
      for (const path of ['/v1/tasks', '/v1/tasks?wait=100', '/v1/tasks/batch']) {
        const res = await fetch(url + path, { method: 'POST', headers: { 'content-type': 'application/json' }, body })
        const answer = await res.json() as { error: { code: string } }
        expect(res.status, `${path} ${body}`).toBe(400)
        expect(['MALFORMED_REQUEST', 'INVALID_REQUEST']).toContain(answer.error.code)
      }
    }
    for (const q of ['?__proto__[polluted]=true', '?__proto__.polluted=true', '?constructor[prototype][polluted]=true', '?status=queued&__proto__=x']) {
      const res = await fetch(`${url}/v1/tasks${q}`)
      expect(res.status, q).toBe(400)
    }
    // Config sources: file and environment.
    const file = join(dir, 'poison.json')
    writeFileSync(file, '{"__proto__": {"polluted": true}}')
    expect(() => loadConfig({ file, env: {}, cwd: dir })).toThrow(/unknown field "__proto__"/)
    writeFileSync(file, '{"handlers": {"__proto__": {"polluted": true}}}')
    expect(() => loadConfig({ file, env: {}, cwd: dir })).toThrow(/field "handlers"/)
    expect(() => loadConfig({ env: { TASKMESH_HANDLERS: '{"__proto__": "./x.js"}' }, cwd: dir })).toThrow(/field "handlers"/)
    // The wire: an RPC frame carrying the same keys fails its schema.
    expect(() => decodeRequest(new TextEncoder().encode('{"kind": "cancel", "id": "x", "__proto__": {"polluted": true}}'))).toThrow(/rpc request invalid/)

    expect(polluted()).toBe(false)
    const tasks = await (await fetch(`${url}/v1/tasks`)).json() as { tasks: unknown[] }
    expect(tasks.tasks).toEqual([])
    const ok = await fetch(`${url}/v1/tasks?wait=5000`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{"type": "echo", "payload": {"safe": true}}' })
    expect(ok.status).toBe(200)
    expect(await ok.json()).toMatchObject({ status: 'succeeded', result: { safe: true } })
    expect(polluted()).toBe(false)
  })
})
