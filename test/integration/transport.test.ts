/**
 * The RPC transport on real libp2p nodes (two in this process, loopback):
 * streams are kept open and reused between requests, concurrent requests get
 * streams of their own, and a peer that restarts (its streams gone) is
 * reached again on a fresh stream.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { Libp2pTransport } from '../../src/net/libp2p-transport.ts'
import type { RpcReply, RpcRequest } from '../../src/protocol/rpc.ts'

const dirs: string[] = []
const started: Libp2pTransport[] = []
afterEach(async () => {
  await Promise.all(started.splice(0).map(async t => { await t.stop() }))
  await Promise.all(dirs.splice(0).map(async d => { await rm(d, { recursive: true, force: true }) }))
})

async function transport (dataDir?: string, listen = '/ip4/127.0.0.1/tcp/0'): Promise<{ t: Libp2pTransport, dir: string }> {
  const dir = dataDir ?? await mkdtemp(join(os.tmpdir(), 'taskmesh-transport-'))
  if (dataDir === undefined) dirs.push(dir)
  const t = await Libp2pTransport.create({ cluster: `transport-${process.pid}`, listen: [listen], bootstrap: [], mdns: false, dataDir: dir, maxFrameBytes: 1024 * 1024, maxFramesPerSecond: 10_000, clusterKey: null })
  started.push(t)
  // Answers a get with the id it was asked for, after a delay the id names (to hold a stream busy).
  t.onRequest(async (msg: RpcRequest): Promise<RpcReply> => {
    if (msg.kind !== 'get') throw new Error(`unexpected request ${msg.kind}`)
    const delay = Number(/^slow-(\d+)/.exec(msg.id)?.[1] ?? 0)
    if (delay > 0) await new Promise(r => setTimeout(r, delay))
    return { kind: 'error', code: 'INTERNAL', message: msg.id } // an echo of the id asked for
  })
  return { t, dir }
}

const ask = async (from: Libp2pTransport, to: string, id: string): Promise<string> => {
  const reply = await from.request(to, { kind: 'get', id, waitMs: 0 }, 5_000)
  if (reply.kind !== 'error') throw new Error(`unexpected reply ${reply.kind}`)
  return reply.message
}

describe('RPC streams', () => {
  it('reuses one stream for sequential requests and opens more only for concurrent ones', async () => {
    const { t: a } = await transport()
    const { t: b } = await transport()
    await a.dial(b.addresses()[0]!)
    for (let i = 0; i < 200; i++) expect(await ask(a, b.id, `task-${i}`)).toBe(`task-${i}`)
    expect(a.rpcStats()).toMatchObject({ requests: 200, streamsOpened: 1 })
    expect(b.rpcStats().served).toBe(200)
    // Ten at once: one stream each (the idle one is reused), each reply matched to its own request.
    const ids = Array.from({ length: 10 }, (_, i) => `slow-50-${i}`)
    expect(await Promise.all(ids.map(async id => await ask(a, b.id, id)))).toEqual(ids)
    expect(a.rpcStats().streamsOpened).toBe(10)
    // Then sequential requests again use the streams kept open.
    for (let i = 0; i < 50; i++) await ask(a, b.id, `again-${i}`)
    expect(a.rpcStats().streamsOpened).toBe(10)
  })

  it('reaches a peer that restarted: its old streams are gone, a fresh one carries the next request', async () => {
    const { t: a } = await transport()
    const first = await transport()
    const addr = first.t.addresses()[0]!
    await a.dial(addr)
    expect(await ask(a, first.t.id, 'before')).toBe('before')
    await first.t.stop()
    started.splice(started.indexOf(first.t), 1)
    const port = /\/tcp\/(\d+)/.exec(addr)![1]!
    const again = await transport(first.dir, `/ip4/127.0.0.1/tcp/${port}`)
    expect(again.t.id).toBe(first.t.id)
    await a.dial(again.t.addresses()[0]!)
    expect(await ask(a, again.t.id, 'after')).toBe('after')
    expect(a.rpcStats().streamsOpened).toBe(2)
  })
})
