import { describe, expect, it } from 'vitest'
import { dueTicks, MAX_CATCH_UP_TICKS, newerDef, newerProgress, nextTick, stampOf, tickKey, triggerProblem } from '../../src/core/schedules.ts'
import type { ScheduleDef } from '../../src/core/schedules.ts'
import { MAX_SCHEDULES } from '../../src/protocol/constants.ts'
import { ScheduleStore } from '../../src/store/schedule-store.ts'

const utc = (iso: string): number => Date.parse(iso)

function def (over: Partial<ScheduleDef>): ScheduleDef {
  return { name: 's', task: { type: 'echo' }, paused: false, anchor: 0, from: 0, version: 1, by: 'n1', ...over }
}

describe('schedule triggers', () => {
  it('accepts exactly one of cron and everyMs, a parsable expression and a known time zone, and says what is wrong otherwise', () => {
    expect(triggerProblem({ cron: '*/5 * * * *' })).toBeNull()
    expect(triggerProblem({ cron: '0 30 2 * * *', timezone: 'America/New_York' })).toBeNull()
    expect(triggerProblem({ everyMs: 1000 })).toBeNull()
    expect(triggerProblem({})).toMatch(/exactly one of "cron" and "everyMs"/)
    expect(triggerProblem({ cron: '* * * * *', everyMs: 1000 })).toMatch(/exactly one/)
    expect(triggerProblem({ cron: '61 * * * *' })).toMatch(/invalid cron expression "61 \* \* \* \*": .*minute/)
    expect(triggerProblem({ cron: 'every monday' })).toMatch(/invalid cron expression/)
    expect(triggerProblem({ cron: '* * * * *', timezone: 'Mars/Olympus' })).toMatch(/unknown time zone "Mars\/Olympus"/)
    expect(triggerProblem({ everyMs: 1000, timezone: 'UTC' })).toMatch(/"timezone" goes with "cron" only/)
    expect(triggerProblem({ everyMs: 99 })).toMatch(/at least 100/)
  })
})

describe('nextTick', () => {
  it('everyMs: ticks at anchor + k x everyMs (k >= 1), the first strictly after the given time', () => {
    const t = { everyMs: 1000, anchor: 10_000 }
    expect(nextTick(t, 0)).toBe(11_000)
    expect(nextTick(t, 10_000)).toBe(11_000)
    expect(nextTick(t, 10_999)).toBe(11_000)
    expect(nextTick(t, 11_000)).toBe(12_000)
    expect(nextTick(t, 15_500)).toBe(16_000)
  })

  it('cron: in UTC by default', () => {
    const t = { cron: '*/5 * * * *', anchor: 0 }
    expect(nextTick(t, utc('2026-01-10T10:02:13Z'))).toBe(utc('2026-01-10T10:05:00Z'))
    expect(nextTick(t, utc('2026-01-10T10:05:00Z'))).toBe(utc('2026-01-10T10:10:00Z'))
  })

  it('cron with seconds (6 fields)', () => {
    expect(nextTick({ cron: '*/10 * * * * *', anchor: 0 }, utc('2026-01-10T10:00:03Z'))).toBe(utc('2026-01-10T10:00:10Z'))
  })

  it('cron in a time zone, across daylight saving time: 02:30 in Berlin is 01:30 UTC in winter, 00:30 UTC in summer, and on the spring-forward day (no 02:30) it fires once, just after the gap', () => {
    const t = { cron: '30 2 * * *', timezone: 'Europe/Berlin', anchor: 0 }
    expect(nextTick(t, utc('2026-01-15T12:00:00Z'))).toBe(utc('2026-01-16T01:30:00Z'))
    expect(nextTick(t, utc('2026-07-15T12:00:00Z'))).toBe(utc('2026-07-16T00:30:00Z'))
    // 2026-03-29: clocks go from 02:00 to 03:00 in Berlin (01:00 UTC).
    expect(nextTick(t, utc('2026-03-28T12:00:00Z'))).toBe(utc('2026-03-29T01:00:00Z'))
    expect(nextTick(t, utc('2026-03-29T01:00:00Z'))).toBe(utc('2026-03-30T00:30:00Z'))
  })

  it('cron in New York: 9:00 on weekdays', () => {
    const t = { cron: '0 9 * * 1-5', timezone: 'America/New_York', anchor: 0 }
    // Friday 2026-01-09 after 9:00 EST: the next is Monday 2026-01-12 14:00 UTC.
    expect(nextTick(t, utc('2026-01-09T15:00:00Z'))).toBe(utc('2026-01-12T14:00:00Z'))
  })
})

