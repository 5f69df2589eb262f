/**
 * The contract every ClusterTransport keeps (src/runtime/transport.ts), run
 * against the libp2p one (test/integration/transport-contract-libp2p.test.ts)
 * and the simulator's (test/unit/transport-contract-sim.test.ts, with its
 * injected faults off). What the runtime may rely on:
 *
 * - a request gets the handler's reply, and the handler learns who asked;
 * - a handler that throws answers with an error reply (an RpcRefusedError's
 *   code, anything else INTERNAL, and its message): the requester's promise resolves with it,
 *   it does not reject; a node with no handler yet answers STARTING;
 * - a request rejects, within its timeout, when the peer is unknown, stopped
 *   or oneself, and at its timeout when the handler does not answer in time;
 * - ordering: none between concurrent requests, even to one peer: each is
 *   served on its own (a slow one holds up no later one) and each reply goes
 *   to its own request. Requests a caller sends one after another (awaiting
 *   each reply) are served in that order, since each is sent after the last
 *   reply came back;
 * - a heartbeat reaches every other connected member, never its publisher;
 * - peer-disconnected fires at the others when a peer stops (not at itself).
 */
import { afterEach, describe, expect, it } from 'vitest'
import type { Heartbeat } from '../../src/core/types.ts'
import { RpcRefusedError } from '../../src/protocol/rpc-errors.ts'
import type { RpcReply, RpcRequest } from '../../src/protocol/rpc.ts'
import type { ClusterTransport } from '../../src/runtime/transport.ts'
import { waitFor } from '../support/nodes.ts'

export interface TransportFixture {
  /** Transports connected to each other, with no handlers set yet. */
  transports: ClusterTransport[]
  /** A well-formed member id that no transport has (or ever had) a connection to. */
  unknownId: string
  /** Removes everything the fixture made (stopping transports still running). */
  cleanup: () => Promise<void>
}

/** A request whose reply names it, so replies can be matched to requests. */
const get = (id: string): RpcRequest => ({ kind: 'get', id, waitMs: 0 })
const echoOf = (r: RpcReply): string => r.kind === 'error' && r.code === 'INTERNAL' ? r.message : `unexpected ${JSON.stringify(r)}`

function heartbeat (id: string, seq: number): Heartbeat {
  return {
    id, name: `n-${seq}`, incarnation: 1_700_000_000_000, seq, leader: null, term: 0, dead: [], joining: false,
    http: 'http://127.0.0.1:1', capacity: 1, running: 0, queued: 0, load: { cpu: 0, memory: 0 }, types: ['echo']
  }
}

