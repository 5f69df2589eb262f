/**
 * The transport contract (test/contract/transport-contract.ts) on real
 * libp2p nodes in this process, on loopback, dialled to each other (no mDNS).
 */
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import { join } from 'node:path'
import { Libp2pTransport } from '../../src/net/libp2p-transport.ts'
import { transportContract } from '../contract/transport-contract.ts'

transportContract('libp2p (src/net/libp2p-transport.ts)', async n => {
  const dirs: string[] = []
  const started: Libp2pTransport[] = []
  const create = async (): Promise<Libp2pTransport> => {
    const dir = await mkdtemp(join(os.tmpdir(), 'taskmesh-contract-'))
    dirs.push(dir)
    const t = await Libp2pTransport.create({ cluster: `contract-${process.pid}`, listen: ['/ip4/127.0.0.1/tcp/0'], bootstrap: [], mdns: false, dataDir: dir, maxFrameBytes: 1024 * 1024, maxFramesPerSecond: 10_000, clusterKey: null })
    started.push(t)
    return t
  }
  const cleanup = async (): Promise<void> => {
    await Promise.all(started.map(async t => { await t.stop() }))
    await Promise.all(dirs.map(async d => { await rm(d, { recursive: true, force: true }) }))
  }
  try {
    const transports = []
    for (let i = 0; i < n; i++) transports.push(await create())
    for (let i = 0; i < n; i++) for (let j = i + 1; j < n; j++) await transports[i]!.dial(transports[j]!.addresses()[0]!)
    // A peer id that exists but that nobody can reach: a node made and stopped before anyone dialled it.
    const stranger = await create()
    const unknownId = stranger.id
    await stranger.stop()
    started.splice(started.indexOf(stranger), 1)
    return { transports, unknownId, cleanup }
  } catch (err) {
    await cleanup()
    throw err
  }
})
