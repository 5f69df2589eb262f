import { describe, expect, it } from 'vitest'
import { ClusterCore } from '../../src/core/cluster-core.ts'
import type { ClusterCoreConfig } from '../../src/core/cluster-core.ts'
import { MembershipView, hintConfirmMs, silenceLimitsMs } from '../../src/core/membership.ts'
import type { Heartbeat } from '../../src/core/types.ts'
import { decodeHeartbeat, encodeHeartbeat } from '../../src/protocol/messages.ts'
import { decodeSyncReply, decodeSyncRequest, encodeSyncReply, encodeSyncRequest } from '../../src/protocol/member-sync.ts'

const config: ClusterCoreConfig = { quorum: 0, heartbeatIntervalMs: 100, failureTimeoutMs: 600, deadRetentionMs: 5_000, joinWindowMs: 300, followerHeartbeatsPerSecond: 10 }
const info = { http: 'http://x', capacity: 1, running: 0, queued: 0, load: { cpu: 0, memory: 0 }, types: [] }

function hb (id: string, seq: number, over: Partial<Heartbeat> = {}): Heartbeat {
  return { id, name: id, incarnation: 1, seq, ...info, leader: null, term: 0, dead: [], joining: false, ...over }
}

/** A core past its join window that follows the first of `others` (all older than it). */
function follower (id: string, others: string[], nowMs: number): ClusterCore {
  const core = new ClusterCore({ id, name: id, info }, config, nowMs - 500)
  core.onTick(nowMs)
  for (const o of others) core.onHeartbeat(hb(o, 1, { leader: others[0]!, term: 1, intervalMs: 100 }), nowMs)
  return core
}

describe('silence limits scale with the interval a member announced', () => {
  it('gives a member as many of its own intervals as failureTimeoutMs has heartbeat intervals', () => {
    expect(silenceLimitsMs(config, 100)).toEqual({ suspectMs: 300, deadMs: 600 })
    expect(silenceLimitsMs(config, 50)).toEqual({ suspectMs: 300, deadMs: 600 })
    expect(silenceLimitsMs(config, 1_000)).toEqual({ suspectMs: 3_000, deadMs: 6_000 })
  })

  it('declares a slow follower dead only after its own longer timeout', () => {
    const view = new MembershipView(config)
    view.admit(hb('fast', 1), 0)
    view.admit(hb('slow', 1, { intervalMs: 1_000 }), 0)
    expect(view.tick(600).flatMap(e => e.type === 'member-status' ? [[e.id, e.to]] : [])).toEqual([['fast', 'dead']])
    expect(view.get('slow')?.status).toBe('alive')
    expect(view.tick(3_000)).toEqual([expect.objectContaining({ id: 'slow', to: 'suspect' })])
    expect(view.tick(6_000)).toContainEqual(expect.objectContaining({ id: 'slow', to: 'dead' }))
  })
})

describe('a closed connection is confirmed by a direct probe', () => {
  it('a refused probe confirms the hint at once; an answered one withdraws it', () => {
    const view = new MembershipView(config)
    view.admit(hb('a', 1), 0)
    view.admit(hb('b', 1), 0)
    view.hintDisconnected('a', 10)
    view.hintDisconnected('b', 10)
    expect(view.probeFailed('a', 12)).toEqual([expect.objectContaining({ id: 'a', to: 'dead', reason: 'connection closed and a probe failed' })])
    expect(view.probeAnswered('b', 12)).toEqual([expect.objectContaining({ id: 'b', to: 'alive', reason: 'answered a probe' })])
    // b's hint is gone: no heartbeat within the confirmation window is needed any more.
    expect(view.tick(10 + hintConfirmMs(config))).toEqual([])
  })

  it('a failed probe without a pending hint proves nothing', () => {
    const view = new MembershipView(config)
    view.admit(hb('a', 1), 0)
    expect(view.probeFailed('a', 5)).toEqual([])
    expect(view.get('a')?.status).toBe('alive')
  })

  it('the core re-elects at once when a probe confirms that the leader crashed', () => {
    const core = follower('n2', ['n1'], 1_000)
    expect(core.leader()?.id).toBe('n1')
    core.onPeerDisconnected('n1', 1_010)
    const events = core.onProbeResult('n1', false, 1_011)
    expect(events).toContainEqual(expect.objectContaining({ type: 'member-status', id: 'n1', to: 'dead' }))
    expect(core.isLeader()).toBe(true)
    expect(core.leader()?.term).toBe(2)
  })
})

