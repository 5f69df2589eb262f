/**
 * The task path's decisions, as the pure functions the runtime calls:
 * admission, second-copy targets, fencing, the gather tally, the hand-over
 * queue and the leader's intake of a hand-over.
 */
import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { admit, leaderHasRoom, replicaTargets } from '../../src/core/admission.ts'
import type { AdmissionInput } from '../../src/core/admission.ts'
import { fenceAssignment, fenceInventory } from '../../src/core/fencing.ts'
import { tallyGather } from '../../src/core/gather.ts'
import type { GatherAnswer } from '../../src/core/gather.ts'
import { TermGrants } from '../../src/core/grants.ts'
import { EndedMemory, HandOverQueue, classifyHandOver, holdsCopy } from '../../src/core/hand-over.ts'
import type { TaskStatus } from '../../src/core/tasks.ts'

const base: AdmissionInput = {
  types: new Set(['echo', 'hash']),
  tasks: [{ type: 'echo', payloadBytes: 10 }],
  maxPayloadBytes: 100,
  leaderWaiting: 0,
  maxQueuedTasks: 10,
  heldForLeader: 0,
  maxHeldForLeader: Infinity
}

describe('admit', () => {
  it('accepts known types with payloads within the limit while the queues have room', () => {
    expect(admit(base)).toEqual({ ok: true })
  })

  it('refuses a type no live member runs, naming the known ones in order', () => {
    expect(admit({ ...base, tasks: [{ type: 'echo', payloadBytes: 1 }, { type: 'resize', payloadBytes: 1 }] }))
      .toEqual({ ok: false, reason: 'unknown-type', type: 'resize', known: ['echo', 'hash'] })
  })

  it('refuses an oversized payload, naming its index in the batch', () => {
    expect(admit({ ...base, tasks: [{ type: 'echo', payloadBytes: 1 }, { type: 'echo', payloadBytes: 101 }] }))
      .toEqual({ ok: false, reason: 'payload-too-large', index: 1, bytes: 101, limit: 100 })
  })

  it('refuses a batch that would overfill the leader queue, then one that would overfill what this node holds', () => {
    expect(admit({ ...base, leaderWaiting: 10 })).toEqual({ ok: false, reason: 'queue-full', scope: 'cluster', limit: 10 })
    expect(admit({ ...base, heldForLeader: 5, maxHeldForLeader: 5 })).toEqual({ ok: false, reason: 'queue-full', scope: 'node', limit: 5 })
  })

  it('never accepts more than either bound allows', () => {
    fc.assert(fc.property(fc.nat(20), fc.nat(20), fc.nat(20), fc.integer({ min: 1, max: 20 }), (waiting, held, maxHeld, n) => {
      const v = admit({ ...base, tasks: Array.from({ length: n }, () => ({ type: 'echo', payloadBytes: 1 })), leaderWaiting: waiting, heldForLeader: held, maxHeldForLeader: maxHeld })
      expect(v.ok).toBe(waiting + n <= base.maxQueuedTasks && held + n <= maxHeld)
    }))
  })

  it('lets a leader take a hand-over only while its queue has room for what it does not track yet', () => {
    expect(leaderHasRoom(8, 2, 10)).toBe(true)
    expect(leaderHasRoom(9, 2, 10)).toBe(false)
  })
})

describe('replicaTargets', () => {
  const m = (id: string, running: number, status: 'alive' | 'suspect' | 'dead' = 'alive', capacity = 4): { id: string, status: 'alive' | 'suspect' | 'dead', running: number, capacity: number } => ({ id, status, running, capacity })

  it('puts the leader first, then the least loaded, and never this node or a member that is not alive', () => {
    const members = [m('self', 0), m('a', 3), m('b', 1), m('leader', 4), m('s', 0, 'suspect'), m('d', 0, 'dead')]
    expect(replicaTargets(members, 'self', 'leader', 4)).toEqual(['leader', 'b', 'a'])
  })

  it('tries at most the given number of members', () => {
    expect(replicaTargets([m('a', 0), m('b', 1), m('c', 2)], 'self', null, 2)).toEqual(['a', 'b'])
  })

  it('has no target when this node is alone', () => {
    expect(replicaTargets([m('self', 0)], 'self', 'self', 4)).toEqual([])
  })
})

describe('fenceAssignment', () => {
  it('refuses an assignment below the highest term this node knows, and grants nothing', () => {
    const grants = new TermGrants()
    expect(fenceAssignment({ term: 3, leader: 'L' }, 'L', 4, () => grants.grant(3, 'L').granted)).toMatchObject({ accept: false, code: 'STALE_TERM' })
    expect(grants.current).toBeNull()
  })

  it('refuses an assignment whose sender is not the leader it names', () => {
    const grants = new TermGrants()
    expect(fenceAssignment({ term: 3, leader: 'L' }, 'X', 3, () => grants.grant(3, 'L').granted)).toMatchObject({ accept: false, code: 'FORGED' })
    expect(grants.current).toBeNull()
  })

  it('never lets a worker run one term\'s assignments from two leaders', () => {
    const grants = new TermGrants()
    expect(fenceAssignment({ term: 5, leader: 'A' }, 'A', 5, () => grants.grant(5, 'A').granted)).toEqual({ accept: true })
    expect(fenceAssignment({ term: 5, leader: 'B' }, 'B', 5, () => grants.grant(5, 'B').granted)).toMatchObject({ accept: false, code: 'STALE_TERM' })
    expect(fenceAssignment({ term: 5, leader: 'A' }, 'A', 5, () => grants.grant(5, 'A').granted)).toEqual({ accept: true })
  })

  it('answers an inventory request of a term granted to another leader with TERM_TAKEN', () => {
    const grants = new TermGrants({ term: 2, leader: 'A' })
    expect(fenceInventory(2, grants.grant(2, 'B').granted)).toMatchObject({ accept: false, code: 'TERM_TAKEN' })
    expect(fenceInventory(3, grants.grant(3, 'B').granted)).toEqual({ accept: true })
  })
})

