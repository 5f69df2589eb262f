/**
 * The pure core stepped by hand (a manual clock, heartbeats written out) at
 * the two moments issue 19 left open: a heal that hands a leader an old
 * claim in its own term (gossip replays heartbeats a partition held back),
 * and a resume or restart that gives back a quorum lost to faults.
 */
import { describe, expect, it } from 'vitest'
import { ClusterCore } from '../../src/core/cluster-core.ts'
import type { ClusterCoreConfig } from '../../src/core/cluster-core.ts'
import type { CoreEvent, Heartbeat } from '../../src/core/types.ts'

const base: ClusterCoreConfig = { quorum: 3, heartbeatIntervalMs: 100, failureTimeoutMs: 600, deadRetentionMs: 5_000, joinWindowMs: 600 }
const info = { http: 'http://x', capacity: 1, running: 0, queued: 0, load: { cpu: 0, memory: 0 }, types: [] }
const seqs = new Map<string, number>()

/** The next heartbeat of `id` (its sequence number grows with every call). */
function hb (id: string, incarnation: number, over: Partial<Heartbeat> = {}): Heartbeat {
  const seq = (seqs.get(`${id}/${incarnation}`) ?? 0) + 1
  seqs.set(`${id}/${incarnation}`, seq)
  return { id, name: id, incarnation, seq, ...info, leader: null, term: 1, dead: [], joining: false, ...over }
}

const leaderChanges = (events: CoreEvent[]): CoreEvent[] => events.filter(e => e.type === 'leader-changed' || e.type === 'reincarnated')

/**
 * n4 (incarnation 0) in a cluster of five where n1 (incarnation -10) led in
 * term 1: n1 falls silent at 700 ms (cut off), n4 declares it dead and,
 * with n2, n3 and n5 naming nobody, takes office in term 2. Returns the core
 * at `nowMs` and a function that delivers a heartbeat of each of n2, n3, n5.
 */
function majorityLeaderN4 (quorum: number): { core: ClusterCore, nowMs: number, others: (atMs: number) => void } {
  seqs.clear()
  const core = new ClusterCore({ id: 'n4', name: 'n4', info }, { ...base, quorum }, 0)
  let nowMs = 0
  const young = { n2: 100, n3: 200, n5: 300 }
  let othersName: string | null = 'n1'
  const others = (atMs: number): void => {
    // While n4 joins the others are joining too (so it keeps its incarnation, the oldest after n1's).
    for (const [id, inc] of Object.entries(young)) core.onHeartbeat(hb(id, inc, { leader: othersName, joining: atMs < 700 }), atMs)
  }
  for (; nowMs <= 1_500; nowMs += 100) {
    if (nowMs < 700) core.onHeartbeat(hb('n1', -10, { leader: 'n1' }), nowMs)
    if (nowMs >= 1_400) othersName = null
    others(nowMs)
    core.onTick(nowMs)
  }
  expect(core.statusOf('n1')).toBe('dead')
  expect(core.leader()).toEqual({ id: 'n4', name: 'n4', term: 2 })
  return { core, nowMs, others }
}

describe('a heal hands a leader old heartbeats: only a claim that still stands deposes it', () => {
  it('a replayed claim of its own term from a member it holds dead, since withdrawn, moves nothing (quorum 3)', () => {
    const { core, nowMs, others } = majorityLeaderN4(3)
    // Heal: gossip first hands on what n1 sent cut off: it claimed term 2 too (before it heard of n4), then
    // stepped down for want of a quorum; its current heartbeat follows.
    const staleClaim = hb('n1', -10, { leader: 'n1', term: 2 })
    const laterStale = hb('n1', -10, { leader: 'n1', term: 2 })
    const current = hb('n1', -10, { leader: null, term: 2 })
    const events = [...core.onHeartbeat(staleClaim, nowMs + 1), ...core.onHeartbeat(current, nowMs + 5)]
    for (let t = nowMs + 100; t <= nowMs + 700; t += 100) {
      others(t)
      events.push(...core.onTick(t))
    }
    // A claim older than the current heartbeat, handed on late, after the window: older than what n4 heard.
    events.push(...core.onHeartbeat(laterStale, nowMs + 701))
    expect(leaderChanges(events), JSON.stringify(events)).toEqual([])
    expect(core.leader()).toEqual({ id: 'n4', name: 'n4', term: 2 })
    // n1 stays refused (listed dead) until it refutes with a new incarnation, younger than n4.
    expect(core.nextHeartbeat(nowMs + 700).dead).toContainEqual({ id: 'n1', incarnation: -10 })
  })

  it('a claim of its own term that still stands after a join window deposes it, as before (no quorum: both sides led)', () => {
    const { core, nowMs } = majorityLeaderN4(0)
    // Without a quorum n1 led its side in term 2 all along and still does.
    expect(leaderChanges(core.onHeartbeat(hb('n1', -10, { leader: 'n1', term: 2 }), nowMs + 1))).toEqual([])
    let deposedAt: number | null = null
    for (let t = nowMs + 100; t <= nowMs + 1_000 && deposedAt === null; t += 100) {
      const events = core.onHeartbeat(hb('n1', -10, { leader: 'n1', term: 2 }), t)
      if (events.some(e => e.type === 'reincarnated')) deposedAt = t
    }
    // The first heartbeat a join window (600 ms) after the first claim at +1 ms.
    expect(deposedAt).toBe(nowMs + 700)
    expect(core.leader()).toEqual({ id: 'n1', name: 'n1', term: 2 })
  })

  it('a higher term deposes at once, replayed or not (terms only grow)', () => {
    const { core, nowMs } = majorityLeaderN4(0)
    const events = core.onHeartbeat(hb('n1', -10, { leader: 'n1', term: 3 }), nowMs + 1)
    expect(events).toContainEqual(expect.objectContaining({ type: 'reincarnated' }))
    expect(core.leader()).toEqual({ id: 'n1', name: 'n1', term: 3 })
  })
})

