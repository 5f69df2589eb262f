/**
 * The node-to-node RPC protocol under random, malformed and truncated frames
 * from a real libp2p peer that found the cluster by mDNS. Properties: every
 * stream ends at once (reset, or closed with an error reply), the nodes keep
 * serving each other and HTTP clients, no task or member state changes, the
 * sender is scored down, and frames over maxRpcFramesPerSecond are refused.
 */
import fc from 'fast-check'
import * as lp from 'it-length-prefixed'
import { describe, expect, it } from 'vitest'
import { decodeReply, decodeRequest } from '../../src/protocol/rpc.ts'
import { nodesPerTest, agreedLeader, getJson, waitFor } from '../support/nodes.ts'
import type { TestNode } from '../support/nodes.ts'
import { startRoguePeer } from '../support/rogue-peer.ts'

const SEED = Number(process.env.TASKMESH_FUZZ_SEED ?? Date.now() % 2 ** 31)
const enc = new TextEncoder()

const spec = { id: 'a', type: 'echo', payload: null, priority: 0, timeoutMs: 1000, maxAttempts: 1, idempotencyKey: null, createdAt: 1, origin: 'p', replicas: [] }
const update = { id: 'a', status: 'succeeded', attempts: 1, worker: null, progress: null, result: 1, error: null, startedAt: null, finishedAt: null }
/** One request of each kind, each valid, for mutating into near misses. */
const TEMPLATES: Array<Record<string, unknown>> = [
  { kind: 'submit', tasks: [spec] },
  { kind: 'replicate', tasks: [spec] },
  { kind: 'assign', term: 1, leader: 'p', tasks: [{ spec, attempt: 1 }] },
  { kind: 'report', reports: [{ id: 'a', attempt: 1, event: 'result', atMs: 1, outcome: { ok: true, result: 1 } }] },
  { kind: 'updates', updates: [update] },
  { kind: 'get', id: 'a', waitMs: 0 },
  { kind: 'wait', ids: ['a', 'b'], waitMs: 0 },
  { kind: 'cancel', id: 'a' },
  { kind: 'abort', ids: ['a'] },
  { kind: 'inventory', term: 1 }
]

const oddValue = fc.oneof(fc.jsonValue({ maxDepth: 2 }), fc.constantFrom(-1, 2 ** 60, 1.5, '', 'x'.repeat(200), null, [], {}, { __proto__: null }, Array.from({ length: 10_001 }, () => 'a')))

/** A template with one field replaced, removed or added; kept only when the result is invalid. */
const nearMiss = fc.tuple(fc.constantFrom(...TEMPLATES), fc.nat(), oddValue, fc.constantFrom('replace', 'remove', 'add', 'nest'))
  .map(([t, n, v, how]) => {
    const keys = Object.keys(t)
    const key = keys[n % keys.length]!
    const out: Record<string, unknown> = { ...t }
    if (how === 'replace') out[key] = v
    else if (how === 'remove') delete out[key]
    else if (how === 'add') Object.defineProperty(out, n % 2 === 0 ? '__proto__' : 'extra', { value: v, enumerable: true })
    else out[key] = { nested: t[key], v }
    return JSON.stringify(out)
  })

function frame (bytes: Uint8Array): Uint8Array {
  return lp.encode.single(bytes).subarray()
}

function isInvalid (bytes: Uint8Array): boolean {
  try { decodeRequest(bytes); return false } catch { return true }
}

/** What the rogue writes on one stream: chunks as they go on the wire. */
const streamBytes: fc.Arbitrary<Uint8Array[]> = fc.oneof(
  // A frame holding random bytes.
  fc.uint8Array({ maxLength: 2_000 }).map(b => [frame(b)]),
  // A frame holding JSON that is not a request (random values, near misses of each kind).
  fc.oneof(fc.jsonValue({ maxDepth: 4 }).map(v => JSON.stringify(v)), nearMiss, fc.constantFrom('{"kind":"get"}', '{"kind":"get","id":"a","waitMs":0,"x":1}', '{"kind":"submit","tasks":' + '['.repeat(5_000) + ']'.repeat(5_000) + '}'))
    .map(s => enc.encode(s)).filter(isInvalid).map(b => [frame(b)]),
  // A frame cut short: its length prefix promises more than follows.
  fc.tuple(nearMiss, fc.nat()).map(([s, n]) => { const f = frame(enc.encode(s)); return [f.subarray(0, 1 + (n % (f.length - 1)))] }),
  // Bytes that are no length prefix at all, or a prefix past the frame limit.
  fc.constantFrom<Uint8Array[]>([new Uint8Array(12).fill(0xff)], [frame(new Uint8Array(0))], [lp.encode.single(new Uint8Array(1)).subarray().slice(0, 1), new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f])]),
  fc.integer({ min: 2 ** 27, max: 2 ** 31 }).map(n => [varint(n), new Uint8Array(64)]),
  // Several frames on one stream, each invalid, split at random points.
  fc.array(fc.uint8Array({ minLength: 1, maxLength: 300 }), { minLength: 2, maxLength: 5 }).chain(parts => {
    const all = Buffer.concat(parts.map(p => frame(p)))
    return fc.nat({ max: all.length }).map(cut => [all.subarray(0, cut), all.subarray(cut)] as Uint8Array[])
  })
)