describe('heartbeat cadence', () => {
  it('a follower of a large cluster publishes at the shared budget; in a small one every heartbeatIntervalMs', () => {
    // One other member at 10 heartbeats a second for all followers: every 100 ms, as before.
    const small = follower('n2', ['n1'], 1_000)
    expect(small.publishIntervalMs(1_000)).toBe(100)
    const ids = Array.from({ length: 24 }, (_, i) => `m${String(i).padStart(2, '0')}`)
    const large = follower('n99', ids, 1_000)
    // 24 live others at 10 heartbeats a second for all followers: one every 2.4 s.
    expect(large.publishIntervalMs(1_000)).toBe(2_400)
    expect(large.nextHeartbeat(1_000).intervalMs).toBe(2_400)
    expect(large.heartbeatDue(1_000 + 2_399)).toBe(false)
    expect(large.heartbeatDue(1_000 + 2_400)).toBe(true)
  })

  it('the leader and a joining node publish every heartbeatIntervalMs whatever the size', () => {
    const ids = Array.from({ length: 24 }, (_, i) => `m${String(i).padStart(2, '0')}`)
    const joining = new ClusterCore({ id: 'z', name: 'z', info }, config, 1_000)
    for (const o of ids) joining.onHeartbeat(hb(o, 1, { leader: ids[0]!, term: 1 }), 1_000)
    expect(joining.joining(1_000)).toBe(true)
    expect(joining.publishIntervalMs(1_000)).toBe(100)
    const leader = new ClusterCore({ id: 'a', name: 'a', info }, config, 0)
    leader.onTick(1_000)
    for (const o of ids) leader.onHeartbeat(hb(o, 1, { incarnation: 5_000 }), 1_000)
    expect(leader.isLeader()).toBe(true)
    expect(leader.publishIntervalMs(1_000)).toBe(100)
  })

  it('publishes at once (after half an interval) when it takes office, but a changed view of others waits for its cadence', () => {
    const ids = Array.from({ length: 24 }, (_, i) => `m${String(i).padStart(2, '0')}`)
    const core = new ClusterCore({ id: 'n99', name: 'n99', info }, config, 500)
    core.onTick(1_000)
    // m00 leads; every other member is younger than this node.
    for (const o of ids) core.onHeartbeat(hb(o, 1, { leader: 'm00', term: 1, incarnation: o === 'm00' ? 1 : 10_000 }), 1_000)
    core.nextHeartbeat(1_000)
    expect(core.heartbeatDue(1_100)).toBe(false)
    // A member crashed: the dead list changes, and nothing is published before the follower's own interval.
    core.onPeerDisconnected('m05', 1_100)
    core.onProbeResult('m05', false, 1_100)
    expect(core.heartbeatDue(1_200)).toBe(false)
    // The leader crashed: this node is now the oldest and takes office; the heartbeat that claims it goes out now.
    core.onPeerDisconnected('m00', 1_200)
    core.onProbeResult('m00', false, 1_200)
    expect(core.isLeader()).toBe(true)
    expect(core.heartbeatDue(1_200)).toBe(true)
    const next = core.nextHeartbeat(1_200)
    expect(next).toMatchObject({ leader: 'n99', term: 2, intervalMs: 100 })
    expect(next.dead.map(d => d.id).sort()).toEqual(['m00', 'm05'])
  })
})

describe('a stall on an overloaded host', () => {
  it('begins a new incarnation only once the others have declared this node dead at the interval it announced', () => {
    const ids = Array.from({ length: 24 }, (_, i) => `m${String(i).padStart(2, '0')}`)
    const large = follower('n99', ids, 1_000)
    // It announces one heartbeat every 2.4 s: the others declare it dead after 600 x 24 = 14.4 s of silence.
    expect(large.nextHeartbeat(1_000).intervalMs).toBe(2_400)
    // Stalled 2 s (over failureTimeoutMs): noticed, silence forgiven, but the others still hold it alive.
    const short = large.onTick(3_000)
    expect(short.some(e => e.type === 'stall-detected')).toBe(true)
    expect(short.some(e => e.type === 'reincarnated')).toBe(false)
    expect(large.joining(3_000)).toBe(false)
    // Stalled again, silent 14.4 s since its last heartbeat: the others have declared it dead.
    const long = large.onTick(1_000 + 14_400)
    expect(long.some(e => e.type === 'reincarnated')).toBe(true)
  })

  it('a member that announced heartbeatIntervalMs (a leader, a small cluster) begins a new one after failureTimeoutMs', () => {
    const small = follower('n2', ['n1'], 1_000)
    expect(small.nextHeartbeat(1_000).intervalMs).toBe(100)
    expect(small.onTick(1_000 + 600).some(e => e.type === 'reincarnated')).toBe(true)
  })

  it('a starting node stalled inside its first join window keeps its incarnation, and is taken back as the youngest member', () => {
    const starting = new ClusterCore({ id: 'new', name: 'new', info }, config, 2_000)
    starting.onTick(2_000)
    const first = starting.nextHeartbeat(2_000)
    expect(first.joining).toBe(true)
    // Stalled 1 s (over failureTimeoutMs) from inside its 300 ms window: noticed, no new incarnation.
    const events = starting.onTick(3_000)
    expect(events.some(e => e.type === 'stall-detected')).toBe(true)
    expect(events.some(e => e.type === 'reincarnated')).toBe(false)
    const again = starting.nextHeartbeat(3_000)
    expect(again.incarnation).toBe(first.incarnation)
    // A member that held it dead meanwhile (following a leader older than it) admits its heartbeat of that incarnation again.
    const member = follower('m0', ['m1'], 1_000)
    for (let t = 1_100, seq = 2; t <= 2_800; t += 100, seq++) {
      if (t === 2_000) member.onHeartbeat(first, t)
      member.onHeartbeat(hb('m1', seq, { leader: 'm1', term: 1, intervalMs: 100 }), t)
      member.onTick(t)
    }
    expect(member.statusOf('new')).toBe('dead')
    member.onHeartbeat(again, 2_850)
    expect(member.statusOf('new')).toBe('alive')
  })

  it('a node that has had a leader still begins a new incarnation after such a stall', () => {
    const member = follower('n2', ['n1'], 1_000)
    member.nextHeartbeat(1_000)
    expect(member.onTick(1_000 + 600).some(e => e.type === 'reincarnated')).toBe(true)
  })
})