describe('dueTicks', () => {
  it('none before the first tick, then each tick once as its time comes', () => {
    const d = def({ everyMs: 1000, anchor: 5_000, from: 5_000 })
    expect(dueTicks(d, null, 5_999)).toEqual({ ticks: [], skipped: 0 })
    expect(dueTicks(d, null, 6_000)).toEqual({ ticks: [6_000], skipped: 0 })
    expect(dueTicks(d, 6_000, 6_999)).toEqual({ ticks: [], skipped: 0 })
    expect(dueTicks(d, 6_000, 7_050)).toEqual({ ticks: [7_000], skipped: 0 })
  })

  it('catches up the ticks missed since the last one fired, oldest first, each once', () => {
    const d = def({ everyMs: 1000, anchor: 0, from: 0 })
    // Last fired 3000; a failover until 6500: 4000, 5000, 6000 are due, late.
    expect(dueTicks(d, 3_000, 6_500)).toEqual({ ticks: [4_000, 5_000, 6_000], skipped: 0 })
    // Once they are fired (progress 6000), none of them comes again.
    expect(dueTicks(d, 6_000, 6_500)).toEqual({ ticks: [], skipped: 0 })
  })

  it('catches up at most MAX_CATCH_UP_TICKS (the newest), and counts the older ones as skipped', () => {
    const d = def({ everyMs: 1000, anchor: 0, from: 0 })
    const due = dueTicks(d, 0, 250_000)
    expect(due.ticks.length).toBe(MAX_CATCH_UP_TICKS)
    expect(due.ticks[0]).toBe(151_000)
    expect(due.ticks.at(-1)).toBe(250_000)
    expect(due.skipped).toBe(150)
  })

  it('cron catch-up after a long outage: the newest MAX_CATCH_UP_TICKS fire, the older ones are counted', () => {
    const d = def({ cron: '* * * * *', anchor: 0, from: utc('2026-01-01T00:00:00Z') })
    const due = dueTicks(d, utc('2026-01-01T00:00:00Z'), utc('2026-01-01T03:00:30Z'))
    expect(due.ticks.length).toBe(MAX_CATCH_UP_TICKS)
    expect(due.ticks.at(-1)).toBe(utc('2026-01-01T03:00:00Z'))
    expect(due.ticks[0]).toBe(utc('2026-01-01T03:00:00Z') - 99 * 60_000)
    // 180 ticks from 00:01 to 03:00: 80 skipped.
    expect(due.skipped).toBe(80)
  })

  it('cron: a few missed ticks all fire, in order', () => {
    const d = def({ cron: '*/5 * * * *', timezone: 'Asia/Kolkata', anchor: 0, from: 0 })
    expect(dueTicks(d, utc('2026-01-10T10:00:00Z'), utc('2026-01-10T10:16:00Z')).ticks).toEqual([utc('2026-01-10T10:05:00Z'), utc('2026-01-10T10:10:00Z'), utc('2026-01-10T10:15:00Z')])
  })

  it('counts only ticks after the definition\'s from (a new trigger, or a resume: the pause\'s ticks are not caught up)', () => {
    const resumed = def({ everyMs: 1000, anchor: 0, from: 10_500 })
    expect(dueTicks(resumed, 3_000, 12_000)).toEqual({ ticks: [11_000, 12_000], skipped: 0 })
  })

  it('a paused or deleted schedule has no due tick', () => {
    expect(dueTicks(def({ everyMs: 1000, paused: true }), null, 100_000).ticks).toEqual([])
    expect(dueTicks(def({ everyMs: 1000, deleted: true }), null, 100_000).ticks).toEqual([])
  })
})

describe('versions, progress and stamps', () => {
  it('a newer version wins, ties by the member that made it', () => {
    expect(newerDef({ version: 2, by: 'a' }, { version: 1, by: 'z' })).toBe(true)
    expect(newerDef({ version: 1, by: 'b' }, { version: 1, by: 'a' })).toBe(true)
    expect(newerDef({ version: 1, by: 'a' }, { version: 1, by: 'a' })).toBe(false)
  })

  it('progress only moves forward', () => {
    expect(newerProgress({ name: 's', lastTick: 2, skipped: 0 }, { name: 's', lastTick: 1, skipped: 5 })).toBe(true)
    expect(newerProgress({ name: 's', lastTick: 1, skipped: 0 }, { name: 's', lastTick: 2, skipped: 0 })).toBe(false)
  })

  it('one key per schedule and tick, the same on every leader', () => {
    expect(tickKey('backup', 1_700_000_000_000)).toBe('schedule:backup:1700000000000')
  })

  it('a tick that fell before its leader was ready is late, and so is one fired more than a second after its time', () => {
    expect(stampOf('s', 10_000, 10_040, 5_000)).toEqual({ name: 's', tick: 10_000, firedAt: 10_040, lateMs: 40, late: false })
    expect(stampOf('s', 10_000, 10_700, 10_500)).toMatchObject({ lateMs: 700, late: true })
    expect(stampOf('s', 10_000, 11_500, 5_000)).toMatchObject({ lateMs: 1_500, late: true })
  })
})

describe('ScheduleStore', () => {
  it('keeps the newest version of each schedule, a deletion included, and progress only moving forward', () => {
    const store = new ScheduleStore(null)
    try {
      const v1 = def({ name: 'a', everyMs: 1000, version: 10 })
      expect(store.put([v1], []).defs).toEqual(['a'])
      expect(store.put([{ ...v1, deleted: true, version: 12 }], []).defs).toEqual(['a'])
      // An older copy from a member that was away does not bring it back.
      expect(store.put([{ ...v1, version: 11 }], []).defs).toEqual([])
      expect(store.def('a')?.deleted).toBe(true)
      store.put([], [{ name: 'a', lastTick: 5_000, skipped: 0 }])
      expect(store.put([], [{ name: 'a', lastTick: 4_000, skipped: 0 }]).progress).toEqual([])
      expect(store.progress().get('a')?.lastTick).toBe(5_000)
    } finally {
      store.close()
    }
  })

  it('forgets the oldest deletions beyond MAX_SCHEDULES, with their progress', () => {
    const store = new ScheduleStore(null)
    try {
      const gone = Array.from({ length: MAX_SCHEDULES + 2 }, (_, i) => def({ name: `d${i}`, everyMs: 1000, deleted: true, version: 100 + i }))
      store.put(gone, [{ name: 'd0', lastTick: 1, skipped: 0 }])
      expect(store.defs().size).toBe(MAX_SCHEDULES)
      expect(store.def('d0')).toBeUndefined()
      expect(store.def('d1')).toBeUndefined()
      expect(store.def('d2')?.deleted).toBe(true)
      expect(store.progress().has('d0')).toBe(false)
    } finally {
      store.close()
    }
  })
})
