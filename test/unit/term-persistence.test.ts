/**
 * Persist, then send: the cluster runtime writes a term (and a grant) to disk,
 * fsynced, before any heartbeat, listener or reply can reveal it. The term
 * store here is the real file store in a temporary folder, wrapped to record
 * the order of writes; the transport records what is published; the clock
 * is manual.
 */
import { readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import os from 'node:os'
import { join } from 'node:path'
import pino from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import type { ClusterCoreConfig } from '../../src/core/cluster-core.ts'
import type { Heartbeat } from '../../src/core/types.ts'
import { ClusterRuntime, TermNotDurableError, fileTermStore } from '../../src/runtime/cluster-runtime.ts'
import type { TermStore } from '../../src/runtime/cluster-runtime.ts'
import type { ClusterTransport } from '../../src/runtime/transport.ts'
import { ManualClock } from '../support/manual-clock.ts'

const CORE: ClusterCoreConfig = { quorum: 0, heartbeatIntervalMs: 100, failureTimeoutMs: 600, deadRetentionMs: 5_000, joinWindowMs: 300 }

const dirs: string[] = []
afterEach(async () => {
  await Promise.all(dirs.splice(0).map(async d => { await rm(d, { recursive: true, force: true }) }))
})

interface Harness {
  runtime: ClusterRuntime
  clock: ManualClock
  dir: string
  /** Everything in the order it happened: `write term N`, `write grant N L`, `publish N`, `event E N`. */
  order: string[]
  deliver: (hb: Heartbeat) => void
  /** Makes the next writes throw, as a full or failing disk does. */
  failWrites: (fail: boolean) => void
}

async function harness (): Promise<Harness> {
  const dir = await mkdtemp(join(os.tmpdir(), 'taskmesh-terms-'))
  dirs.push(dir)
  const order: string[] = []
  const files = fileTermStore(dir)
  let failing = false
  const terms: TermStore = {
    read: async () => await files.read(),
    readGrant: async () => await files.readGrant(),
    writeTermSync: term => {
      if (failing) throw new Error('ENOSPC: no space left on device')
      files.writeTermSync(term)
      order.push(`write term ${term}`)
    },
    writeGrantSync: grant => {
      if (failing) throw new Error('ENOSPC: no space left on device')
      files.writeGrantSync(grant)
      order.push(`write grant ${grant.term} ${grant.leader}`)
    }
  }
  let onHeartbeat: (hb: Heartbeat) => void = () => {}
  const onDisk = (): number => Number(readFileSync(join(dir, 'term'), 'utf8'))
  const transport: ClusterTransport = {
    id: 'self',
    addresses: () => [],
    publishHeartbeat: async hb => {
      // What a peer could learn from this heartbeat is already on disk.
      if (hb.term > 0) expect(onDisk()).toBeGreaterThanOrEqual(hb.term)
      order.push(`publish ${hb.term}`)
    },
    onHeartbeat: h => { onHeartbeat = h },
    onPeerDisconnected: () => {},
    keepConnected: () => {},
    request: async () => { throw new Error('no requests in this test') },
    onRequest: () => {},
    stop: async () => {}
  }
  const clock = new ManualClock()
  const runtime = new ClusterRuntime({
    name: 'self', http: 'http://self', capacity: 1, types: [], load: () => ({ running: 0, queued: 0 }),
    terms, timings: CORE, transport, clock, log: pino({ level: 'silent' }), machineLoad: () => ({ cpu: 0, memory: 0 })
  }, await terms.read(), await terms.readGrant())
  runtime.onEvent(e => {
    const term = runtime.term()
    if (term > 0) expect(onDisk()).toBeGreaterThanOrEqual(term)
    order.push(`event ${e.type} ${term}`)
  })
  return { runtime, clock, dir, order, deliver: hb => { onHeartbeat(hb) }, failWrites: f => { failing = f } }
}

function peerHeartbeat (clock: ManualClock, seq: number, term: number): Heartbeat {
  return {
    id: 'peer', name: 'peer', incarnation: clock.now() - 60_000, seq, leader: 'peer', term, dead: [], joining: false,
    http: 'http://peer', capacity: 1, running: 0, queued: 0, load: { cpu: 0, memory: 0 }, types: []
  }
}

/** Each revealed term (published or told to a listener) came after a write of that term or a higher one. */
function expectPersistedBeforeRevealed (order: string[]): void {
  let written = 0
  for (const line of order) {
    const m = /^(write term|publish|event \S+) (\d+)/.exec(line)
    if (m === null) continue
    const term = Number(m[2])
    if (m[1] === 'write term') written = Math.max(written, term)
    else if (term > 0) expect(written, `"${line}" came before the term was written:\n${order.join('\n')}`).toBeGreaterThanOrEqual(term)
  }
}

describe('term persistence', () => {
  it('writes a term it elects itself to before any heartbeat or listener carries it', async () => {
    const h = await harness()
    h.runtime.start()
    await h.clock.advance(1_000)
    expect(h.runtime.isLeader()).toBe(true)
    expect(h.runtime.term()).toBe(1)
    expect(h.order).toContain('write term 1')
    expect(h.order.indexOf('write term 1')).toBeLessThan(h.order.indexOf('publish 1'))
    expectPersistedBeforeRevealed(h.order)
    expect(await fileTermStore(h.dir).read()).toBe(1)
    await h.runtime.stop()
  })

  it('writes a higher term learned from a peer before it publishes or tells a listener', async () => {
    const h = await harness()
    h.runtime.start()
    for (let seq = 1; seq <= 10; seq++) {
      h.deliver(peerHeartbeat(h.clock, seq, seq < 5 ? 7 : 9))
      await h.clock.advance(100)
    }
    expect(h.runtime.term()).toBe(9)
    expect(h.order.filter(l => l.startsWith('write term'))).toEqual(['write term 7', 'write term 9'])
    expectPersistedBeforeRevealed(h.order)
    await h.runtime.stop()
  })

  it('when the disk refuses the term, throws before anything reveals it, and publishes nothing newer until it is written', async () => {
    const h = await harness()
    h.runtime.start()
    await h.clock.advance(200)
    h.failWrites(true)
    const before = h.order.length
    expect(() => { h.deliver(peerHeartbeat(h.clock, 1, 4)) }).toThrow(TermNotDurableError)
    // The runtime's next tick tries again and throws again: in a node that ends the process.
    await expect(h.clock.advance(100)).rejects.toThrow(TermNotDurableError)
    expect(h.order.slice(before).filter(l => !l.startsWith('write'))).toEqual([])
    h.failWrites(false)
    await h.clock.advance(200)
    expect(h.order.slice(before)[0]).toBe('write term 4')
    expectPersistedBeforeRevealed(h.order)
    await h.runtime.stop()
  })

  it('a grant is on disk when grant() returns; one the disk refuses is refused', async () => {
    const h = await harness()
    expect(h.runtime.grant(3, 'leader-a')).toBe(true)
    expect(await fileTermStore(h.dir).readGrant()).toEqual({ term: 3, leader: 'leader-a' })
    // Asking again writes nothing new.
    expect(h.runtime.grant(3, 'leader-a')).toBe(true)
    expect(h.order).toEqual(['write grant 3 leader-a'])
    h.failWrites(true)
    expect(h.runtime.grant(4, 'leader-b')).toBe(false)
    expect(await fileTermStore(h.dir).readGrant()).toEqual({ term: 3, leader: 'leader-a' })
    // Nothing revealed term 4 to leader-b, so it may be asked again; still only to leader-b, and written this time.
    h.failWrites(false)
    expect(h.runtime.grant(4, 'leader-c')).toBe(false)
    expect(h.runtime.grant(4, 'leader-b')).toBe(true)
    expect(await fileTermStore(h.dir).readGrant()).toEqual({ term: 4, leader: 'leader-b' })
  })
})