describe('tallyGather', () => {
  const granted = (from: string): GatherAnswer => ({ kind: 'granted', from, running: [], held: [] })

  it('claims a newer term as soon as one member refused, whatever the others said', () => {
    expect(tallyGather([granted('a'), granted('b'), { kind: 'refused', from: 'c' }], 0)).toEqual({ kind: 'claim-newer-term' })
  })

  it('asks again while fewer than a quorum granted', () => {
    expect(tallyGather([granted('a'), { kind: 'silent', from: 'b' }, { kind: 'silent', from: 'c' }], 2)).toEqual({ kind: 'ask-again', granted: 1, quorum: 2 })
  })

  it('takes over from the inventories of those that granted once a quorum did (or without a quorum rule)', () => {
    expect(tallyGather([granted('a'), granted('b'), { kind: 'silent', from: 'c' }], 2)).toMatchObject({ kind: 'take-over', inventories: [{ from: 'a' }, { from: 'b' }] })
    expect(tallyGather([granted('a')], 0)).toMatchObject({ kind: 'take-over' })
  })

  it('never takes over with fewer grants than the quorum', () => {
    const answer = fc.oneof(fc.constant('granted'), fc.constant('silent'), fc.constant('refused'))
    fc.assert(fc.property(fc.array(answer, { maxLength: 9 }), fc.nat(9), (kinds, quorum) => {
      const answers: GatherAnswer[] = kinds.map((k, i) => k === 'granted' ? granted(`m${i}`) : { kind: k as 'silent' | 'refused', from: `m${i}` })
      const v = tallyGather(answers, quorum)
      if (v.kind === 'take-over') {
        expect(kinds).not.toContain('refused')
        expect(v.inventories.length).toBeGreaterThanOrEqual(quorum)
      }
    }))
  })
})

describe('HandOverQueue', () => {
  it('offers nothing without a leader', () => {
    const q = new HandOverQueue()
    q.offer(['t1'])
    expect(q.next(false, false)).toEqual({ kind: 'idle' })
    expect(q.next(true, false)).toEqual({ kind: 'offer', ids: ['t1'] })
  })

  it('never offers a task whose second copy is still being stored', () => {
    const q = new HandOverQueue()
    q.offer(['t1', 't2'])
    q.beginStoring(['t1'])
    expect(q.next(true, false)).toEqual({ kind: 'offer', ids: ['t2'] })
    q.endStoring(['t1'])
    expect(q.next(true, false)).toEqual({ kind: 'offer', ids: ['t1', 't2'] })
  })

  it('reconciles records from before a restart first, and not while joining', () => {
    const q = new HandOverQueue()
    q.markStale('old')
    q.offer(['new'])
    expect(q.next(true, true)).toEqual({ kind: 'idle' })
    expect(q.next(true, false)).toEqual({ kind: 'reconcile', ids: ['old'] })
    q.reconciled('old')
    expect(q.next(true, false)).toEqual({ kind: 'offer', ids: ['old', 'new'] })
  })

  it('runs again a task the leader says ended when every live holder still has it unfinished, and only then', () => {
    const q = new HandOverQueue()
    const status: Record<string, TaskStatus> = { a: 'running', b: 'succeeded' }
    expect(q.rerunUnfinished(['a', 'b', 'gone'], id => status[id])).toEqual(['a'])
    expect(q.reruns(['a', 'b'])).toEqual(['a'])
    expect(q.acknowledge(['a', 'b'])).toEqual(['a'])
    expect(q.reruns(['a'])).toEqual([])
    expect(q.waiting).toBe(0)
  })
})

describe('classifyHandOver', () => {
  const spec = (id: string, origin = 'o', replicas = ['r']): { id: string, origin: string, replicas: string[] } => ({ id, origin, replicas })

  it('queues what is unfinished with the most attempts any copy has seen, and answers what ended under this leader as ended', () => {
    const here: Record<string, { status: TaskStatus, attempts: number }> = { done: { status: 'failed', attempts: 3 }, more: { status: 'retrying', attempts: 2 } }
    const out = classifyHandOver([spec('new'), spec('done'), spec('more'), spec('ended'), spec('dup')], [1, 3, 1, 0, 0],
      id => id === 'dup' ? 'other' : id, id => here[id], id => id === 'ended')
    expect(out.queue.map(t => [t.id, t.attempts])).toEqual([['new', 1], ['more', 2]])
    expect(out.ended).toEqual(['ended'])
    // The copy here ended: the offering holder missed that ending, and the leader passes it on.
    expect(out.endedHere).toEqual(['done'])
  })

  it('says which node holds a copy: the origin and the listed replicas', () => {
    expect(holdsCopy('o', spec('t'))).toBe(true)
    expect(holdsCopy('r', spec('t'))).toBe(true)
    expect(holdsCopy('x', spec('t'))).toBe(false)
  })
})

describe('EndedMemory', () => {
  it('forgets the oldest ids beyond its bound', () => {
    const m = new EndedMemory(2)
    for (const id of ['a', 'b', 'c']) m.remember(id)
    expect([m.has('a'), m.has('b'), m.has('c')]).toEqual([false, true, true])
    expect(m.forget('b')).toBe(true)
    expect(m.has('b')).toBe(false)
  })
})