describe('joining in one round trip (state sync)', () => {
  it('a member known only from a sync gets the sync bound of silence; once heard through gossip, its own limits', () => {
    const withBound: ClusterCoreConfig = { ...config, syncWaitMs: 5_000 }
    const joiner = new ClusterCore({ id: 'new', name: 'new', info }, withBound, 0)
    joiner.onSync([hb('m1', 1, { intervalMs: 100 }), hb('m2', 1, { intervalMs: 100 })], 10)
    // Plain limits would declare both dead after 600 ms; gossip has not reached this node yet.
    for (let t = 100; t <= 4_000; t += 100) joiner.onTick(t)
    expect(joiner.statusOf('m1')).toBe('suspect')
    expect(joiner.statusOf('m2')).toBe('suspect')
    // m1's heartbeat arrives through gossip: from now on it is watched as any member.
    joiner.onHeartbeat(hb('m1', 2, { intervalMs: 100 }), 4_100)
    for (let t = 4_100; t <= 4_800; t += 100) joiner.onTick(t)
    expect(joiner.statusOf('m1')).toBe('dead')
    expect(joiner.statusOf('m2')).toBe('suspect')
    for (let t = 4_900; t <= 5_100; t += 100) joiner.onTick(t)
    expect(joiner.statusOf('m2')).toBe('dead')
  })

  it('a joining node learns every alive member from one reply and orders itself after them', () => {
    const ids = ['m1', 'm2', 'm3', 'm4']
    const member = follower('m0', ids, 1_000)
    member.onTick(1_000)
    const view = member.syncView(1_000)
    expect(view.map(h => h.id)).toEqual(['m0', ...ids])
    const joiner = new ClusterCore({ id: 'new', name: 'new', info }, config, 0)
    joiner.onSync(view, 5)
    const snap = joiner.snapshot(5)
    expect(snap.members.map(m => m.id).sort()).toEqual(['m0', 'm1', 'm2', 'm3', 'm4', 'new'])
    expect(snap.members.every(m => m.status === 'alive')).toBe(true)
    // Youngest: its incarnation is above every established member's.
    expect(snap.members.at(-1)?.id).toBe('new')
  })

  it('leaves out suspect and dead members', () => {
    const member = follower('m0', ['m1', 'm2'], 1_000)
    member.onPeerDisconnected('m2', 1_010)
    expect(member.syncView(1_010).map(h => h.id)).toEqual(['m0', 'm1'])
  })

  it('the wire forms round-trip and are checked', () => {
    const me = hb('me', 3, { intervalMs: 1_500 })
    expect(decodeHeartbeat(encodeHeartbeat(me))).toEqual(me)
    expect(decodeSyncRequest(encodeSyncRequest('c', me))).toEqual({ v: 1, cluster: 'c', self: me })
    expect(decodeSyncReply(encodeSyncReply([me, hb('b', 1)])).members).toEqual([me, hb('b', 1)])
    expect(() => decodeSyncReply(new TextEncoder().encode(JSON.stringify({ v: 1, members: [{ id: 'x' }] })))).toThrow(/member sync reply invalid/)
    expect(() => decodeHeartbeat(encodeHeartbeat({ ...me, intervalMs: 0 }))).toThrow(/intervalMs/)
  })
})