/**
 * n1 (the oldest) of five with a quorum of 3: n3, n4 and n5 fall silent
 * (paused, or crashed) at 100 ms; n1 declares them dead and steps down with
 * only n2 left. Returns the core and the time.
 */
function quorumLost (): { core: ClusterCore, nowMs: number, n2: (atMs: number) => void } {
  seqs.clear()
  const core = new ClusterCore({ id: 'n1', name: 'n1', info }, base, 0)
  let nowMs = 0
  let n2Names: string | null = null
  const n2 = (atMs: number): void => { core.onHeartbeat(hb('n2', 100, { leader: n2Names, joining: atMs < 700 }), atMs) }
  for (; nowMs <= 800; nowMs += 100) {
    for (const [id, inc] of [['n3', 300], ['n4', 400], ['n5', 500]] as const) core.onHeartbeat(hb(id, inc, { leader: nowMs < 700 ? null : 'n1', joining: nowMs < 700 }), nowMs)
    n2(nowMs)
    core.onTick(nowMs)
    if (core.isLeader()) n2Names = 'n1'
  }
  // The others' heartbeats said term 1: n1 took office in term 2.
  expect(core.leader()).toEqual({ id: 'n1', name: 'n1', term: 2 })
  for (; nowMs <= 1_800; nowMs += 100) { n2(nowMs); core.onTick(nowMs) }
  expect(core.statusOf('n3')).toBe('dead')
  expect(core.leader()).toBeNull()
  n2Names = null
  n2(nowMs)
  return { core, nowMs, n2 }
}

describe('a resume or a restart that gives back a quorum brings a leader within a few heartbeats', () => {
  it('a member back from a restart (joining, naming this node) restores the quorum two heartbeat intervals after its first heartbeat', () => {
    const { core, nowMs, n2 } = quorumLost()
    // n3 restarted: a new incarnation in its join window; it has heard n1, the oldest, and names it. A joining
    // heartbeat that gossip replays at a heal, sent from the far side of a partition, looks the same (sticky-
    // leadership seed 1311195301), so n1, which saw no quorum, listens two intervals for the current ones first.
    const joined = (t: number): void => { core.onHeartbeat(hb('n3', 2_000, { leader: 'n1', joining: true }), t) }
    joined(nowMs)
    expect(core.leader()).toBeNull()
    let tookOffice: number | null = null
    for (let t = nowMs + 50; t <= nowMs + 1_000 && tookOffice === null; t += 50) {
      joined(t)
      n2(t)
      core.onTick(t)
      if (core.isLeader()) tookOffice = t
    }
    expect(tookOffice).toBe(nowMs + 2 * base.heartbeatIntervalMs)
    expect(core.leader()).toEqual({ id: 'n1', name: 'n1', term: 3 })
  })

  it('a joining member that names nobody yet is no vote (it may not have heard who leads)', () => {
    const { core, nowMs } = quorumLost()
    core.onHeartbeat(hb('n3', 2_000, { leader: null, joining: true }), nowMs)
    expect(core.leader()).toBeNull()
  })

  it('a member back from the far side of a partition (not joining) still makes it listen a join window first', () => {
    const { core, nowMs, n2 } = quorumLost()
    // n3 in its old incarnation, naming nobody: its heartbeat may be one gossip hands on late, from before the
    // other side elected, so it is no vote yet; n1 claims only when it has listened a join window.
    core.onHeartbeat(hb('n3', 300, { leader: null }), nowMs)
    expect(core.leader()).toBeNull()
    let tookOffice: number | null = null
    for (let t = nowMs + 100; t <= nowMs + 1_000 && tookOffice === null; t += 100) {
      core.onHeartbeat(hb('n3', 300, { leader: null }), t)
      n2(t)
      core.onTick(t)
      if (core.isLeader()) tookOffice = t
    }
    expect(tookOffice).toBe(nowMs + base.joinWindowMs)
  })
})