/** The payload of one length-prefixed frame. */
function unframe (bytes: Uint8Array): Uint8Array {
  let len = 0
  let shift = 1
  let i = 0
  for (; i < bytes.length; i++) {
    len += (bytes[i]! & 0x7f) * shift
    shift *= 128
    if ((bytes[i]! & 0x80) === 0) break
  }
  return bytes.subarray(i + 1, i + 1 + len)
}

function varint (n: number): Uint8Array {
  const out: number[] = []
  while (n >= 0x80) { out.push((n & 0x7f) | 0x80); n = Math.floor(n / 128) }
  out.push(n)
  return new Uint8Array(out)
}

async function state (n: TestNode): Promise<unknown> {
  const view = await n.cluster()
  const tasks = await getJson<{ tasks: Array<{ id: string, status: string, attempts: number, result: unknown }> }>(`${n.url}/v1/tasks?limit=1000`)
  return { members: view.members.map(m => `${m.name}:${m.status}`).sort(), leader: view.leader, tasks: tasks.tasks.map(t => `${t.id}:${t.status}:${t.attempts}:${JSON.stringify(t.result)}`).sort() }
}

async function submit (n: TestNode, payload: unknown): Promise<{ status: string, result: unknown }> {
  const res = await fetch(`${n.url}/v1/tasks?wait=10000`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ type: 'echo', payload }) })
  return await res.json() as { status: string, result: unknown }
}

describe('RPC protocol fuzzing', () => {
  const set = nodesPerTest()

  it('random, malformed and truncated frames from a real peer reset their streams and change nothing; floods are cut at maxRpcFramesPerSecond', async () => {
    const a1 = await set.start({ name: 'r1', cluster: 'rpcfuzz' })
    const a2 = await set.start({ name: 'r2', cluster: 'rpcfuzz', env: { TASKMESH_MAX_RPC_FRAMES_PER_SECOND: '50' } })
    await waitFor(async () => await agreedLeader([a1, a2], 2), 10_000, 'two nodes to agree')
    for (let i = 0; i < 5; i++) expect(await submit(i % 2 === 0 ? a1 : a2, { before: i })).toMatchObject({ status: 'succeeded' })
    const before = [await state(a1), await state(a2)]
    const rogue = await startRoguePeer('rpcfuzz')
    try {
      await waitFor(async () => (await rogue.sendRaw(a1.id, [new Uint8Array([0xff])], { timeoutMs: 2_000 })).error === undefined || rogue.connectedPeers() >= 2, 15_000, 'the rogue peer to reach the nodes')
      const outcomes = new Map<string, number>()
      console.log(`RPC fuzz seed ${SEED} (replay: TASKMESH_FUZZ_SEED=${SEED})`)
      await fc.assert(fc.asyncProperty(streamBytes, async chunks => {
        const r = await rogue.sendRaw(a1.id, chunks, { timeoutMs: 12_000 })
        outcomes.set(r.outcome, (outcomes.get(r.outcome) ?? 0) + 1)
        expect(r.outcome, `${Buffer.concat(chunks).subarray(0, 200).toString('hex')}: ${String(r.error)}`).not.toBe('timeout')
        // A node answers nothing to garbage but an error, and usually not even that: it resets.
        if (r.reply.byteLength > 0) expect(decodeReply(unframe(r.reply)).kind).toBe('error')
      }), { numRuns: 300, seed: SEED, endOnFailure: true })
      console.log(`RPC fuzz: 300 streams to r1: ${JSON.stringify(Object.fromEntries(outcomes))}`)
      await waitFor(() => /"msg":"rpc stream reset"/.test(a1.output()), 5_000, 'r1 to log the resets')
      const reset = JSON.parse(a1.output().split('\n').find(l => l.includes('"msg":"rpc stream reset"'))!) as { from: string, penalty: number }
      expect(reset.from).toBe(rogue.id)
      expect(reset.penalty).toBeGreaterThan(0)

      // A flood of well-formed requests to r2 (50 frames a second allowed): the excess is reset.
      const flood = []
      for (let wave = 0; wave < 3; wave++) {
        flood.push(...await Promise.all(Array.from({ length: 50 }, async () => await rogue.sendRaw(a2.id, [frame(enc.encode(JSON.stringify({ kind: 'get', id: 'no-such-task', waitMs: 0 })))], { timeoutMs: 12_000 }))))
      }
      const answered = flood.filter(r => r.outcome === 'closed' && r.reply.byteLength > 0).length
      const refused = flood.filter(r => r.outcome === 'reset').length
      console.log(`RPC flood of 150 requests to r2 (limit 50/s): ${answered} answered, ${refused} reset`)
      expect(answered).toBeGreaterThan(0)
      expect(refused).toBeGreaterThan(0)
      expect(answered + refused).toBe(150)
      await waitFor(() => /exceeds maxRpcFramesPerSecond/.test(a2.output()), 5_000, 'r2 to log the flood')
    } finally {
      await rogue.stop()
    }
    // Nothing changed, and both nodes still serve each other and clients.
    expect([await state(a1), await state(a2)]).toEqual(before)
    expect(await submit(a1, { after: 1 })).toMatchObject({ status: 'succeeded', result: { after: 1 } })
    expect(await submit(a2, { after: 2 })).toMatchObject({ status: 'succeeded', result: { after: 2 } })
    expect(await agreedLeader([a1, a2], 2)).toBeDefined()
  })
})
