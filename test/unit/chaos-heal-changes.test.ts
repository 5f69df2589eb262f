/**
 * The chaos report's "leader changes caused by a heal" (scripts/chaos/heal-changes.ts),
 * on polls, faults and log lines written out as a run recorded them: a change
 * that a fault on the leader forced (its host paused, or the leader declared
 * dead by silence) is listed apart, not blamed on a heal that happened around it.
 */
import { describe, expect, it } from 'vitest'
import { healChanges } from '../../scripts/chaos/heal-changes.ts'
import type { MemberLost } from '../../scripts/chaos/heal-changes.ts'
import type { LeaderSample } from '../../scripts/chaos/fault-timing.ts'
import type { ObservedFault } from '../../scripts/chaos/check.ts'

const HOSTS = ['h1', 'h2', 'h3', 'h4', 'h5']

/** Every host in `hosts` answers polls sent every 250 ms from `fromMs` to `toMs`, 20 ms later, naming `leader` in `term`. */
function polls (fromMs: number, toMs: number, leader: string | null, term: number | null, hosts = HOSTS): LeaderSample[] {
  const out: LeaderSample[] = []
  for (let t = fromMs; t <= toMs; t += 250) for (const host of hosts) out.push({ atMs: t, answeredMs: t + 20, host, leader, term, queued: null })
  return out
}

function fault (over: Partial<ObservedFault>): ObservedFault {
  return { atMs: 0, kind: 'pause', role: 'leader', host: 'h1', holdMs: 1_000, minority: [], endMs: null, ...over }
}

const base = { hostCount: 5, failureTimeoutMs: 1_500, loadEndMs: 60_000, endOf: (f: ObservedFault) => f.endMs ?? f.atMs + f.holdMs }

describe('leader changes after a heal', () => {
  it('the CI smoke of e26ae47 (seed 15): the leader paused as a partition healed and declared dead is a forced change, not one caused by the heal', () => {
    // h1 (an origin) cut off alone from 8,700 to 12,260; the leader h5 paused at 12,250 for 1.1 s in the same
    // step of the fault loop (so the pause began before the heal); h5 stayed silent 2.4 s in all, h3 declared it
    // dead 1,584 ms after its last heartbeat, and h2 took office in term 2 1.7 s later.
    const observed = [
      fault({ atMs: 8_700, kind: 'partition', role: 'origin', host: 'h1', holdMs: 2_527, minority: ['h1'], endMs: 12_260 }),
      fault({ atMs: 12_250, kind: 'pause', role: 'leader', host: 'h5', holdMs: 1_107, endMs: 13_360 })
    ]
    const samples = [
      ...polls(7_000, 12_200, 'h5', 1, ['h2', 'h3', 'h4', 'h5']),
      ...polls(12_250, 15_500, 'h5', 1, ['h2', 'h3', 'h4']),
      ...polls(15_750, 20_000, 'h2', 2)
    ]
    const memberLost: MemberLost[] = [
      { atMs: 10_200, host: 'h2', member: 'h1', to: 'dead' },
      { atMs: 13_030, host: 'h3', member: 'h5', to: 'suspect' },
      { atMs: 13_834, host: 'h3', member: 'h5', to: 'dead' },
      { atMs: 13_840, host: 'h2', member: 'h5', to: 'dead' }
    ]
    const r = healChanges({ ...base, observed, leaderSamples: samples, memberLost })
    expect(r.healCaused).toEqual([])
    expect(r.forced).toEqual([{ healedAtMs: 12_260, fromLeader: 'h5 (term 1)', toLeader: 'h2 (term 2)', afterMs: 3_510, forcedBy: 'pause h5 at +12.3s' }])
  })

  it('a death verdict against the leader before the change forces it, even with no fault recorded on its host', () => {
    // The leader h5 kept office through the partition of h1, then fell silent (a stall no fault injected).
    const observed = [fault({ atMs: 8_700, kind: 'partition', role: 'origin', host: 'h1', minority: ['h1'], endMs: 11_200 })]
    const samples = [...polls(7_000, 12_000, 'h5', 1, ['h2', 'h3', 'h4', 'h5']), ...polls(12_250, 13_500, 'h5', 1, ['h2', 'h3', 'h4']), ...polls(13_750, 16_000, 'h2', 2)]
    const memberLost: MemberLost[] = [{ atMs: 13_400, host: 'h4', member: 'h5', to: 'dead' }]
    const r = healChanges({ ...base, observed, leaderSamples: samples, memberLost })
    expect(r.healCaused).toEqual([])
    expect(r.forced.map(c => c.forcedBy)).toEqual(['h5 declared dead by h4 at +13.4s'])
  })

  it('a change with no fault on the leader and no verdict against it is caused by the heal', () => {
    // The old leader h1 comes back from a minority and takes office again: what sticky leadership forbids.
    const observed = [fault({ atMs: 8_700, kind: 'partition', role: 'leader', host: 'h1', minority: ['h1', 'h2'], endMs: 14_000 })]
    const samples = [...polls(7_000, 8_500, 'h1', 1), ...polls(10_500, 14_250, 'h3', 2, ['h3', 'h4', 'h5']), ...polls(14_500, 18_000, 'h1', 3)]
    const memberLost: MemberLost[] = [
      // The majority declared the old leader dead during the partition, and the minority the majority's leader:
      // neither silenced the leader in office at the heal (h3) on its own side.
      { atMs: 10_200, host: 'h3', member: 'h1', to: 'dead' },
      { atMs: 10_300, host: 'h1', member: 'h3', to: 'dead' },
      // A suspicion is no verdict.
      { atMs: 14_100, host: 'h4', member: 'h3', to: 'suspect' }
    ]
    const r = healChanges({ ...base, observed, leaderSamples: samples, memberLost })
    expect(r.forced).toEqual([])
    expect(r.healCaused).toEqual([{ healedAtMs: 14_000, fromLeader: 'h3 (term 2)', toLeader: 'h1 (term 3)', afterMs: 520 }])
  })

  it('a heal that keeps the leader in office lists nothing', () => {
    const observed = [fault({ atMs: 8_700, kind: 'partition', role: 'worker', host: 'h4', minority: ['h4'], endMs: 11_000 })]
    const samples = [...polls(7_000, 11_000, 'h2', 1, ['h1', 'h2', 'h3', 'h5']), ...polls(11_250, 17_000, 'h2', 1)]
    expect(healChanges({ ...base, observed, leaderSamples: samples, memberLost: [] })).toEqual({ healCaused: [], forced: [] })
  })
})