/** Runs the contract against transports made by `make(n)`. */
export function transportContract (name: string, make: (n: number) => Promise<TransportFixture>): void {
  describe(`ClusterTransport contract: ${name}`, () => {
    let fixture: TransportFixture | undefined
    afterEach(async () => {
      await fixture?.cleanup()
      fixture = undefined
    })
    const setup = async (n: number): Promise<ClusterTransport[]> => {
      fixture = await make(n)
      return fixture.transports
    }

    it('answers a request with the handler\'s reply, and tells the handler who asked', async () => {
      const [a, b] = await setup(2)
      b!.onRequest(async (msg, from) => msg.kind === 'get' ? { kind: 'error', code: 'INTERNAL', message: `${from}:${msg.id}` } : { kind: 'ok' })
      expect(echoOf(await a!.request(b!.id, get('x'), 5_000))).toBe(`${a!.id}:x`)
      expect(await a!.request(b!.id, { kind: 'cancel', id: 'y' }, 5_000)).toEqual({ kind: 'ok' })
    })

    it('a handler that throws answers with an error reply (a refusal keeps its code, anything else is INTERNAL): the request resolves with it', async () => {
      const [a, b] = await setup(2)
      b!.onRequest(async msg => {
        if (msg.kind === 'get' && msg.id === 'coded') throw new RpcRefusedError('NOT_LEADER', 'not the leader')
        throw new Error('boom')
      })
      expect(await a!.request(b!.id, get('coded'), 5_000)).toEqual({ kind: 'error', code: 'NOT_LEADER', message: 'NOT_LEADER: not the leader' })
      expect(await a!.request(b!.id, get('plain'), 5_000)).toEqual({ kind: 'error', code: 'INTERNAL', message: 'boom' })
    })

    it('a node with no request handler yet answers STARTING', async () => {
      const [a, b] = await setup(2)
      expect(await a!.request(b!.id, get('early'), 5_000)).toMatchObject({ kind: 'error', code: 'STARTING' })
    })

    it('a request to an unknown peer, to a stopped peer or to oneself rejects within its timeout', async () => {
      const [a, b] = await setup(2)
      b!.onRequest(async () => ({ kind: 'ok' }))
      expect(await a!.request(b!.id, get('alive'), 5_000)).toEqual({ kind: 'ok' })
      const rejectsWithin = async (to: string, timeoutMs: number): Promise<void> => {
        const t0 = Date.now()
        await expect(a!.request(to, get('x'), timeoutMs)).rejects.toThrow()
        // Generous slack for a loaded machine: the point is that it does not hang past its timeout.
        expect(Date.now() - t0).toBeLessThan(timeoutMs + 1_000)
      }
      await rejectsWithin(fixture!.unknownId, 3_000)
      await rejectsWithin(a!.id, 3_000)
      await b!.stop()
      await rejectsWithin(b!.id, 3_000)
    })

    it('a request whose handler does not answer in time rejects at its timeout, and the transport goes on', async () => {
      const [a, b] = await setup(2)
      b!.onRequest(async msg => {
        if (msg.kind === 'get' && msg.id === 'slow') await new Promise(resolve => setTimeout(resolve, 1_500))
        return { kind: 'error', code: 'INTERNAL', message: msg.kind === 'get' ? msg.id : msg.kind }
      })
      const t0 = Date.now()
      await expect(a!.request(b!.id, get('slow'), 300)).rejects.toThrow(/timed out/)
      const tookMs = Date.now() - t0
      expect(tookMs).toBeGreaterThanOrEqual(290)
      expect(tookMs).toBeLessThan(1_300)
      expect(echoOf(await a!.request(b!.id, get('after'), 5_000))).toBe('after')
    })

    it('serves concurrent requests to one peer each on its own: a slow one holds up no later one, each reply to its own request', async () => {
      const [a, b] = await setup(2)
      const served: string[] = []
      b!.onRequest(async msg => {
        const id = msg.kind === 'get' ? msg.id : msg.kind
        served.push(id)
        const ms = Number(/^slow-(\d+)/.exec(id)?.[1] ?? 0)
        if (ms > 0) await new Promise(resolve => setTimeout(resolve, ms))
        return { kind: 'error', code: 'INTERNAL', message: id }
      })
      const finished: string[] = []
      const ask = async (id: string): Promise<string> => {
        const r = echoOf(await a!.request(b!.id, get(id), 5_000))
        finished.push(r)
        return r
      }
      const ids = ['slow-600', 'fast-1', 'fast-2', 'slow-300', 'fast-3']
      expect(await Promise.all(ids.map(ask))).toEqual(ids)
      // Both slow ones were being served at once with the fast ones, which ended first.
      expect(finished.slice(0, 3).sort()).toEqual(['fast-1', 'fast-2', 'fast-3'])
      expect(finished.slice(3)).toEqual(['slow-300', 'slow-600'])
      // One after another: served in the order sent.
      served.length = 0
      for (let i = 0; i < 20; i++) await ask(`seq-${i}`)
      expect(served).toEqual(Array.from({ length: 20 }, (_, i) => `seq-${i}`))
    })

    it('a heartbeat reaches every other member and never its publisher', async () => {
      const ts = await setup(3)
      const heard = ts.map(() => [] as Heartbeat[])
      ts.forEach((t, i) => { t.onHeartbeat(hb => { heard[i]!.push(hb) }) })
      let seq = 0
      // Published until heard (gossip meshes form a moment after the connections do).
      await waitFor(async () => {
        seq++
        await Promise.all(ts.map(async t => { await t.publishHeartbeat(heartbeat(t.id, seq)) }))
        return ts.every((t, i) => ts.every((other, j) => i === j || heard[j]!.some(hb => hb.id === t.id)))
      }, 10_000, 'every heartbeat to reach every other member', 100)
      ts.forEach((t, i) => { expect(heard[i]!.filter(hb => hb.id === t.id), `${i} heard itself`).toEqual([]) })
      const one = heard[1]!.find(hb => hb.id === ts[0]!.id)!
      expect(one).toEqual(heartbeat(ts[0]!.id, one.seq))
    })

    it('peer-disconnected fires at the others when a peer stops', async () => {
      const ts = await setup(3)
      const lost = ts.map(() => [] as string[])
      ts.forEach((t, i) => { t.onPeerDisconnected(id => { lost[i]!.push(id) }) })
      await ts[2]!.stop()
      await waitFor(() => lost[0]!.includes(ts[2]!.id) && lost[1]!.includes(ts[2]!.id), 10_000, 'both others to see the stopped peer go')
      expect(lost[0]).not.toContain(ts[1]!.id)
      expect(lost[1]).not.toContain(ts[0]!.id)
    })
  })
}
